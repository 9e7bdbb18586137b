import Configuration
import Control
import Core
import Filter
import Firewall
import Foundation
import Jail
import LogSource
import PortcullisTestKit
import Synchronization
import Testing

@testable import Daemon

/// Issue 7 item 1: a long line can never move the address. The padded-user-name attack (the forged tail ends
/// exactly where a cut would land) at every cut position from limit-160 to limit+64, for our sshd, dovecot and
/// postfix filters and fail2ban's stock pam-generic, through the daemon's own line path: the file tailer and
/// the journal source feeding `JailReader`, as `SourceSet` wires them.
@Suite("Long lines never move the address (daemon)", .blocking, .serialized)
struct LongLineAttackTests {
    static let limit = Bounds.maximumLineLength
    static let repoRoot = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent().path

    /// The filter as a jail loads it, with the daemon's default options.
    static func processor(_ attack: LongLineAttack) throws -> LineProcessor {
        let tree = ConfigTree(root: attack.stock ? "/etc/fail2ban" : repoRoot + "/config")
        let definition = try tree.loadFilter(attack.filter)
        return try CompiledFilter(definition, options: FilterOptions()).makeProcessor()
    }

    /// Collects what a `JailReader` hands to the coordinator.
    final class Sink: Sendable {
        let addresses = Mutex<[String]>([])
        func take(_ events: [FailureEvent]) { addresses.withLock { $0 += events.map(\.address.description) } }
        var all: [String] { addresses.withLock { $0 } }
    }

    @Test("the attack lines are real: cut at the limit, each would have named the forged address")
    func attackIsReal() throws {
        for attack in LongLineAttack.all where attack.prefixNamesFake {
            let p = try Self.processor(attack)
            let cut = attack.prefixEndingAtFake(cut: Self.limit)
            #expect(cut.utf8.count == Self.limit)
            #expect(p.process(cut) == .matched, "\(attack.name): the prefix does not match")
            #expect(p.failures.first?.address?.description == LongLineAttack.fake, "\(attack.name)")
            // The neighbours are real failures too.
            #expect(p.process(attack.neighbourLine("203.0.113.9")) == .matched, "\(attack.name)")
            #expect(p.failures.first?.address?.description == "203.0.113.9")
        }
    }

    /// The lines of one sweep: neighbour, attack, neighbour, attack, …, neighbour.
    static func sweep(
        _ attack: LongLineAttack, line: (Int) -> String, neighbour: (String) -> String
    )
        -> (lines: [String], neighbours: [String], longer: Int, fitting: Int)
    {
        var lines: [String] = []
        var neighbours: [String] = []
        var longer = 0
        var fitting = 0
        for (i, cut) in LongLineAttack.cuts(around: limit).enumerated() {
            let n = LongLineAttack.neighbourAddress(i)
            neighbours.append(n)
            lines.append(neighbour(n))
            let l = line(cut)
            if l.utf8.count > limit { longer += 1 } else { fitting += 1 }
            lines.append(l)
        }
        let last = LongLineAttack.neighbourAddress(LongLineAttack.cuts(around: limit).count)
        neighbours.append(last)
        lines.append(neighbour(last))
        return (lines, neighbours, longer, fitting)
    }

    static func check(
        _ attack: LongLineAttack, _ found: [String], _ neighbours: [String], fitting: Int, skipped: Int, longer: Int,
        path: String
    ) {
        #expect(!found.contains(LongLineAttack.fake), "\(attack.name) via \(path): the forged address was reported")
        #expect(skipped == longer, "\(attack.name) via \(path): \(skipped) lines counted too long, expected \(longer)")
        #expect(longer > 0 && fitting > 0, "\(attack.name) via \(path): \(longer) longer, \(fitting) fitting")
        for n in neighbours {
            #expect(found.filter { $0 == n }.count == 1, "\(attack.name) via \(path): neighbour \(n) not reported once")
        }
        let others = found.filter { !neighbours.contains($0) }
        #expect(others.allSatisfy { $0 == LongLineAttack.real }, "\(attack.name) via \(path): \(Set(others))")
        #expect(others.count <= fitting)
    }

