import Control
import Core
import Firewall
import Glibc
import PortcullisTestKit
import Testing

@testable import Daemon

/// The daemon end to end on a temporary configuration tree, a real log file, a real control socket and a
/// recording firewall (the kernel path is covered by the namespace tests).
@Suite(.serialized) struct DaemonFlowTests {
    final class Fixture {
        let dir: String
        init() throws {
            var template = Array("/tmp/pcl-daemon-XXXXXX".utf8CString)
            guard let p = mkdtemp(&template) else { throw CError(code: errno) }
            dir = String(cString: p)
            mkdir(dir + "/filter.d", 0o755)
            mkdir(dir + "/jail.d", 0o755)
            try write(
                "portcullis.conf",
                """
                [Definition]
                loglevel = INFO
                logtarget = \(dir)/portcullis.log
                socket = \(dir)/portcullis.sock
                pidfile = \(dir)/portcullis.pid
                dbfile = \(dir)/portcullis.sqlite3
                dbpurgeage = 1d
                """)
            try write(
                "filter.d/testauth.conf",
                """
                [Definition]
                failregex = ^\\s*\\S+ testauth\\[\\d+\\]: auth failure for .* from <HOST>$
                ignoreregex =
                """)
            try write(
                "jail.conf",
                """
                [DEFAULT]
                maxretry = 3
                findtime = 10m
                bantime = 1h
                ignoreip = 127.0.0.1/8 ::1 198.51.100.0/24
                ignoreself = false
                banaction = nftables-multiport
                port = 0:65535
                protocol = tcp
                action = %(banaction)s[port="%(port)s", protocol="%(protocol)s"]

                [testauth]
                enabled = true
                filter = testauth
                port = ssh,imaps
                logpath = \(dir)/auth.log

                [broken]
                enabled = true
                filter = testauth
                port = no-such-service-name
                logpath = \(dir)/auth.log
                """)
            try write("auth.log", "")
        }

        func write(_ name: String, _ text: String) throws {
            let fd = open(dir + "/" + name, O_WRONLY | O_CREAT | O_TRUNC, 0o644)
            guard fd >= 0 else { throw CError(code: errno) }
            _ = text.withCString { Glibc.write(fd, $0, strlen($0)) }
            close(fd)
        }

        /// Waits until the daemon's tailer has opened auth.log. "Ready" (the socket answers) comes before the tailer
        /// thread has opened the files, and a file without a stored position is read from its end, so lines
        /// appended in between would never be read.
        func waitUntilWatching() async throws {
            let deadline = ContinuousClock.now + .seconds(60)
            while ContinuousClock.now < deadline {
                if read("portcullis.log").contains("Added logfile: '\(dir)/auth.log'") { return }
                try await Task.sleep(for: .milliseconds(10))
            }
            Issue.record("the daemon never opened \(dir)/auth.log")
        }

        func append(_ lines: [String]) {
            let fd = open(dir + "/auth.log", O_WRONLY | O_APPEND)
            let text = lines.map { $0 + "\n" }.joined()
            _ = text.withCString { Glibc.write(fd, $0, strlen($0)) }
            close(fd)
        }

        func read(_ name: String) -> String {
            guard let f = fopen(dir + "/" + name, "r") else { return "" }
            defer { fclose(f) }
            var out: [UInt8] = []
            var buf = [UInt8](repeating: 0, count: 4096)
            while true {
                let n = fread(&buf, 1, buf.count, f)
                if n <= 0 { break }
                out += buf[0..<n]
            }
            return String(decoding: out, as: UTF8.self)
        }

        deinit { _ = system("rm -rf '\(dir)'") }
    }

    static func line(_ address: String, user: String = "admin") -> String {
        var t = time(nil)
        var tm = Glibc.tm()
        localtime_r(&t, &tm)
        var buf = [CChar](repeating: 0, count: 40)
        let n = strftime(&buf, buf.count, "%Y-%m-%dT%H:%M:%S", &tm)
        let stamp = String(decoding: buf[0..<n].map { UInt8(bitPattern: $0) }, as: UTF8.self)
        return "\(stamp) host testauth[42]: auth failure for \(user) from \(address)"
    }

    /// Waits (up to a generous limit, not a timing assertion: CI runs every suite at once on 2 busy cores) until
    /// `condition` holds.
    func waitFor(_ what: String, _ condition: () async -> Bool) async throws {
        let deadline = ContinuousClock.now + .seconds(60)
        while ContinuousClock.now < deadline {
            if await condition() { return }
            try await Task.sleep(for: .milliseconds(20))
        }
        if await condition() { return }
        Issue.record("timed out waiting for \(what)")
    }

    func start(_ fx: Fixture, firewall: RecordingFirewall) async -> (PortcullisDaemon, Task<Void, any Error>) {
        let daemon = PortcullisDaemon(
            settings: DaemonSettings(configDirectory: fx.dir, firewall: .custom(firewall)))
        let task = Task { try await daemon.run() }
        await daemon.waitUntilReady()
        try? await fx.waitUntilWatching()
        return (daemon, task)
    }

