import Configuration
import Core
import Firewall
import Glibc
import Jail
import Logging
import PortcullisTestKit
import Store
import Synchronization
import Testing

@testable import Daemon

/// The coordinator's lifecycle at its suspension points: reloads and stops while a ban is in flight, one-jail
/// reloads, and bans that end (fake clock, recording firewall).
@Suite struct BanCoordinatorTests {
    /// Every log line, as "LEVEL message".
    final class Lines: Sendable {
        let lines = Mutex<[String]>([])
        var all: [String] { lines.withLock { $0 } }
        func logger(_ label: String) -> Logger {
            Logger(label: label) { _ in Handler(lines: self) }
        }
        struct Handler: LogHandler {
            let lines: Lines
            var metadata: Logger.Metadata = [:]
            var logLevel: Logger.Level = .trace
            subscript(metadataKey key: String) -> Logger.Metadata.Value? {
                get { metadata[key] }
                set { metadata[key] = newValue }
            }
            func log(
                level: Logger.Level, message: Logger.Message, metadata: Logger.Metadata?, source: String,
                file: String, function: String, line: UInt
            ) {
                lines.lines.withLock { $0.append("\(level) \(message)") }
            }
        }
    }

    /// A configuration tree in a temporary directory with jails `alpha` and `beta` (maxretry 3, bantime 600).
    final class Tree {
        let dir: String
        init(_ jails: String? = nil, extra: String = "") throws {
            var template = Array("/tmp/pcl-coord-XXXXXX".utf8CString)
            guard let p = mkdtemp(&template) else { throw CError(code: errno) }
            dir = String(cString: p)
            mkdir(dir + "/filter.d", 0o755)
            try write("filter.d/testauth.conf", "[Definition]\nfailregex = ^auth failure from <HOST>$\n")
            try write("jail.conf", jails ?? Self.jails(extra: extra))
        }
        static func jails(
            alpha: String = "alpha", maxretry: Int = 3, bantime: String = "600", extra: String = ""
        )
            -> String
        {
            """
            [DEFAULT]
            maxretry = \(maxretry)
            findtime = 10m
            bantime = \(bantime)
            ignoreself = false
            banaction = nftables-multiport
            port = 0:65535
            \(extra.contains("action =") ? "" : #"action = %(banaction)s[port="%(port)s", protocol="tcp"]"#)
            \(extra)

            [\(alpha)]
            enabled = true
            filter = testauth
            logpath = /dev/null

            [beta]
            enabled = true
            filter = testauth
            logpath = /dev/null
            """
        }
        func write(_ name: String, _ text: String) throws {
            let fd = open(dir + "/" + name, O_WRONLY | O_CREAT | O_TRUNC, 0o644)
            guard fd >= 0 else { throw CError(code: errno) }
            _ = text.withCString { Glibc.write(fd, $0, strlen($0)) }
            close(fd)
        }
        func setups(clock: ManualClock) throws -> [JailSetup] {
            let loaded = PortcullisDaemon.loadJails(
                ConfigTree(root: dir), ports: try PortResolver(servicesPath: "/etc/services"), clock: clock.reading)
            #expect(loaded.broken.isEmpty, "\(loaded.broken)")
            return loaded.setups
        }
        deinit { _ = system("rm -rf '\(dir)'") }
    }

    let clock = ManualClock()
    let log = Lines()

    func coordinator(_ firewall: any FirewallBackend) -> BanCoordinator {
        BanCoordinator(firewall: firewall, store: nil, clock: clock.reading, logger: { [log] in log.logger($0) })
    }

    func failures(_ address: String, _ count: Int) -> [FailureEvent] {
        (0..<count).map { _ in FailureEvent(address: IPAddress(address)!, time: clock.now) }
    }

    func banCalls(_ recorder: RecordingFirewall, of address: String) -> Int {
        recorder.calls.filter { call in
            if case .ban(let requests) = call { requests.contains { $0.address == IPAddress(address)! } } else { false }
        }.count
    }

