import Foundation
import PortcullisTestKit
import Synchronization
import Testing

@testable import LogSource

/// Collects journal lines (copied), their times and the batch cursors.
final class JournalCollector: Sendable {
    let lines = Mutex<[String]>([])
    let times = Mutex<[UInt64]>([])
    let cursors = Mutex<[String]>([])

    func take(_ entry: JournalEntry) {
        let text = String(decoding: entry.line, as: UTF8.self)
        lines.withLock { $0.append(text) }
        times.withLock { $0.append(entry.realtime) }
    }

    var all: [String] { lines.withLock { $0 } }
    var count: Int { lines.withLock { $0.count } }
}

@Suite("JournalSource", .serialized, .blocking, .enabled(if: JournalWriter.available, "needs systemd-journal-remote"))
struct JournalSourceTests {
    static let base: UInt64 = 1_700_000_000_000_000

    private func source(
        _ files: [String],
        match: JournalMatch = .all,
        start: JournalSource.Start,
        into c: JournalCollector
    ) -> JournalSource {
        JournalSource(
            location: .files(files),
            match: match,
            start: start,
            handler: { c.take($0) },
            batchEnd: { cursor in c.cursors.withLock { $0.append(cursor) } }
        )
    }

    @Test("reads journal files from the head, formatted like fail2ban's systemd backend")
    func head() async throws {
        let dir = TempDir()
        defer { dir.remove() }
        let path = dir.file("a.journal")
        try JournalWriter.append(
            (0..<3).map { JournalWriter.sshd($0, realtime: Self.base + UInt64($0) * 1_000_000) },
            to: path
        )
        let c = JournalCollector()
        let s = source([path], start: .head, into: c)
        try s.start()
        defer { s.stop() }
        await s.sync()
        let lines = c.all
        #expect(lines.count == 3)
        // Time prefix depends on the local zone; the rest is fixed.
        for (i, line) in lines.enumerated() {
            #expect(
                line.hasSuffix(
                    " web1 sshd[\(4000 + i)]: Failed password for invalid user u\(i) from 198.51.100.\(i) port 22 ssh2"
                )
            )
        }
        #expect(c.times.withLock { $0 } == [Self.base, Self.base + 1_000_000, Self.base + 2_000_000])
        #expect(s.cursor != nil)
        #expect(c.cursors.withLock { $0.last } == s.cursor)
    }

    @Test("journalmatch: '+' separates alternatives, terms on different fields all hold")
    func matches() async throws {
        let dir = TempDir()
        defer { dir.remove() }
        let path = dir.file("m.journal")
        var entries: [JournalWriter.Entry] = []
        for i in 0..<6 {
            entries.append(
                JournalWriter.sshd(i, realtime: Self.base + UInt64(i) * 2_000_000, host: i % 2 == 0 ? "a" : "b")
            )
            entries.append(JournalWriter.other(i, realtime: Self.base + UInt64(i) * 2_000_000 + 1_000_000))
        }
        try JournalWriter.append(entries, to: path)

        let both = JournalCollector()
        let m1 = try JournalMatch(parsing: "_SYSTEMD_UNIT=ssh.service _HOSTNAME=a + _COMM=cron")
        #expect(m1.alternatives == [["_SYSTEMD_UNIT=ssh.service", "_HOSTNAME=a"], ["_COMM=cron"]])
        let s1 = source([path], match: m1, start: .head, into: both)
        try s1.start()
        await s1.sync()
        s1.stop()
        let sshFromA = both.all.filter { $0.contains(" sshd[") }
        let cron = both.all.filter { $0.contains(" cron[") }
        #expect(sshFromA.count == 3)
        #expect(sshFromA.allSatisfy { $0.contains(" a sshd[") })
        #expect(cron.count == 6)
        #expect(both.count == 9)

        let ssh = JournalCollector()
        let s2 = source([path], match: try JournalMatch(parsing: "_SYSTEMD_UNIT=ssh.service"), start: .head, into: ssh)
        try s2.start()
        await s2.sync()
        s2.stop()
        #expect(ssh.count == 6)
        #expect(ssh.all.allSatisfy { $0.contains(" sshd[") })
    }

    @Test("resume from a stored cursor delivers only later entries")
    func cursorResume() async throws {
        let dir = TempDir()
        defer { dir.remove() }
        let path = dir.file("c.journal")
        try JournalWriter.append((0..<4).map { JournalWriter.sshd($0, realtime: Self.base + UInt64($0)) }, to: path)
        let first = JournalCollector()
        let s1 = source([path], start: .head, into: first)
        try s1.start()
        await s1.sync()
        s1.stop()
        #expect(first.count == 4)
        let cursor = try #require(s1.cursor)

        try JournalWriter.append(
            (4..<7).map { JournalWriter.sshd($0, realtime: Self.base + 100 + UInt64($0)) },
            to: path
        )
        let second = JournalCollector()
        let s2 = source([path], start: .cursor(cursor), into: second)
        try s2.start()
        await s2.sync()
        s2.stop()
        #expect(
            second.all.map { $0.contains("user u4 ") || $0.contains("user u5 ") || $0.contains("user u6 ") } == [
                true, true, true,
            ]
        )
        #expect(second.count == 3)
    }

    @Test("tail skips old entries and follows new ones as they are written")
    func follow() async throws {
        let dir = TempDir()
        defer { dir.remove() }
        let path = dir.file("f.journal")
        try JournalWriter.append((0..<5).map { JournalWriter.sshd($0, realtime: Self.base + UInt64($0)) }, to: path)
        let c = JournalCollector()
        let s = source([path], match: try JournalMatch(parsing: "SYSLOG_IDENTIFIER=sshd"), start: .tail, into: c)
        try s.start()
        defer { s.stop() }
        await s.sync()
        #expect(c.count == 0)
        try JournalWriter.append(
            [JournalWriter.other(9, realtime: Self.base + 50)]
                + (10..<13).map { JournalWriter.sshd($0, realtime: Self.base + 100 + UInt64($0)) },
            to: path
        )
        // No sync: the journal fd wakeup alone must deliver.
        await eventually { c.count >= 3 }
        await s.sync()
        #expect(c.count == 3)
        #expect(c.all.allSatisfy { $0.contains(" sshd[") })
        #expect(c.all.first?.contains("user u10 ") == true)
    }

    @Test(
        "started at the tail, the first cursor reported is the last entry's: entries written before a restart are read")
    func tailReportsItsStartingCursor() async throws {
        let dir = TempDir()
        defer { dir.remove() }
        let path = dir.file("t.journal")
        try JournalWriter.append((0..<3).map { JournalWriter.sshd($0, realtime: Self.base + UInt64($0)) }, to: path)
        let first = JournalCollector()
        let s1 = source([path], start: .tail, into: first)
        try s1.start()
        await s1.sync()
        s1.stop()
        #expect(first.count == 0)
        // The daemon stores this cursor; it ends before any new entry arrives (a SIGKILL, a stop).
        let stored = try #require(first.cursors.withLock { $0.first })
        try JournalWriter.append(
            (3..<5).map { JournalWriter.sshd($0, realtime: Self.base + 10 + UInt64($0)) }, to: path)
        let second = JournalCollector()
        let s2 = source([path], start: .cursor(stored), into: second)
        try s2.start()
        await s2.sync()
        s2.stop()
        #expect(second.all.map { $0.contains("user u3 ") || $0.contains("user u4 ") } == [true, true])
    }

    @Test("a journal directory, started at a point in time")
    func directoryFromTime() async throws {
        let dir = TempDir()
        defer { dir.remove() }
        try JournalWriter.append(
            (0..<6).map { JournalWriter.sshd($0, realtime: Self.base + UInt64($0) * 1_000_000) },
            to: dir.file("system.journal")
        )
        let c = JournalCollector()
        let s = JournalSource(
            location: .directory(dir.path),
            start: .realtime(Self.base + 3_000_000),
            handler: { c.take($0) }
        )
        try s.start()
        await s.sync()
        s.stop()
        #expect(c.times.withLock { $0 } == [3, 4, 5].map { Self.base + UInt64($0) * 1_000_000 })
    }

    @Test("bad matches, cursors and paths are clear errors")
    func errors() throws {
        #expect(throws: LogSourceError.self) { try JournalMatch(parsing: "_SYSTEMD_UNIT") }
        #expect(throws: LogSourceError.self) { try JournalMatch(parsing: "lower=x") }
        #expect(throws: LogSourceError.self) { try JournalMatch(parsing: "\"A=b") }
        do {
            let s = JournalSource(location: .files(["/nonexistent/pcl.journal"]), handler: { _ in })
            #expect(throws: LogSourceError.self) { try s.start() }
        }
        let dir = TempDir()
        defer { dir.remove() }
        let path = dir.file("e.journal")
        try JournalWriter.append([JournalWriter.sshd(0, realtime: Self.base)], to: path)
        let s = JournalSource(location: .files([path]), start: .cursor("not a cursor"), handler: { _ in })
        let error = #expect(throws: LogSourceError.self) { try s.start() }
        #expect(error?.code == .invalidCursor)
        let quoted = try JournalMatch(parsing: "'MESSAGE=a b' + _PID=1")
        #expect(quoted.alternatives == [["MESSAGE=a b"], ["_PID=1"]])
    }
}