    @Test("through the file tailer: over-long lines skipped and counted, the forged address never reported")
    func fileTailer() async throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("pcl-lines-attack-\(getpid())")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        for attack in LongLineAttack.all {
            let s = Self.sweep(attack, line: { attack.line(cut: $0) }, neighbour: { attack.neighbourLine($0) })
            let path = dir.appendingPathComponent("\(attack.name).log").path
            try Data((s.lines.joined(separator: "\n") + "\n").utf8).write(to: URL(fileURLWithPath: path))
            let sink = Sink()
            let reader = JailReader(jail: attack.name, processor: try Self.processor(attack))
            let events = Mutex<[FileTailer.Event]>([])
            let tailer = FileTailer(events: { e in events.withLock { $0.append(e) } })  // the daemon's defaults
            tailer.subscribe([path], startAt: .beginning) { batch in
                reader.consume(batch)
                sink.take(reader.take())
            }
            try tailer.start()
            let deadline = ContinuousClock.now + .seconds(120)
            while ContinuousClock.now < deadline,
                sink.all.count < s.neighbours.count || reader.counters.counts.tooLong < s.longer
            {
                try await Task.sleep(for: .milliseconds(20))
            }
            await tailer.sync()
            tailer.stop()
            Self.check(
                attack, sink.all, s.neighbours, fitting: s.fitting, skipped: reader.counters.counts.tooLong,
                longer: s.longer, path: "file tailer")
            let tooLong = events.withLock { $0 }.filter { if case .lineTooLong = $0 { true } else { false } }
            #expect(tooLong.count == 1, "\(attack.name): the over-long lines are reported once per file")
            if case .lineTooLong(let p, let length, let limit) = tooLong.first {
                #expect(p == path && length > limit && limit == Self.limit)
            }
        }
    }

    @Test(
        "through the journal: over-long entries skipped and counted, the forged address never reported",
        .enabled(if: JournalWriter.available, "needs systemd-journal-remote"))
    func journal() async throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("pcl-lines-journal-\(getpid())")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        for attack in LongLineAttack.all {
            // The formatted line is "<date+offset, 25 bytes> mail IDENT[4242]: MESSAGE"; the limit applies to it.
            let head = 25 + " mail ".utf8.count + attack.prefix.utf8.count
            var i = 0
            func entry(_ message: String) -> JournalWriter.Entry {
                i += 1
                return JournalWriter.Entry(
                    realtime: 1_700_000_000_000_000 + UInt64(i) * 1_000_000,
                    fields: [
                        ("_HOSTNAME", "mail"), ("SYSLOG_IDENTIFIER", attack.identifier), ("SYSLOG_PID", "4242"),
                        ("MESSAGE", message),
                    ])
            }
            let s = Self.sweep(
                attack, line: { attack.message(cut: $0, headLength: head) }, neighbour: { attack.neighbourMessage($0) })
            // `sweep` measured messages; the formatted lines are `head` bytes longer.
            let longer = s.lines.filter { $0.utf8.count + head > Self.limit }.count
            let fitting = s.lines.count - s.neighbours.count - longer
            let path = dir.appendingPathComponent("\(attack.name).journal").path
            try JournalWriter.append(s.lines.map(entry), to: path)
            let sink = Sink()
            let reader = JailReader(jail: attack.name, processor: try Self.processor(attack))
            let source = JournalSource(
                location: .files([path]), start: .head,
                handler: { reader.consume(entry: $0) }, batchEnd: { _ in sink.take(reader.take()) },
                tooLong: { reader.skippedTooLong(1, length: $0, source: nil) })
            try source.start()
            let deadline = ContinuousClock.now + .seconds(120)
            while ContinuousClock.now < deadline,
                sink.all.count < s.neighbours.count || reader.counters.counts.tooLong < longer
            {
                try await Task.sleep(for: .milliseconds(20))
            }
            await source.sync()
            source.stop()
            Self.check(
                attack, sink.all, s.neighbours, fitting: fitting, skipped: reader.counters.counts.tooLong,
                longer: longer, path: "journal")
            #expect(source.skippedLines == longer)
        }
    }
}

