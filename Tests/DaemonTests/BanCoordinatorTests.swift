import Configuration
import Core
import Firewall
import Glibc
import Jail
import Logging
import PortcullisTestKit
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
        static func jails(alpha: String = "alpha", maxretry: Int = 3, bantime: String = "600", extra: String = "")
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
            action = %(banaction)s[port="%(port)s", protocol="tcp"]
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