@Suite("JournalLineFormatter")
struct JournalLineFormatterTests {
    private func format(
        _ fields: [(String, String)],
        realtime: UInt64 = 1_700_000_000_000_000,
        monotonic: UInt64 = 2001
    ) -> (String, UInt64) {
        var f = JournalLineFormatter(maxLineLength: 200)
        f.reset()
        for (k, v) in fields {
            let item = Array("\(k)=\(v)".utf8)
            item.withUnsafeBytes { f.take(field: $0) }
        }
        let t = f.compose(entryRealtime: realtime, entryMonotonic: monotonic)
        return (String(decoding: f.line, as: UTF8.self), t)
    }

    /// The line without its local-time prefix (everything after the first space).
    private func body(_ line: String) -> String {
        String(line[line.index(after: line.firstIndex(of: " ")!)...])
    }

    @Test("host, identifier, pid and message; fallbacks to _COMM and _PID")
    func fields() {
        #expect(
            body(format([("_HOSTNAME", "h"), ("SYSLOG_IDENTIFIER", "sshd"), ("_PID", "9"), ("MESSAGE", "m")]).0)
                == "h sshd[9]: m"
        )
        #expect(
            body(format([("_HOSTNAME", "h"), ("_COMM", "dropbear"), ("_PID", "5"), ("MESSAGE", "m")]).0)
                == "h dropbear[5]: m"
        )
        #expect(
            body(format([("SYSLOG_IDENTIFIER", "app"), ("SYSLOG_PID", "77"), ("_PID", "88"), ("MESSAGE", "m")]).0)
                == "app[77]: m"
        )
        #expect(body(format([("_HOSTNAME", "h"), ("_PID", "12"), ("MESSAGE", "pid only")]).0) == "h pid only")
        #expect(body(format([("_HOSTNAME", "h"), ("SYSLOG_IDENTIFIER", "x"), ("MESSAGE", "")]).0) == "h x: ")
        #expect(
            body(format([("MESSAGE", "multi"), ("MESSAGE", "two"), ("SYSLOG_IDENTIFIER", "a")]).0) == "a: multi two"
        )
    }

    @Test("the kernel without a pid shows its monotonic time")
    func kernel() {
        #expect(
            body(format([("_HOSTNAME", "h"), ("SYSLOG_IDENTIFIER", "kernel"), ("MESSAGE", "k")]).0)
                == "h kernel: [    0.002001] k"
        )
        #expect(
            body(
                format([("SYSLOG_IDENTIFIER", "kernel"), ("_SOURCE_MONOTONIC_TIMESTAMP", "5000000"), ("MESSAGE", "k")])
                    .0
            )
                == "kernel: [    5.000000] k"
        )
        #expect(
            body(format([("SYSLOG_IDENTIFIER", "kernel"), ("SYSLOG_PID", "45"), ("MESSAGE", "k")]).0)
                == "kernel[45]: k"
        )
    }

    @Test("time: _SOURCE_REALTIME_TIMESTAMP wins; microseconds only when non-zero; local offset")
    func time() {
        let (line, t) = format([("_SOURCE_REALTIME_TIMESTAMP", "1600000000000000"), ("MESSAGE", "x")])
        #expect(t == 1_600_000_000_000_000)
        // Whatever the local zone (other suites may change TZ while this runs), the text names the instant.
        #expect(line.hasSuffix(" x"))
        #expect(line.utf8.count == "2020-09-13T12:26:40+00:00 x".utf8.count)
        #expect(JournalOracleTests.instant(line) == 1_600_000_000_000_000)
        let (frac, _) = format([("MESSAGE", "y")], realtime: 1_700_000_003_123_456)
        #expect(frac.split(separator: " ").first?.contains(".123456") == true)
        #expect(JournalOracleTests.instant(frac) == 1_700_000_003_123_456)
    }

    @Test("a newline in a field is written as \\n, and counts two bytes towards the limit")
    func newlines() {
        #expect(
            body(
                format([
                    ("_HOSTNAME", "h"), ("SYSLOG_IDENTIFIER", "a\nb"), ("_PID", "9"), ("MESSAGE", "x\nsshd[1]: y\n"),
                ]).0)
                == "h a\\nb[9]: x\\nsshd[1]: y\\n")
        var f = JournalLineFormatter(maxLineLength: 60)
        f.reset()
        Array("SYSLOG_IDENTIFIER=a".utf8).withUnsafeBytes { f.take(field: $0) }
        _ = f.compose(entryRealtime: 1_700_000_000_000_000, entryMonotonic: 1)
        let head = f.line.count
        func compose(_ message: String) -> JournalLineFormatter {
            var f = JournalLineFormatter(maxLineLength: 60)
            f.reset()
            for item in [Array("SYSLOG_IDENTIFIER=a".utf8), Array("MESSAGE=\(message)".utf8)] {
                item.withUnsafeBytes { f.take(field: $0) }
            }
            _ = f.compose(entryRealtime: 1_700_000_000_000_000, entryMonotonic: 1)
            return f
        }
        let fits = compose(String(repeating: "z", count: 60 - head - 2) + "\n")
        #expect(fits.tooLongLength == nil && fits.line.count == 60)
        let over = compose(String(repeating: "z", count: 60 - head - 1) + "\n")
        #expect(over.tooLongLength == 61 && over.line.isEmpty)
    }

    @Test("a line longer than maxLineLength is not built (the entry is skipped), one at the limit is whole")
    func longMessage() {
        func compose(_ message: String, parts: Int = 1) -> JournalLineFormatter {
            var f = JournalLineFormatter(maxLineLength: 200)
            f.reset()
            for item in [Array("SYSLOG_IDENTIFIER=a".utf8)]
                + Array(repeating: Array("MESSAGE=\(message)".utf8), count: parts)
            {
                item.withUnsafeBytes { f.take(field: $0) }
            }
            _ = f.compose(entryRealtime: 1_700_000_000_000_000, entryMonotonic: 1)
            return f
        }
        let head = compose("").line.count  // "<date> a: "
        let long = compose(String(repeating: "z", count: 1000))
        #expect(long.line.isEmpty)
        #expect(long.tooLongLength == head + 1000)
        let atLimit = compose(String(repeating: "z", count: 200 - head))
        #expect(atLimit.tooLongLength == nil)
        #expect(atLimit.line.count == 200)
        let overByOne = compose(String(repeating: "z", count: 201 - head))
        #expect(overByOne.tooLongLength == 201)
        // Several MESSAGE values: their joined length counts.
        let joined = compose(String(repeating: "z", count: 100), parts: 3)
        #expect(joined.tooLongLength == head + 302)
    }
}

