import Control
import Core
import Firewall
import Glibc
import PortcullisTestKit
import Testing

@testable import Daemon

/// A reload that cannot read the configuration, or cannot build a running jail, changes nothing: the jails, their
/// bans and counters stay, and the client gets the error (file:line, reason) and a failure reply.
@Suite(.serialized) struct ReloadConfigurationTests {
    typealias Fixture = DaemonFlowTests.Fixture

    func totals(_ client: ControlClient) async -> String {
        guard case .success(let v) = await client.send(["status", "testauth"]) else { return "" }
        return StatusFormatter.format(v, for: ["status", "testauth"])
    }

    @Test("syntax error, unknown include, loop, bad value: refused, the running configuration kept")
    func refusedReloadsKeepEverything() async throws {
        let fx = try Fixture()
        let firewall = RecordingFirewall()
        let daemon = PortcullisDaemon(settings: DaemonSettings(configDirectory: fx.dir, firewall: .custom(firewall)))
        let task = Task { try await daemon.run() }
        await daemon.waitUntilReady()
        let client = ControlClient(socketPath: fx.dir + "/portcullis.sock", dialect: .pickle)
        // The reader may still be opening the file right after start: append until a failure is counted.
        let deadline = ContinuousClock.now + .seconds(60)
        while ContinuousClock.now < deadline, (await totals(client)).contains("Total failed:\t0") {
            fx.append([DaemonFlowTests.line("192.0.2.7")])
            for _ in 0..<50 where (await totals(client)).contains("Total failed:\t0") {
                try await Task.sleep(for: .milliseconds(20))
            }
        }
        #expect(await client.send(["set", "testauth", "banip", "203.0.113.9"]) == .success(1))
        let before = await totals(client)
        #expect(!before.contains("Total failed:\t0") && before.contains("Banned IP list:\t203.0.113.9"), "\(before)")

        let bad: [(file: String, text: String, expect: [String])] = [
            ("jail.local", "[testauth\nmaxretry = 1\n", ["jail.local:1", "closing ']'"]),
            ("jail.local", "[INCLUDES]\nbefore = gone.conf\n", ["jail.local:2", "gone.conf does not exist"]),
            ("jail.local", "[testauth]\nbantime = %(a)s\na = %(bantime)s\n", ["jail.local:", "loop"]),
            ("filter.d/testauth.local", "[Definition]\nfailregex = %(nosuch)s\n", ["testauth.local:2", "not defined"]),
            ("jail.local", "[testauth]\nbantime = abc\n", ["jail.local:2", "testauth", "runs now"]),
            ("jail.local", "[testauth]\nmaxretry = many\n", ["jail.local:2", "maxretry"]),
        ]
        for (file, text, expected) in bad {
            try fx.write(file, text)
            let reply = await client.send(["reload"])
            guard case .failure(let error) = reply else {
                Issue.record("reload with \(file) = \(text.debugDescription) was accepted")
                continue
            }
            for e in expected { #expect(error.description.contains(e), "\(error.description)") }
            #expect(error.description.contains("the running configuration is kept"))
            #expect(await totals(client) == before, "state changed after a refused reload of \(file)")
            #expect(await client.send(["get", "testauth", "maxretry"]) == .success(3))
            unlink(fx.dir + "/" + file)
        }
        #expect(firewall.bannedKeys.contains(BanKey(address: IPAddress("203.0.113.9")!, jail: "testauth")))
        // A good change goes through, and the counters and bans survive it as in any reload.
        try fx.write("jail.local", "[testauth]\nmaxretry = 5\n")
        #expect(await client.send(["reload"]) == .success("OK"))
        #expect(await client.send(["get", "testauth", "maxretry"]) == .success(5))
        #expect(await totals(client).contains("Banned IP list:\t203.0.113.9"))
        #expect(fx.read("portcullis.log").contains("Reload refused: the running configuration is kept"))

        #expect(await client.send(["stop"]) == .success(.null))
        try await task.value
    }
}