    @Test func reloadRemovingTheJailWhileItsBanIsInFlightDoesNotCrash() async throws {
        let tree = try Tree()
        let firewall = GatedFirewall()
        let c = coordinator(firewall)
        try await c.start(try tree.setups(clock: clock))
        firewall.hold()
        async let banning: Void = c.record(jail: "alpha", events: failures("192.0.2.7", 3))
        await firewall.waitUntilHeld()
        // alpha is renamed to gamma while its ban waits for the kernel.
        try tree.write("jail.conf", Tree.jails(alpha: "gamma"))
        let reloading = Task { try await c.reload(try tree.setups(clock: clock)) }
        firewall.release()
        await banning
        _ = try await reloading.value
        #expect(await c.jailNames == ["gamma", "beta"])
        #expect(await c.status(jail: "alpha") == nil)
        #expect(await c.status(jail: "gamma")?.banned == [])
        // The coordinator still works for the jails that run.
        await c.record(jail: "beta", events: failures("192.0.2.8", 3))
        #expect(await c.status(jail: "beta")?.banned == [IPAddress("192.0.2.8")!])
        #expect(log.all.contains("notice [alpha] Ban 192.0.2.7"))
    }

    @Test func reloadDuringABurstKeepsBansAndCountsAndBansNothingTwice() async throws {
        let tree = try Tree()
        let firewall = GatedFirewall()
        let recorder = firewall.recorder
        let c = coordinator(firewall)
        try await c.start(try tree.setups(clock: clock))
        await c.record(jail: "alpha", events: failures("192.0.2.1", 2))  // counted, not banned
        firewall.hold()
        async let banning: Void = c.record(jail: "alpha", events: failures("192.0.2.2", 3))
        await firewall.waitUntilHeld()
        let reloading = Task { try await c.reload(try tree.setups(clock: clock)) }
        // Failures recorded while the reload waits behind the held ban land in the jail.
        await c.record(jail: "beta", events: failures("192.0.2.3", 1))
        firewall.release()
        await banning
        _ = try await reloading.value
        // The third failure of 192.0.2.1 after the reload bans it: its count survived.
        await c.record(jail: "alpha", events: failures("192.0.2.1", 1))
        let alpha = try #require(await c.status(jail: "alpha"))
        // Listed in the order they were banned, as fail2ban lists them.
        #expect(alpha.banned == [IPAddress("192.0.2.2")!, IPAddress("192.0.2.1")!])
        #expect(alpha.totalFailed == 6)
        #expect(await c.status(jail: "beta")?.currentlyFailed == 1)
        #expect(banCalls(recorder, of: "192.0.2.2") == 1)
        #expect(banCalls(recorder, of: "192.0.2.1") == 1)
        #expect(Set(recorder.bannedKeys.map(\.address.description)) == ["192.0.2.1", "192.0.2.2"])
        #expect(log.all.filter { $0.hasSuffix("Ban 192.0.2.2") }.count == 1)
    }

    @Test func reloadOfOneJailLeavesTheOthersAsTheyRun() async throws {
        let tree = try Tree()
        let recorder = RecordingFirewall()
        let c = coordinator(recorder)
        try await c.start(try tree.setups(clock: clock))
        await c.record(jail: "beta", events: failures("192.0.2.5", 2))
        try tree.write("jail.conf", Tree.jails(maxretry: 5, bantime: "1h"))
        let next = try tree.setups(clock: clock)
        try await c.reload(jail: "alpha", setup: next.first { $0.name == "alpha" })
        #expect(await c.setup(jail: "alpha")?.policy.maxRetry == 5)
        #expect(await c.setup(jail: "alpha")?.policy.banTime == 3600)
        // beta still runs with its old settings (maxretry 3): its third failure bans.
        #expect(await c.setup(jail: "beta")?.policy.maxRetry == 3)
        await c.record(jail: "beta", events: failures("192.0.2.5", 1))
        #expect(await c.status(jail: "beta")?.banned == [IPAddress("192.0.2.5")!])
        // A one-jail reload of a jail the new configuration disables stops only that jail.
        try await c.reload(jail: "beta", setup: nil)
        #expect(await c.jailNames == ["alpha"])
        #expect(await c.runningSetups().map(\.name) == ["alpha"])
    }

    @Test func stopDuringABurstBansNothingAfterTheTableIsGone() async throws {
        let tree = try Tree()
        let firewall = GatedFirewall()
        let recorder = firewall.recorder
        let c = coordinator(firewall)
        try await c.start(try tree.setups(clock: clock))
        firewall.hold()
        async let banning: Void = c.record(jail: "alpha", events: failures("192.0.2.9", 3))
        await firewall.waitUntilHeld()
        let stopping = Task { await c.shutdown() }
        firewall.release()
        await banning
        await stopping.value
        await c.record(jail: "alpha", events: failures("192.0.2.10", 3))
        #expect(await c.banManually(jail: "alpha", addresses: [IPAddress("192.0.2.11")!]).banned == 0)
        _ = try? await c.reload(try tree.setups(clock: clock))
        // The in-flight ban went in before the table was removed, and nothing came after the tear-down.
        #expect(recorder.calls.last == .tearDown)
        #expect(banCalls(recorder, of: "192.0.2.9") == 1)
        #expect(banCalls(recorder, of: "192.0.2.10") == 0)
    }

