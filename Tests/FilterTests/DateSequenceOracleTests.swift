import Foundation
import PortcullisTestKit
import Testing

@testable import Filter

/// Stresses fail2ban's template choice and reordering: long sequences of mixed formats, dates in the middle of
/// lines, several dates per line, invalid dates — generated from a fixed seed and compared with fail2ban.
@Suite(.serialized, .blocking) struct DateSequenceOracleTests {
    /// A small deterministic generator (SplitMix64) so failures reproduce.
    struct Generator {
        var state: UInt64
        mutating func next() -> UInt64 {
            state &+= 0x9E37_79B9_7F4A_7C15
            var z = state
            z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
            z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
            return z ^ (z >> 31)
        }
        mutating func pick<T>(_ items: [T]) -> T { items[Int(next() % UInt64(items.count))] }
        mutating func int(_ range: ClosedRange<Int>) -> Int {
            range.lowerBound + Int(next() % UInt64(range.count))
        }
    }

    static func date(_ g: inout Generator, format: Int? = nil) -> String {
        let months = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"]
        let days = ["Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"]
        let y = g.pick([2004, 2005, 2005, 2005, 2006, 2019, 2031])
        let mo = g.int(1...12)
        let d = g.pick([1, 2, 9, 13, 14, 15, 16, 28, 29, 30, 31])
        let h = g.int(0...23)
        let mi = g.int(0...59)
        let s = g.pick([0, 7, 30, 59, 60])
        func p2(_ v: Int) -> String { v < 10 ? "0\(v)" : "\(v)" }
        let mon = months[mo - 1]
        switch format ?? g.int(0...21) {
        case 0: return "\(y)-\(p2(mo))-\(p2(d)) \(p2(h)):\(p2(mi)):\(p2(s))"
        case 1:
            return
                "\(y)-\(p2(mo))-\(p2(d))T\(p2(h)):\(p2(mi)):\(p2(s)).\(g.int(0...999_999))\(g.pick(["", "Z", "+02:00", "-0500", " UTC"]))"
        case 2: return "\(mon) \(d < 10 ? " \(d)" : "\(d)") \(p2(h)):\(p2(mi)):\(p2(s))"
        case 3: return "\(g.pick(days)) \(mon) \(p2(d)) \(p2(h)):\(p2(mi)):\(p2(s)) \(y)"
        case 4: return "\(p2(d))/\(mon)/\(y):\(p2(h)):\(p2(mi)):\(p2(s)) \(g.pick(["+0200", "-0700", "+0000"]))"
        case 5: return "\(1_124_000_000 + g.int(0...100_000))\(g.pick(["", ".123", ".123456"]))"
        case 6: return "@40000000\(String(1_124_000_000 + g.int(0...100_000), radix: 16))1b4f6c0c"
        case 7: return "\(y % 100)\(p2(mo))\(p2(d)) \(p2(h)):\(p2(mi)):\(p2(s))"
        case 8: return "\(p2(d))-\(p2(mo))-\(y) \(p2(h)):\(p2(mi)):\(p2(s))"
        case 9: return "\(p2(d)).\(p2(mo)).\(y) \(p2(h)):\(p2(mi)):\(p2(s))"
        case 10: return "\(p2(mo))/\(p2(d))/\(y):\(p2(h)):\(p2(mi)):\(p2(s))"
        case 11: return "\(mon) \(d), \(y) \(g.int(1...12)):\(p2(mi)):\(p2(s)) \(g.pick(["AM", "PM", "pm"]))"
        case 12: return "\(y)\(p2(mo))\(p2(d))T\(p2(h))\(p2(mi))\(p2(s))"
        case 13: return "\(p2(h)):\(p2(mi)):\(p2(s))"
        case 14: return "\(g.pick(["CEST", "EST", "UTC", "BST", "XYZ"])) \(mon) \(p2(d)) \(p2(h)):\(p2(mi)):\(p2(s))"
        case 15: return "\(g.pick(["+0300", "-0100", "Z"])) \(mon) \(p2(d)) \(p2(h)):\(p2(mi)):\(p2(s))"
        case 16: return "<\(p2(mo))/\(p2(d))/\(p2(y % 100))@\(p2(h)):\(p2(mi)):\(p2(s))>"
        case 17: return "\(mon)-\(p2(d))-\(p2(y % 100)) \(p2(h)):\(p2(mi)):\(p2(s))"
        case 18: return "\(p2(mo))-\(p2(d))-\(y) \(p2(h)):\(p2(mi)):\(p2(s)).\(g.int(0...999))"
        case 19: return "\(mon) \(p2(d)) \(y) \(p2(h)):\(p2(mi)):\(p2(s))"
        case 20: return "\(y)/\(p2(mo))/\(p2(d)) \(p2(h)):\(p2(mi)):\(p2(s)),\(g.int(0...999))"
        default: return "\(p2(d))/\(p2(mo))/\(p2(y % 100)) \(p2(h)):\(p2(mi)):\(p2(s))"
        }
    }

    static let prefixes = ["", "", "", "[", "(", "  ", "host sshd[12]: ", "x", "audit(", "a b c ", "ÿé ", "12 ", "-- "]
    static let suffixes = ["", " sshd[123]: Failed password", "] x", ":42): y", " 192.0.2.1", "x", " and ", ")"]

