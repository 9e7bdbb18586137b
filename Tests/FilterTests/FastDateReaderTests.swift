import Testing

@testable import Filter

/// The hand-written readers of the two syslog date formats must find exactly what the templates' regexes find:
/// the same span, time, validity and template, and leave the detector in the same state (hits, order). Each line
/// is checked twice — by a detector with the readers and one without — after a line that makes its format the
/// last one used (the readers only run then), over lines near the usual shapes and many small variations.
@Suite struct FastDateReaderTests {
    static let now = 1_780_000_000.0  // 2026-05-28, so that ExYear accepts 2000…2039

    func detectors(_ pattern: String?, zone: String?) throws -> (fast: DateDetector, slow: DateDetector) {
        let fast = try DateTestSupport.detector(pattern, zone: zone, now: Self.now)
        let slow = try DateTestSupport.detector(pattern, zone: zone, now: Self.now)
        slow.usesFastReaders = false
        return (fast, slow)
    }

    func run(_ d: DateDetector, _ line: String) -> DateMatch? {
        var s = line
        return s.withUTF8 { d.match($0) }
    }

    /// Lines around the ISO shape `2026-11-01T00:00:01.554089+00:00 host …`.
    static var isoLines: [String] {
        var out: [String] = []
        let dates = [
            "2026-11-01T00:00:01", "2026-02-29T10:00:00", "2024-02-29T23:59:59", "2026-04-31T00:00:00",
            "2026-12-31T23:59:59", "2026-13-01T00:00:00", "2026-00-10T00:00:00", "2026-01-00T00:00:00",
            "2026-01-32T00:00:00", "1999-01-01T00:00:00", "2039-01-01T00:00:00", "2040-01-01T00:00:00",
            "2026-11-01T24:00:00", "2026-11-01T23:60:00", "2026-11-01T23:59:60", "2026-11-01T23:59:61",
            "2026-11-01 00:00:01", "2026/11/01T00:00:01", "2026-11/01T00:00:01", "2026-1-01T00:00:01",
            "2026-11-01T0:00:01", "2026-11-01t00:00:01", "2026-11-01T00:00",
        ]
        let fractions = ["", ".5", ".55", ".554089", ".5540891", ",554089", ".", ".x"]
        let zones = [
            "", "Z", "+00:00", "-05:30", "+02:00", "+0200", "+2:00", "+20:00", "+01:0", " UTC", " GMT",
            "UTC", "  +01:00", " Zeus", " +01:00", "\t+01:00", "Q",
        ]
        let tails = ["", " web01 sshd[1]: x", "  x", " ", "x", "1", "_", ":", "\u{E9}t\u{E9}", "\u{A0}UTC", " 2026"]
        for d in dates {
            for f in fractions {
                for z in zones {
                    for t in tails { out.append(d + f + z + t) }
                }
            }
        }
        return out
    }

    /// Lines around the traditional shape `Nov 28 09:16:05 host …`.
    static var syslogLines: [String] {
        var out: [String] = []
        let months = ["Nov", "nov", "NOV", "Feb", "Sep", "Dec", "Nox", "N0v", "Mon", "\u{17F}ep"]
        let days = ["28", " 8", "08", "8", "30", "31", "29", "32", "00", " 0", "3"]
        let times = ["09:16:05", "23:59:59", "24:00:00", "9:16:05", "09:60:05", "09:16:60", "19:16:5", "29:00:00"]
        let tails = [
            "", " web1 sshd[1]: x", " 2026 host", " 2026", ".123 host", ".", "x", "1", " ", "  host",
            "\u{E9}", " 1999 x", ":", "_",
        ]
        for m in months {
            for d in days {
                for t in times {
                    for tail in tails { out.append(m + " " + d + " " + t + tail) }
                }
            }
        }
        out += ["Mon Nov 28 09:16:05 host", "Nov 28 09:16:05 2026 host", "[Nov 28 09:16:05] x", "Nov 28 09:16:05"]
        return out
    }

    func compare(_ lines: [String], primer: String, pattern: String?, zone: String?) throws {
        let (fast, slow) = try detectors(pattern, zone: zone)
        var fastHits = 0
        for line in lines {
            for d in [fast, slow] { _ = run(d, primer) }
            let a = run(fast, line)
            let b = run(slow, line)
            #expect(a == b, "\(line.debugDescription): fast \(String(describing: a)), regex \(String(describing: b))")
            if a != nil { fastHits += 1 }
        }
        #expect(fast.templateHits == slow.templateHits)
        // The comparison must have covered matching lines, not only misses.
        #expect(fastHits > lines.count / 10)
    }

    @Test(arguments: [nil, "{^LN-BEG}"], [nil, "+0300"])
    func isoReaderAgreesWithTheRegex(pattern: String?, zone: String?) throws {
        try compare(
            Self.isoLines, primer: "2026-11-01T00:00:01.554089+00:00 web01 x", pattern: pattern, zone: zone)
    }

    @Test(arguments: [nil, "{^LN-BEG}"], [nil, "-0130"])
    func syslogReaderAgreesWithTheRegex(pattern: String?, zone: String?) throws {
        try compare(Self.syslogLines, primer: "Nov 28 09:16:05 web1 sshd[1]: x", pattern: pattern, zone: zone)
    }

    /// A stream that switches formats: the readers run only while their template is the last one used.
    @Test func mixedStreamAgrees() throws {
        let (fast, slow) = try detectors("{^LN-BEG}", zone: nil)
        let lines =
            Self.isoLines.prefix(400) + Self.syslogLines.prefix(400) + ["14/Aug/2005:12:00:00 +0200 x"]
            + Self.isoLines.suffix(400)
        for line in lines {
            #expect(run(fast, line) == run(slow, line), "\(line.debugDescription)")
        }
        #expect(fast.templateHits == slow.templateHits)
    }
}