/// fail2ban (installed, run at test time as an oracle) must see the same lines for the same journal file.
@Suite("JournalSource vs fail2ban", .blocking, .enabled(if: JournalWriter.available, "needs systemd-journal-remote"))
struct JournalOracleTests {
    @Test("lines equal fail2ban's systemd backend formatting")
    func sameAsFail2ban() async throws {
        let dir = TempDir()
        defer { dir.remove() }
        let path = dir.file("o.journal")
        let base: UInt64 = 1_700_000_000_000_000
        let entries: [JournalWriter.Entry] = [
            JournalWriter.sshd(1, realtime: base),
            .init(realtime: base + 123_456, fields: [("SYSLOG_IDENTIFIER", "sshd"), ("MESSAGE", "no host no pid")]),
            .init(
                realtime: base + 2_000_000,
                fields: [("_HOSTNAME", "h2"), ("_COMM", "dropbear"), ("_PID", "555"), ("MESSAGE", "comm only")]
            ),
            .init(
                realtime: base + 3_000_000,
                fields: [
                    ("_HOSTNAME", "h3"), ("SYSLOG_IDENTIFIER", "kernel"), ("_TRANSPORT", "kernel"),
                    ("_SOURCE_MONOTONIC_TIMESTAMP", "123456789"), ("MESSAGE", "kernel says"),
                ]
            ),
            .init(
                realtime: base + 4_000_000,
                fields: [
                    ("SYSLOG_IDENTIFIER", "app"), ("SYSLOG_PID", "77"), ("_PID", "88"),
                    ("_SOURCE_REALTIME_TIMESTAMP", "1600000000000000"), ("MESSAGE", "source time"),
                ]
            ),
            .init(realtime: base + 5_000_000, fields: [("_HOSTNAME", "h"), ("_PID", "12"), ("MESSAGE", "pid only")]),
            .init(
                realtime: base + 6_000_000,
                fields: [("_HOSTNAME", "h"), ("SYSLOG_IDENTIFIER", "x"), ("MESSAGE", "")]
            ),
            .init(
                realtime: base + 7_000_000,
                fields: [("_HOSTNAME", "h"), ("SYSLOG_IDENTIFIER", "kernel"), ("SYSLOG_PID", "4"), ("MESSAGE", "kpid")]
            ),
            // A message with newlines (a native journal client or a syslog datagram may carry them): one line,
            // each newline written as `\n` as fail2ban does, so a message can never pass for several lines.
            .init(
                realtime: base + 8_000_000,
                fields: [
                    ("_HOSTNAME", "h"), ("SYSLOG_IDENTIFIER", "app"), ("_PID", "9"),
                    ("MESSAGE", "login failed for x\nsshd[1]: Failed password for root from 192.0.2.66 port 22 ssh2\n"),
                ]
            ),
        ]
        try JournalWriter.append(entries, to: path)

        let c = JournalCollector()
        let s = JournalSource(location: .files([path]), start: .head, handler: { c.take($0) })
        try s.start()
        await s.sync()
        s.stop()

        let script = """
            import sys
            from systemd import journal
            from fail2ban.server.filtersystemd import FilterSystemd
            f = FilterSystemd(None, journalfiles=[sys.argv[1]])
            for e in journal.Reader(files=[sys.argv[1]]):
                parts, t = f.formatJournalEntry(e)
                sys.stdout.write("".join(parts) + "\\n")
            """
        let p = Process()
        p.executableURL = URL(fileURLWithPath: "/usr/bin/python3")
        p.arguments = ["-c", script, path]
        let out = Pipe()
        p.standardOutput = out
        p.standardError = FileHandle.nullDevice
        try p.run()
        let data = out.fileHandleForReading.readDataToEndOfFile()
        p.waitUntilExit()
        try #require(p.terminationStatus == 0, "fail2ban's python (python3-systemd) must run")
        let theirs = String(decoding: data, as: UTF8.self).split(separator: "\n", omittingEmptySubsequences: false)
            .dropLast().map(String.init)
        #expect(theirs.count == entries.count)
        // The text after the time is identical. The time is the same instant: fail2ban writes it with the
        // zone offset in force now, we with the offset in force at the entry (they differ across DST).
        #expect(c.all.map(Self.body) == theirs.map(Self.body))
        #expect(c.all.map(Self.instant) == theirs.map(Self.instant))
        #expect(!c.all.map(Self.instant).contains(nil))
    }

