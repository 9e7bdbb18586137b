import Foundation
import Testing

@testable import Control
import PortcullisTestKit

private let clientPath = "/usr/bin/fail2ban-client"
private let serverPath = "/usr/bin/fail2ban-server"
private let fail2banInstalled =
    FileManager.default.isExecutableFile(atPath: clientPath) && FileManager.default.isExecutableFile(atPath: serverPath)

/// A real fail2ban-server on a throw-away configuration: two jails with no actions (nothing can touch the
/// firewall), polling backend, in-memory database. Stopped by PID when the test ends.
private final class RealFail2ban {
    let dir: String
    let socket: String
    let process = Process()

    init() throws {
        var template = Array("/tmp/pcl-f2b-XXXXXX".utf8CString)
        guard let p = mkdtemp(&template) else { throw Exec.Failure(description: "mkdtemp failed") }
        dir = String(cString: p)
        socket = dir + "/real.sock"
        let fm = FileManager.default
        for sub in ["conf", "conf/filter.d", "conf/action.d", "conf/jail.d"] {
            try fm.createDirectory(atPath: "\(dir)/\(sub)", withIntermediateDirectories: true)
        }
        func write(_ path: String, _ text: String) throws { try text.write(toFile: "\(dir)/\(path)", atomically: true, encoding: .utf8) }
        try write("auth.log", "")
        try write("other.log", "")
        try write(
            "conf/fail2ban.conf",
            """
            [Definition]
            loglevel = INFO
            logtarget = \(dir)/fail2ban.log
            socket = \(socket)
            pidfile = \(dir)/real.pid
            dbfile = :memory:

            """)
        try write(
            "conf/filter.d/pcltest.conf",
            """
            [Definition]
            failregex = ^pcltest failure from <HOST>$

            """)
        try write(
            "conf/jail.conf",
            """
            [DEFAULT]
            backend = polling
            action =
            maxretry = 5
            findtime = 10m
            bantime = 1h
            ignoreip = 127.0.0.1/8 ::1

            [sshd]
            enabled = true
            filter = pcltest
            logpath = \(dir)/auth.log

            [web]
            enabled = true
            filter = pcltest
            logpath = \(dir)/auth.log
                      \(dir)/other.log
            maxretry = 3
            bantime = -1

            """)
        process.executableURL = URL(fileURLWithPath: serverPath)
        process.arguments = ["-f", "-x", "-c", "\(dir)/conf", "-s", socket, "-p", "\(dir)/real.pid"]
        process.standardOutput = FileHandle(forWritingAtPath: "/dev/null")
        process.standardError = FileHandle(forWritingAtPath: "/dev/null")
        try process.run()
    }

    /// Waits until the server has started both jails. It answers `ping` (and `status`, with no jails) while it
    /// is still reading its configuration, which takes seconds on a busy machine.
    func waitUntilReady() async -> Bool {
        let ready: ControlResponse = .success(.list([.tuple(["Number of jail", 2]), .tuple(["Jail list", "sshd, web"])]))
        for _ in 0..<600 {
            if await ControlClient(socketPath: socket, dialect: .pickle, timeoutSeconds: 5).send(["status"]) == ready {
                return true
            }
            guard process.isRunning else { return false }
            try? await Task.sleep(for: .milliseconds(100))
        }
        return false
    }

    /// Asks the server to stop over its socket, waits up to ~10 s, then kills it by PID.
    func stop() {
        if process.isRunning {
            _ = ControlClient(socketPath: socket, dialect: .pickle, timeoutSeconds: 5).sendBlocking(["stop"])
        }
        for _ in 0..<100 where process.isRunning { usleep(100_000) }
        if process.isRunning { kill(process.processIdentifier, SIGKILL) }
        for _ in 0..<50 where process.isRunning { usleep(100_000) }
        try? FileManager.default.removeItem(atPath: dir)
    }
}

/// What `fail2ban-client` printed and returned.
private struct ClientRun: Equatable, CustomStringConvertible {
    var stdout: String
    var status: Int32
    var description: String { "exit \(status): \(stdout.debugDescription)" }
}