    @Test func anEndedBanLogsUnbanAndRunsActionunbanOnce() async throws {
        let marks = try Tree()
        let tree = try Tree(
            extra: """
                action = %(banaction)s[port="%(port)s", protocol="tcp"]
                         record
                """)
        mkdir(tree.dir + "/action.d", 0o755)
        try tree.write(
            "action.d/record.conf",
            "[Definition]\nactionban =\nactionunban = echo unban <ip> >> \(marks.dir)/unbans\n")
        let recorder = RecordingFirewall()
        let c = coordinator(recorder)
        try await c.start(try tree.setups(clock: clock))
        await c.record(jail: "alpha", events: failures("192.0.2.30", 3))
        await c.record(jail: "alpha", events: failures("192.0.2.31", 3))
        clock.advance(by: 601)
        // 192.0.2.31 fails again after its ban ended but before housekeeping noticed: still one Unban.
        await c.record(jail: "alpha", events: failures("192.0.2.31", 1))
        await c.housekeeping()
        await c.housekeeping()
        #expect(log.all.filter { $0 == "notice [alpha] Unban 192.0.2.30" }.count == 1)
        #expect(log.all.filter { $0 == "notice [alpha] Unban 192.0.2.31" }.count == 1)
        #expect(await c.status(jail: "alpha")?.banned == [])
        // Command actions run on the jail's runner, off the counting path: wait for them.
        #expect(await c.waitForActions())
        let unbans = String(decoding: try readAll(marks.dir + "/unbans"), as: UTF8.self)
        #expect(unbans.split(separator: "\n").sorted() == ["unban 192.0.2.30", "unban 192.0.2.31"])
    }

