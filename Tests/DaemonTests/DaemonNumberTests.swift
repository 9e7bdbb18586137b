import Control
import Core
import Firewall
import Glibc
import PortcullisTestKit
import Store
import Testing

@testable import Daemon

/// Issue 7 item 3 through the running daemon: extreme configured times, an exploding `bantime.formula`, a
/// store row with absurd values and weird `set JAIL banip` arguments over the real socket. Nothing may trap.
@Suite(.serialized) struct DaemonNumberTests {
    @Test("extreme values from configuration, the store and the socket never crash the daemon")
    func extremeValues() async throws {
        let fx = try DaemonFlowTests.Fixture()
        try fx.write(
            "jail.conf",
            """
            [DEFAULT]
            maxretry = 3
            findtime = 1000000000000
            bantime = 1000000000000
            bantime.increment = true
            bantime.formula = ban.Time << 999
            ignoreself = false
            banaction = nftables-multiport
            port = 0:65535
            action = %(banaction)s[port="%(port)s"]

            [testauth]
            enabled = true
            filter = testauth
            logpath = \(fx.dir)/auth.log
            """)
        // A store row as someone might have left it: ban time 10^300, count Int64.max.
        do {
            let store = try BanStore(path: fx.dir + "/portcullis.sqlite3")
            try store.addBan(
                BanRecord(
                    jail: "testauth", address: IPAddress("192.0.2.77")!, timeOfBan: Double(time(nil)), banTime: 600))
            let db = try Database(path: fx.dir + "/portcullis.sqlite3")
            try db.execute("UPDATE bans SET ban_time = 1e300, ban_count = 9223372036854775807")
        }
        let firewall = RecordingFirewall()
        let daemon = PortcullisDaemon(settings: DaemonSettings(configDirectory: fx.dir, firewall: .custom(firewall)))
        let task = Task { try await daemon.run() }
        await daemon.waitUntilReady()
        let client = ControlClient(socketPath: fx.dir + "/portcullis.sock", dialect: .pickle)
        #expect(firewall.bannedKeys.contains(BanKey(address: IPAddress("192.0.2.77")!, jail: "testauth")))
        #expect(await client.send(["get", "testauth", "bantime"]) == .success(1_000_000_000_000))
        #expect(await client.send(["get", "testauth", "findtime"]) == .success(1_000_000_000_000))

        let weird = [
            "192.0.2.018", "1e400", "nan", "inf", "-1", "99999999999999999999", "", "::1%eth0", "192.0.2.1/99",
            "0x7f000001", String(repeating: "9", count: 70_000), "192.0.2.1\u{0}", "[", "[]",
        ]
        for value in weird {
            let reply = await client.send(["set", "testauth", "banip", value])
            guard case .failure = reply else {
                Issue.record("banip \(value.prefix(30).debugDescription) answered \(reply)")
                continue
            }
        }
        // The address already banned with a store count of Int64.max is banned again: count + 1 must not trap.
        #expect(await client.send(["set", "testauth", "unbanip", "192.0.2.77"]) == .success(1))
        #expect(await client.send(["set", "testauth", "banip", "192.0.2.77"]) == .success(1))
        // Failures from the log under the exploding formula ban with a finite length.
        fx.append([
            DaemonFlowTests.line("203.0.113.5"), DaemonFlowTests.line("203.0.113.5"),
            DaemonFlowTests.line("203.0.113.5"),
        ])
        let deadline = ContinuousClock.now + .seconds(60)
        while ContinuousClock.now < deadline,
            !firewall.bannedKeys.contains(BanKey(address: IPAddress("203.0.113.5")!, jail: "testauth"))
        {
            try await Task.sleep(for: .milliseconds(20))
        }
        #expect(firewall.bannedKeys.contains(BanKey(address: IPAddress("203.0.113.5")!, jail: "testauth")))
        #expect(await client.send(["ping"]) == .success("pong"))
        guard case .success(let status) = await client.send(["status", "testauth"]) else {
            Issue.record("status failed")
            return
        }
        #expect(StatusFormatter.format(status, for: ["status", "testauth"]).contains("203.0.113.5"))
        #expect(await client.send(["stop"]) == .success(.null))
        try await task.value
        _ = daemon
    }
}