    static func line(_ g: inout Generator, format: Int? = nil, prefix: String? = nil) -> String {
        let p = prefix ?? g.pick(prefixes)
        switch g.int(0...9) {
        case 0: return p + "no date here 192.0.2.\(g.int(1...254))"
        case 1: return p + date(&g, format: format) + " then " + date(&g) + g.pick(suffixes)
        default: return p + date(&g, format: format) + g.pick(suffixes)
        }
    }

    /// Runs `lines` through fail2ban and through us; returns the differences.
    static func check(
        _ lines: [String], datePattern: String?, timeZone: String? = nil, label: String
    ) throws
        -> (agree: Int, total: Int, differences: [String])
    {
        let file = FileManager.default.temporaryDirectory.appendingPathComponent("pcl-dates-\(UUID().uuidString)")
        try (lines.joined(separator: "\n") + "\n").write(to: file, atomically: true, encoding: .utf8)
        defer { try? FileManager.default.removeItem(at: file) }
        if let dump = ProcessInfo.processInfo.environment["PCL_DATES_DUMP"] {
            try? FileManager.default.copyItem(atPath: file.path, toPath: dump + "/" + label + ".log")
        }
        let oracle = try DateTestSupport.oracle(logPath: file.path, datePattern: datePattern, timeZone: timeZone)
        let detector = try DateTestSupport.detector(datePattern, zone: timeZone, now: DateTestSupport.sampleNow)
        let r = DateTestSupport.compare(
            lines: try DateTestSupport.lines(of: file.path), oracle: oracle, detector: detector, label: label)
        return (r.agree, r.total, r.differences)
    }

    static let patterns: [String?] = [
        nil,
        "{^LN-BEG}",
        "{^LN-BEG}Epoch\n{^LN-BEG}",
        "^[^\\[]*\\[({DATE})\n{^LN-BEG}",
        "%d.%m.%Y %H:%M:%S\n%Y-%m-%d %H:%M:%S\nEPOCH",
        "{^LN-BEG}%ExY(?P<_sep>[-/.])%m(?P=_sep)%d[T ]%H:%M:%S(?:[.,]%f)?(?:\\s*%z)?\n^[^\\[]*\\[({DATE})\n{^LN-BEG}",
        "LEPOCH",
        "%b %d %H:%M:%S",
    ]

    static let zones: [String?] = [nil, nil, "UTC", "UTC+0200", "-0330", "EST", "CET+0100"]

    @Test(.enabled(if: DateTestSupport.oracleAvailable), arguments: 0..<24)
    func mixedSequencesAgree(seed: Int) throws {
        var g = Generator(state: UInt64(seed) &* 7919 &+ 17)
        let lines = (0..<400).map { _ in Self.line(&g) }
        let pattern = Self.patterns[seed % Self.patterns.count]
        let zone = Self.zones[seed % Self.zones.count]
        let r = try Self.check(lines, datePattern: pattern, timeZone: zone, label: "seed\(seed)")
        print(
            "date sequence oracle seed \(seed) (\(pattern.map { $0.debugDescription } ?? "defaults")): \(r.agree)/\(r.total)"
        )
        for d in r.differences.prefix(10) { print(d) }
        #expect(r.differences.isEmpty, "\(r.differences.count) lines differ; first: \(r.differences.first ?? "")")
    }

    /// Runs of one format then another: exercises "last template first" and the reordering by hits.
    @Test(.enabled(if: DateTestSupport.oracleAvailable), arguments: 0..<12)
    func runsOfFormatsAgree(seed: Int) throws {
        var g = Generator(state: UInt64(seed) &* 104_729 &+ 3)
        var lines: [String] = []
        while lines.count < 600 {
            // A run of one format with one prefix, as a single daemon writes it; sometimes interleaved noise.
            let format = g.int(0...21)
            let prefix = g.pick(Self.prefixes)
            for _ in 0..<g.int(1...40) {
                lines.append(g.int(0...15) == 0 ? Self.line(&g) : Self.line(&g, format: format, prefix: prefix))
            }
        }
        let r = try Self.check(lines, datePattern: seed % 2 == 0 ? nil : "{^LN-BEG}", label: "runs\(seed)")
        print("date run oracle seed \(seed): \(r.agree)/\(r.total)")
        for d in r.differences.prefix(10) { print(d) }
        #expect(r.differences.isEmpty, "\(r.differences.count) lines differ; first: \(r.differences.first ?? "")")
    }

    /// Local times across both DST transitions of the sample zone, in log order, every 10 minutes.
    @Test(.enabled(if: DateTestSupport.oracleAvailable), arguments: [nil, "%Y-%m-%d %H:%M:%S"] as [String?])
    func dstTransitionsAgree(pattern: String?) throws {
        var lines: [String] = []
        for date in ["2005-03-26", "2005-03-27", "2005-10-29", "2005-10-30"] {
            for minutes in stride(from: 0, to: 24 * 60, by: 10) {
                let h = minutes / 60
                let m = minutes % 60
                lines.append("\(date) \(h < 10 ? "0" : "")\(h):\(m < 10 ? "0" : "")\(m):00 x")
            }
        }
        let r = try Self.check(lines, datePattern: pattern, label: "dst")
        print("date DST oracle (\(pattern ?? "defaults")): \(r.agree)/\(r.total)")
        for d in r.differences.prefix(10) { print(d) }
        #expect(r.differences.isEmpty, "\(r.differences.count) lines differ; first: \(r.differences.first ?? "")")
    }
}