    @Test func restoredBansRunActionbanWithRestoredSetExceptForNorestoredActions() async throws {
        // fail2ban 1.0.2 restores a ban by running every action's actionban with <restored> = 1 (an action whose
        // actionstart rebuilt its state, an ipset say, needs it); actions with norestored = 1 (mail) are skipped.
        let marks = try Tree()
        let tree = try Tree(
            extra: """
                action = %(banaction)s[port="%(port)s", protocol="tcp"]
                         record
                         mail
                """)
        mkdir(tree.dir + "/action.d", 0o755)
        try tree.write(
            "action.d/record.conf",
            "[Definition]\nactionstart = echo start <name> >> \(marks.dir)/record\n"
                + "actionban = echo ban <ip> restored=<restored> bancount=<bancount> >> \(marks.dir)/record\n")
        try tree.write(
            "action.d/mail.conf",
            "[Definition]\nnorestored = 1\nactionban = echo ban <ip> >> \(marks.dir)/mail\n")
        let store = try BanStore(path: marks.dir + "/bans.sqlite3")
        try store.addBan(
            BanRecord(
                jail: "alpha", address: IPAddress("192.0.2.40")!, timeOfBan: clock.now - 60, banTime: 600, banCount: 2))
        try store.addBan(
            BanRecord(jail: "alpha", address: IPAddress("192.0.2.41")!, timeOfBan: clock.now - 900, banTime: 600))
        let c = BanCoordinator(
            firewall: RecordingFirewall(), store: store, clock: clock.reading, logger: { [log] in log.logger($0) })
        #expect(try await c.start(try tree.setups(clock: clock)) == 1)
        #expect(await c.waitForActions())
        let record = String(decoding: try readAll(marks.dir + "/record"), as: UTF8.self)
        // alpha's actionstart first, then its restored ban (the ended one is not restored); beta's runner is
        // another thread.
        #expect(
            record.split(separator: "\n").filter { !$0.hasPrefix("start beta") } == [
                "start alpha", "ban 192.0.2.40 restored=1 bancount=2",
            ])
        #expect(access(marks.dir + "/mail", F_OK) != 0, "a norestored action ran for a restored ban")
        // A new ban is not restored.
        await c.record(jail: "alpha", events: failures("192.0.2.42", 3))
        #expect(await c.waitForActions())
        let after = String(decoding: try readAll(marks.dir + "/record"), as: UTF8.self)
        #expect(after.hasSuffix("ban 192.0.2.42 restored=0 bancount=1\n"))
        #expect(String(decoding: try readAll(marks.dir + "/mail"), as: UTF8.self) == "ban 192.0.2.42\n")
        await c.shutdown()
    }

    @Test func stopAndRemovalLiftCommandActionBansLikeFail2ban() async throws {
        // fail2ban 1.0.2 at stop (and for a jail a reload removes): each action's actionflush when it has one, else
        // actionunban for every ban, then actionstop. Without it a ban made by a command action outlived the stop
        // (a route, a cloud firewall entry), and the restart's restored actionban added it a second time.
        let marks = try Tree()
        let tree = try Tree(
            extra: """
                action = %(banaction)s[port="%(port)s", protocol="tcp"]
                         each
                         flush
                """)
        mkdir(tree.dir + "/action.d", 0o755)
        try tree.write(
            "action.d/each.conf",
            "[Definition]\nactionban = echo ban <ip> >> \(marks.dir)/<name>-each\n"
                + "actionunban = echo unban <ip> >> \(marks.dir)/<name>-each\nactionstop = echo stop >> \(marks.dir)/<name>-each\n"
        )
        try tree.write(
            "action.d/flush.conf",
            "[Definition]\nactionban = echo ban <ip> >> \(marks.dir)/<name>-flush\n"
                + "actionunban = echo unban <ip> >> \(marks.dir)/<name>-flush\n"
                + "actionflush = echo flush >> \(marks.dir)/<name>-flush\nactionstop = echo stop >> \(marks.dir)/<name>-flush\n"
        )
        let c = coordinator(RecordingFirewall())
        try await c.start(try tree.setups(clock: clock))
        await c.record(jail: "alpha", events: failures("192.0.2.50", 3))
        await c.record(jail: "alpha", events: failures("192.0.2.51", 3))
        await c.record(jail: "beta", events: failures("192.0.2.52", 3))
        #expect(await c.waitForActions())
        // A reload that removes beta lifts its ban; alpha keeps its bans.
        let onlyAlpha = try tree.setups(clock: clock).filter { $0.name == "alpha" }
        try await c.reload(onlyAlpha)
        #expect(await c.waitForActions())
        func lines(_ name: String) throws -> [String] {
            String(decoding: try readAll(marks.dir + "/" + name), as: UTF8.self).split(separator: "\n").map(String.init)
        }
        // The removed jail's runner finishes its queue on its own thread.
        for _ in 0..<1000 where (try? lines("beta-flush").count) != 3 || (try? lines("beta-each").count) != 3 {
            try await Task.sleep(for: .milliseconds(10))
        }
        #expect(try lines("beta-each") == ["ban 192.0.2.52", "unban 192.0.2.52", "stop"])
        #expect(try lines("beta-flush") == ["ban 192.0.2.52", "flush", "stop"])
        #expect(try lines("alpha-each") == ["ban 192.0.2.50", "ban 192.0.2.51"])
        // `restart alpha`: stopped as at shutdown (its bans lifted), then started (no store here: nothing restored).
        try await c.reload(jail: "alpha", setup: onlyAlpha.first, restart: true)
        #expect(await c.waitForActions())
        for _ in 0..<1000 where (try? lines("alpha-flush").count) != 4 { try await Task.sleep(for: .milliseconds(10)) }
        #expect(
            try lines("alpha-each") == [
                "ban 192.0.2.50", "ban 192.0.2.51", "unban 192.0.2.50", "unban 192.0.2.51", "stop",
            ])
        #expect(try lines("alpha-flush") == ["ban 192.0.2.50", "ban 192.0.2.51", "flush", "stop"])
        await c.record(jail: "alpha", events: failures("192.0.2.53", 3))
        await c.shutdown()
        #expect(try lines("alpha-each").suffix(3) == ["ban 192.0.2.53", "unban 192.0.2.53", "stop"])
        #expect(try lines("alpha-flush").suffix(3) == ["ban 192.0.2.53", "flush", "stop"])
    }

    func readAll(_ path: String) throws -> [UInt8] {
        guard let f = fopen(path, "r") else { throw CError(code: errno) }
        defer { fclose(f) }
        var out: [UInt8] = []
        var buf = [UInt8](repeating: 0, count: 4096)
        while true {
            let n = fread(&buf, 1, buf.count, f)
            if n <= 0 { break }
            out += buf[0..<n]
        }
        return out
    }
}