@Suite("Skipped-line counters reach status")
struct SkippedLineCounterTests {
    @Test("a line at PCRE2's match limit and an over-long line are counted per jail and shown by status JAIL")
    func countersInStatus() throws {
        let definition = FilterConfiguration(
            name: "t", file: "t.conf", failregex: [ConfigValue(#"^(?:(?:\w+)+\s?)+ from <HOST> never$"#)])
        let processor = try CompiledFilter(definition).makeProcessor()
        let reader = JailReader(jail: "t", processor: processor)
        reader.consume(String(repeating: "word ", count: 40) + "x from 192.0.2.1")
        reader.consume("2024-05-01 12:00:00 " + String(repeating: "y", count: Bounds.maximumLineLength))
        reader.consume("2024-05-01 12:00:00 short")
        #expect(reader.counters.counts == LineCounts(tooLong: 1, matchLimit: 1))
        let status = ControlReplies.jailStatus(
            currentlyFailed: 0, totalFailed: 0, source: .files(["/var/log/x"]), currentlyBanned: 0, totalBanned: 0,
            bannedAddresses: [], skipped: reader.counters.counts.statusEntries)
        let text = StatusFormatter.format(status, for: ["status", "t"])
        #expect(text.contains("Lines too long:\t1"), "\(text)")
        #expect(text.contains("Lines at match limit:\t1"), "\(text)")
        // With nothing skipped the reply is fail2ban's exactly.
        let plain = ControlReplies.jailStatus(
            currentlyFailed: 0, totalFailed: 0, source: .files(["/var/log/x"]), currentlyBanned: 0, totalBanned: 0,
            bannedAddresses: [], skipped: LineCounts().statusEntries)
        #expect(!StatusFormatter.format(plain, for: ["status", "t"]).contains("Lines"))
    }
}

extension JailReader {
    /// Test convenience: one line given as text.
    func consume(_ text: String) {
        var s = text
        s.withUTF8 { consume($0) }
    }
}

/// The same attack through the whole running daemon: its log file, its tailer, its coordinator, its socket.
@Suite(.serialized) struct LongLineDaemonTests {
    @Test("three padded lines with a forged tail at the limit: nothing banned for them, counted in status, logged once")
    func runningDaemon() async throws {
        let fx = try DaemonFlowTests.Fixture()
        let firewall = RecordingFirewall()
        let daemon = PortcullisDaemon(settings: DaemonSettings(configDirectory: fx.dir, firewall: .custom(firewall)))
        let task = Task { try await daemon.run() }
        await daemon.waitUntilReady()
        try await fx.waitUntilWatching()
        let client = ControlClient(socketPath: fx.dir + "/portcullis.sock", dialect: .pickle)

        let head = DaemonFlowTests.line("192.0.2.1", user: "PAD")
        let before = head.components(separatedBy: "PAD")[0]  // "<date> host testauth[42]: auth failure for "
        let forged = " from \(LongLineAttack.fake)"
        let pad = String(repeating: "x", count: Bounds.maximumLineLength - before.utf8.count - forged.utf8.count)
        let attack = DaemonFlowTests.line(LongLineAttack.real, user: pad + forged)
        #expect(String(attack.utf8.prefix(Bounds.maximumLineLength))!.hasSuffix(forged))
        fx.append([attack, attack, attack])
        fx.append([
            DaemonFlowTests.line("203.0.113.5"), DaemonFlowTests.line("203.0.113.5"),
            DaemonFlowTests.line("203.0.113.5"),
        ])
        let deadline = ContinuousClock.now + .seconds(60)
        var text = ""
        while ContinuousClock.now < deadline {
            if case .success(let v) = await client.send(["status", "testauth"]) {
                text = StatusFormatter.format(v, for: ["status", "testauth"])
                if text.contains("Lines too long:\t3") && text.contains("203.0.113.5") { break }
            }
            try await Task.sleep(for: .milliseconds(20))
        }
        #expect(text.contains("Lines too long:\t3"), "\(text)")
        #expect(firewall.bannedKeys.contains(BanKey(address: IPAddress("203.0.113.5")!, jail: "testauth")))
        #expect(!firewall.bannedKeys.contains { $0.address == IPAddress(LongLineAttack.fake)! })
        #expect(!text.contains(LongLineAttack.fake))
        let log = fx.read("portcullis.log")
        #expect(log.components(separatedBy: "skipped a line of").count == 2, "logged once per file")
        #expect(log.contains("skipped a line of \(attack.utf8.count) bytes, longer than \(Bounds.maximumLineLength)"))
        #expect(await client.send(["stop"]) == .success(.null))
        try await task.value
        _ = daemon
    }
}