    static func body(_ line: String) -> Substring {
        line[line.index(after: line.firstIndex(of: " ") ?? line.startIndex)...]
    }

    /// `YYYY-MM-DDTHH:MM:SS[.ffffff]±HH:MM` → µs since the epoch.
    static func instant(_ line: String) -> Int64? {
        let stamp = Array(line.prefix(while: { $0 != " " }).utf8)
        func num(_ from: Int, _ count: Int) -> Int? {
            guard from + count <= stamp.count else { return nil }
            return Int(String(decoding: stamp[from..<(from + count)], as: UTF8.self))
        }
        guard let y = num(0, 4), let mo = num(5, 2), let d = num(8, 2), let h = num(11, 2), let mi = num(14, 2),
            let sec = num(17, 2)
        else { return nil }
        var i = 19
        var micros = 0
        if i < stamp.count, stamp[i] == UInt8(ascii: ".") {
            guard let f = num(20, 6) else { return nil }
            micros = f
            i = 26
        }
        guard i + 6 == stamp.count, let oh = num(i + 1, 2), let om = num(i + 4, 2) else { return nil }
        let sign = stamp[i] == UInt8(ascii: "-") ? -1 : 1
        var tm = Glibc.tm()
        tm.tm_year = Int32(y - 1900)
        tm.tm_mon = Int32(mo - 1)
        tm.tm_mday = Int32(d)
        tm.tm_hour = Int32(h)
        tm.tm_min = Int32(mi)
        tm.tm_sec = Int32(sec)
        let utc = Int64(timegm(&tm)) - Int64(sign * (oh * 3600 + om * 60))
        return utc * 1_000_000 + Int64(micros)
    }
}