private func runClient(conf: String, socket: String, _ arguments: [String]) async throws -> ClientRun {
    let result = try await offPool { () -> Result<Exec.Result, Exec.Failure> in
        do {
            return .success(try Exec.run(clientPath, ["-c", conf, "-s", socket] + arguments, check: false))
        } catch {
            return .failure(Exec.Failure(description: "\(error)"))
        }
    }.get()
    return ClientRun(stdout: result.text, status: result.status)
}

@Suite("Real fail2ban-client against ControlServer", .serialized, .blocking)
struct Fail2banClientTests {
    /// Commands in order; each changes or shows state, as an admin session would.
    static let session: [[String]] = [
        ["ping"], ["status"], ["status", "sshd"], ["status", "web"], ["status", "nosuch"],
        ["set", "sshd", "banip", "192.0.2.1", "192.0.2.2"], ["set", "sshd", "banip", "192.0.2.1"],
        ["set", "web", "banip", "2001:db8::1"], ["status", "sshd"], ["status", "web"],
        ["banned"], ["banned", "192.0.2.1"], ["banned", "198.51.100.9"], ["banned", "192.0.2.1", "2001:db8::1"],
        ["get", "sshd", "maxretry"], ["get", "sshd", "findtime"], ["get", "sshd", "bantime"], ["get", "web", "bantime"],
        ["get", "web", "maxretry"], ["get", "sshd", "ignoreip"], ["get", "sshd", "logpath"], ["get", "web", "logpath"],
        ["get", "web", "banip"], ["get", "sshd", "actions"], ["get", "sshd", "ignoreself"], ["get", "sshd", "usedns"],
        ["get", "nosuch", "maxretry"], ["get", "sshd"], ["get", "sshd", "nosuchprop"], ["set", "sshd", "maxretry", "abc"],
        ["set", "sshd", "unbanip", "192.0.2.1"], ["set", "sshd", "unbanip", "203.0.113.5"], ["unban", "2001:db8::1"],
        ["set", "web", "banip", "198.51.100.1"], ["unban", "--all"], ["banned"], ["status", "sshd"], ["status", "web"],
        ["reload", "sshd"], ["reload"], ["stop"],
    ]

    @Test(
        "fail2ban-client prints the same and exits the same against Portcullis as against fail2ban-server",
        .enabled(if: fail2banInstalled), .timeLimit(.minutes(5)))
    func sameOutputAsFail2ban() async throws {
        let real = try RealFail2ban()
        defer { real.stop() }
        try #require(await real.waitUntilReady(), "fail2ban-server did not start")
        let conf = real.dir + "/conf"
        let fake = FakeJails.reference(logDir: real.dir)
        try await withServer(handler: fake) { ours in
            for command in Self.session {
                let expected = try await runClient(conf: conf, socket: real.socket, command)
                let actual = try await runClient(conf: conf, socket: ours, command)
                #expect(actual == expected, "fail2ban-client \(command.joined(separator: " "))")
            }
        }
        // Portcullis received exactly the commands the client sent, reload's configuration stream dropped.
        let received = fake.received.withLock { $0 }
        #expect(received.contains(["reload", "sshd"]))
        #expect(received.contains(["reload", "--all"]))
        #expect(received.last == ["stop"])
    }

    @Test(
        "our pickle client reads fail2ban-server's replies as it reads ours",
        .enabled(if: fail2banInstalled), .timeLimit(.minutes(5)))
    func clientInterop() async throws {
        let real = try RealFail2ban()
        defer { real.stop() }
        try #require(await real.waitUntilReady(), "fail2ban-server did not start")
        let fake = FakeJails.reference(logDir: real.dir)
        try await withServer(handler: fake) { ours in
            for command in Self.session where command.first != "reload" && command.first != "stop" {
                let theirs = await ControlClient(socketPath: real.socket, dialect: .pickle).send(command)
                let mine = await ControlClient(socketPath: ours, dialect: .pickle).send(command)
                switch (theirs, mine) {
                case (.success(let a), .success(let b)):
                    #expect(a == b, "\(command)")
                case (.failure(let a), .failure(let b)):
                    #expect(a.code == b.code, "\(command)")
                    #expect(a.description == b.description, "\(command)")
                default:
                    Issue.record("\(command): fail2ban \(theirs) vs Portcullis \(mine)")
                }
            }
        }
    }
}