    @Test func bansAfterMaxRetryAndAnswersLikeFail2banServer() async throws {
        let fx = try Fixture()
        let firewall = RecordingFirewall()
        let (daemon, task) = await start(fx, firewall: firewall)
        let client = ControlClient(socketPath: fx.dir + "/portcullis.sock", dialect: .pickle)
        #expect(await client.send(["ping"]) == .success("pong"))

        // Two failures: counted, no ban. An injected address in the user name must not count.
        fx.append([Self.line("192.0.2.7"), Self.line("192.0.2.7", user: "x from 192.0.2.99")])
        try await waitFor("two failures counted") {
            guard case .success(let v) = await client.send(["status", "testauth"]) else { return false }
            return StatusFormatter.format(v, for: ["status", "testauth"]).contains("Total failed:\t2")
        }
        #expect(firewall.bannedKeys.isEmpty)
        fx.append([
            Self.line("192.0.2.7"), Self.line("198.51.100.5"), Self.line("198.51.100.5"), Self.line("198.51.100.5"),
        ])
        try await waitFor("the ban") { firewall.bannedKeys.count == 1 }
        #expect(firewall.bannedKeys == [BanKey(address: IPAddress("192.0.2.7")!, jail: "testauth")])

        // The ignored network is never banned; the status tree has fail2ban-client's shape.
        guard case .success(let status) = await client.send(["status", "testauth"]) else {
            Issue.record("status failed")
            return
        }
        let text = StatusFormatter.format(status, for: ["status", "testauth"])
        #expect(
            text.contains(
                "|- Filter\n|  |- Currently failed:\t0\n|  |- Total failed:\t3\n|  `- File list:\t\(fx.dir)/auth.log"))
        #expect(
            text.contains(
                "`- Actions\n   |- Currently banned:\t1\n   |- Total banned:\t1\n   `- Banned IP list:\t192.0.2.7"))
        #expect(await client.send(["get", "testauth", "maxretry"]) == .success(3))
        #expect(await client.send(["get", "testauth", "bantime"]) == .success(3600))
        #expect(await client.send(["banned", "192.0.2.7"]) == .success([["testauth"]]))
        // The broken jail is reported by name and key; the good one runs.
        guard case .failure(let e) = await client.send(["status", "broken"]) else {
            Issue.record("broken jail should not run")
            return
        }
        #expect(e.description.contains("no-such-service-name"))

        // banip / unbanip; ignored addresses are refused with a reason.
        #expect(await client.send(["set", "testauth", "banip", "203.0.113.9", "2001:db8::9"]) == .success(2))
        guard case .failure(let refused) = await client.send(["set", "testauth", "banip", "198.51.100.1"]) else {
            Issue.record("ignored address must be refused")
            return
        }
        #expect(refused.description.contains("ignoreip"))
        #expect(await client.send(["set", "testauth", "unbanip", "203.0.113.9"]) == .success(1))
        #expect(!firewall.bannedKeys.contains(BanKey(address: IPAddress("203.0.113.9")!, jail: "testauth")))

        // The fail2ban log has the Ban line recidive reads.
        #expect(
            fx.read("portcullis.log").contains(
                "fail2ban.actions        [\(getpid())]: NOTICE  [testauth] Ban 192.0.2.7"))

        #expect(await client.send(["stop"]) == .success(.null))
        try await task.value
        _ = daemon
        #expect(firewall.calls.last == .tearDown)
    }

    @Test func bansSurviveRestartThroughTheStore() async throws {
        let fx = try Fixture()
        do {
            let firewall = RecordingFirewall()
            let (daemon, task) = await start(fx, firewall: firewall)
            let client = ControlClient(socketPath: fx.dir + "/portcullis.sock")
            #expect(await client.send(["set", "testauth", "banip", "192.0.2.50"]) == .success(1))
            daemon.requestStop()
            try await task.value
        }
        let firewall = RecordingFirewall()
        let (daemon, task) = await start(fx, firewall: firewall)
        #expect(firewall.bannedKeys == [BanKey(address: IPAddress("192.0.2.50")!, jail: "testauth")])
        let client = ControlClient(socketPath: fx.dir + "/portcullis.sock")
        #expect(await client.send(["unban", "--all"]) == .success(1))
        #expect(firewall.bannedKeys.isEmpty)
        daemon.requestStop()
        try await task.value
    }

    @Test func stopsWithoutAPartEndingOutOfTurn() async throws {
        // The consumer used to return as soon as the sources had finished the channel, before the service group
        // asked it to stop; the group then reported "a part of the daemon ended unexpectedly" (one stop in three).
        let fx = try Fixture()
        for _ in 0..<12 {
            let (daemon, task) = await start(fx, firewall: RecordingFirewall())
            daemon.requestStop()
            try await task.value
        }
        let log = fx.read("portcullis.log")
        #expect(log.components(separatedBy: "Exiting Portcullis").count == 13)
        #expect(
            !log.contains("ended unexpectedly"),
            "\(log.split(separator: "\n").filter { $0.contains("ended unexpectedly") }.prefix(2))")
    }
}
