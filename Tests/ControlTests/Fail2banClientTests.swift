import Foundation
import PortcullisTestKit
import Testing

@testable import Control

private let clientPath = "/usr/bin/fail2ban-client"
private let serverPath = "/usr/bin/fail2ban-server"

/// The built `portcullis` executable, next to the test bundle.
private let portcullisPath: String = {
    let exe = (try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/exe")) ?? CommandLine.arguments[0]
    var dir = URL(fileURLWithPath: exe).deletingLastPathComponent()
    while dir.pathComponents.contains(where: { $0.hasSuffix(".xctest") }) { dir.deleteLastPathComponent() }
    return dir.appendingPathComponent("portcullis").path
}()

/// A real fail2ban-server and the real Portcullis daemon (`portcullis -f start --no-firewall`), started on one
/// configuration tree in a temporary directory: the same jails, the same log files, in-memory databases, no actions
/// (fail2ban) and no firewall (Portcullis), so nothing touches nftables. Each has its own socket, pid file and log
/// target. Stopped by PID when the test ends.
private final class TwoServers {
    let dir: String
    var conf: String { dir + "/conf" }
    var authLog: String { dir + "/auth.log" }
    var otherLog: String { dir + "/other.log" }
    /// Read by nobody until `set sshd addlogpath` adds it to sshd.
    var sshdLog: String { dir + "/sshd.log" }
    /// For the jail added at run time.
    var newLog: String { dir + "/new.log" }
    /// A syslog socket both servers log to after `set syslogsocket` and `set logtarget SYSLOG`.
    var syslogSocket: String { dir + "/syslog.sock" }
    private(set) var syslogFD: Int32 = -1
    var realSocket: String { dir + "/fail2ban.sock" }
    var oursSocket: String { dir + "/portcullis.sock" }
    let real = Process()
    let ours = Process()

    init() throws {
        var template = Array("/tmp/pcl-f2b-XXXXXX".utf8CString)
        guard let p = mkdtemp(&template) else { throw Exec.Failure(description: "mkdtemp failed") }
        dir = String(cString: p)
        let fm = FileManager.default
        for sub in ["conf", "conf/filter.d", "conf/action.d", "conf/jail.d"] {
            try fm.createDirectory(atPath: "\(dir)/\(sub)", withIntermediateDirectories: true)
        }
        func write(_ path: String, _ text: String) throws {
            try text.write(toFile: "\(dir)/\(path)", atomically: true, encoding: .utf8)
        }
        for log in ["auth.log", "other.log", "sshd.log", "new.log"] { try write(log, "") }
        // Each server its own log file: fail2ban-server reads fail2ban.conf (and applies it again at every reload),
        // Portcullis prefers portcullis.conf when there is one.
        for (file, log) in [("fail2ban.conf", "fail2ban.log"), ("portcullis.conf", "portcullis.log")] {
            try write(
                "conf/\(file)",
                """
                [Definition]
                loglevel = INFO
                logtarget = \(dir)/\(log)
                syslogsocket = auto
                socket = \(dir)/unused.sock
                pidfile = \(dir)/unused.pid
                dbfile = :memory:

                """)
        }
        // A command action that does nothing, so actions and their properties can be read and changed.
        try write(
            "conf/action.d/pclnote.conf",
            """
            [Definition]
            actionstart =
            actionstop =
            actioncheck =
            actionban = true
            actionunban = true

            [Init]
            name = default

            """)
        try write(
            "conf/filter.d/pcltest.conf",
            """
            [Definition]
            failregex = ^\\s*pcltest failure from <HOST>$

            """)
        try write(
            "conf/jail.conf",
            """
            [DEFAULT]
            backend = polling
            action =
            maxretry = 5
            findtime = 1h
            bantime = 1h
            ignoreip = 127.0.0.1/8 2001:db8:ffff::/48

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
            action = pclnote

            """)
        syslogFD = try Self.bindDatagramSocket(syslogSocket)
        real.executableURL = URL(fileURLWithPath: serverPath)
        real.arguments = [
            "-f", "-x", "-c", conf, "-s", realSocket, "-p", "\(dir)/fail2ban.pid", "--logtarget", "\(dir)/fail2ban.log",
        ]
        ours.executableURL = URL(fileURLWithPath: portcullisPath)
        ours.arguments = ["-c", conf, "-s", oursSocket, "-p", "\(dir)/portcullis.pid", "-f", "start", "--no-firewall"]
        for (process, name) in [(real, "fail2ban"), (ours, "portcullis")] {
            fm.createFile(atPath: "\(dir)/\(name).out", contents: nil)
            let out = FileHandle(forWritingAtPath: "\(dir)/\(name).out")
            process.standardOutput = out
            process.standardError = out
            process.standardInput = FileHandle.nullDevice
            try process.run()
        }
    }

    /// A datagram socket bound at `path`, non-blocking (what a syslog daemon listens on).
    static func bindDatagramSocket(_ path: String) throws -> Int32 {
        let fd = socket(AF_UNIX, Int32(SOCK_DGRAM.rawValue) | Int32(SOCK_NONBLOCK.rawValue), 0)
        guard fd >= 0 else { throw Exec.Failure(description: "socket failed") }
        var address = sockaddr_un()
        address.sun_family = sa_family_t(AF_UNIX)
        withUnsafeMutableBytes(of: &address.sun_path) { raw in
            for (i, b) in path.utf8.enumerated() where i < raw.count - 1 { raw[i] = b }
        }
        let rc = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                bind(fd, $0, socklen_t(MemoryLayout<sockaddr_un>.size))
            }
        }
        guard rc == 0 else { throw Exec.Failure(description: "bind \(path) failed: \(errno)") }
        return fd
    }

    /// Every datagram received on the syslog socket so far.
    func syslogMessages() -> [[UInt8]] {
        var out: [[UInt8]] = []
        var buffer = [UInt8](repeating: 0, count: 65536)
        while true {
            let n = buffer.withUnsafeMutableBytes { recv(syslogFD, $0.baseAddress, $0.count, 0) }
            guard n > 0 else { break }
            out.append(Array(buffer[0..<n]))
        }
        return out
    }

    /// Waits until both servers have started both jails (fail2ban-server answers `ping`, and `status` with no
    /// jails, while it is still reading its configuration).
    func waitUntilReady() async -> String? {
        let ready: ControlResponse = .success(
            .list([.tuple(["Number of jail", 2]), .tuple(["Jail list", "sshd, web"])]))
        for (socket, process, name) in [(realSocket, real, "fail2ban"), (oursSocket, ours, "portcullis")] {
            var up = false
            for _ in 0..<600 {
                if await ControlClient(socketPath: socket, dialect: .pickle, timeoutSeconds: 5).send(["status"])
                    == ready
                {
                    up = true
                    break
                }
                guard process.isRunning else { break }
                try? await Task.sleep(for: .milliseconds(100))
            }
            if !up {
                return
                    "\(name) did not start: \((try? String(contentsOfFile: "\(dir)/\(name).out", encoding: .utf8)) ?? "")"
            }
        }
        return nil
    }

    /// Appends `count` failure lines for `address` to `path`, stamped now in local time (both servers' date
    /// detection reads them).
    func fail(_ path: String, _ address: String, count: Int, text: String = "pcltest failure from") throws {
        var now = time(nil)
        var parts = tm()
        localtime_r(&now, &parts)
        var buffer = [CChar](repeating: 0, count: 32)
        strftime(&buffer, buffer.count, "%Y-%m-%d %H:%M:%S", &parts)
        let stamp = String(cString: buffer)
        let lines = String(repeating: "\(stamp) \(text) \(address)\n", count: count)
        let handle = try FileHandle(forWritingTo: URL(fileURLWithPath: path))
        defer { try? handle.close() }
        try handle.seekToEnd()
        try handle.write(contentsOf: Data(lines.utf8))
    }

    /// A jail's (Total failed, Total banned) as one server reports them.
    static func totals(socket: String, jail: String) async -> (failed: Int, banned: Int)? {
        guard
            case .success(let value) = await ControlClient(socketPath: socket, dialect: .pickle, timeoutSeconds: 5)
                .send(["status", jail])
        else { return nil }
        func find(_ key: String, in v: ControlValue) -> Int? {
            switch v {
            case .tuple(let items), .list(let items):
                if items.count == 2, items[0] == .string(key), case .int(let n) = items[1] { return n }
                for item in items { if let n = find(key, in: item) { return n } }
                return nil
            default: return nil
            }
        }
        guard let failed = find("Total failed", in: value), let banned = find("Total banned", in: value) else {
            return nil
        }
        return (failed, banned)
    }

    /// Waits until both servers report these totals (the lines are read, counted, and the bans they cause are in
    /// place: fail2ban bans from a thread of its own, a moment after counting). Returns what differs, if anything.
    func waitFor(_ expected: [(jail: String, failed: Int, banned: Int)]) async -> String? {
        var last = ""
        for _ in 0..<300 {
            var missing: [String] = []
            for (socket, name) in [(realSocket, "fail2ban"), (oursSocket, "portcullis")] {
                for e in expected {
                    let t = await Self.totals(socket: socket, jail: e.jail)
                    if t?.failed != e.failed || t?.banned != e.banned {
                        missing.append(
                            "\(name) \(e.jail): \(t.map { "\($0.failed) failed, \($0.banned) banned" } ?? "no reply"), expected \(e.failed), \(e.banned)"
                        )
                    }
                }
            }
            if missing.isEmpty { return nil }
            last = missing.joined(separator: "; ")
            try? await Task.sleep(for: .milliseconds(100))
        }
        return last
    }

    /// Waits (up to ~30 s) until fail2ban and Portcullis report the same totals for each jail in two polls in a
    /// row; nil once they do, else what each last said.
    func waitUntilAgreed(_ jails: [String]) async -> String? {
        var last = ""
        var agreedOnce = false
        for _ in 0..<300 {
            var differing: [String] = []
            for jail in jails {
                let theirs = await Self.totals(socket: realSocket, jail: jail)
                let ours = await Self.totals(socket: oursSocket, jail: jail)
                if theirs == nil || theirs?.failed != ours?.failed || theirs?.banned != ours?.banned {
                    differing.append(
                        "\(jail): fail2ban \(String(describing: theirs)), portcullis \(String(describing: ours))")
                }
            }
            if differing.isEmpty {
                if agreedOnce { return nil }
                agreedOnce = true
            } else {
                agreedOnce = false
                last = differing.joined(separator: "; ")
            }
            try? await Task.sleep(for: .milliseconds(100))
        }
        return last
    }

    /// Asks both servers to stop over their sockets, waits up to ~10 s, then kills them by PID.
    func stop() {
        for (process, socket) in [(real, realSocket), (ours, oursSocket)] where process.isRunning {
            _ = ControlClient(socketPath: socket, dialect: .pickle, timeoutSeconds: 5).sendBlocking(["stop"])
        }
        for process in [real, ours] {
            for _ in 0..<100 where process.isRunning { usleep(100_000) }
            if process.isRunning { kill(process.processIdentifier, SIGKILL) }
            for _ in 0..<50 where process.isRunning { usleep(100_000) }
        }
        if syslogFD >= 0 { close(syslogFD) }
        if ProcessInfo.processInfo.environment["PCL_KEEP"] == nil { try? FileManager.default.removeItem(atPath: dir) }
    }
}

/// What `fail2ban-client` printed and returned.
private struct ClientRun: Equatable, CustomStringConvertible {
    var stdout: String
    var stderr: String
    var status: Int32
    var description: String { "exit \(status), stdout \(stdout.debugDescription), stderr \(stderr.debugDescription)" }
}

/// The `portcullis` CLI with these words against Portcullis's socket.
private func runPortcullis(socket: String, _ arguments: [String]) async throws -> ClientRun {
    let result = try await offPool { () -> Result<Exec.Result, Exec.Failure> in
        do {
            return .success(try Exec.run(portcullisPath, ["-s", socket] + arguments, check: false))
        } catch {
            return .failure(Exec.Failure(description: "\(error)"))
        }
    }.get()
    return ClientRun(stdout: result.text, stderr: String(decoding: result.stderr, as: UTF8.self), status: result.status)
}

/// Whether `portcullis`'s output says what fail2ban-client's said against the same server: the same stdout and
/// exit 0 on success; on an error exit 255 and the same message on stderr after `ERROR: `. With `--json`: one
/// reply line whose `ok` matches.
private func cliAgrees(_ client: ClientRun, text: ClientRun, json: ClientRun) -> String? {
    if client.status == 0 {
        guard text.status == 0, text.stdout == client.stdout else { return "text: \(text)" }
    } else {
        guard text.status == 255, text.stderr == "ERROR: " + client.stdout else { return "text: \(text)" }
    }
    let line = json.stdout.split(separator: "\n")
    guard line.count == 1, let reply = try? JSONValue.parse(Array(line[0].utf8)), case .bool(let ok)? = reply["ok"],
        ok == (client.status == 0), json.status == (ok ? 0 : 255)
    else { return "json: \(json)" }
    return nil
}

private func runClient(conf: String, socket: String, _ arguments: [String]) async throws -> ClientRun {
    let result = try await offPool { () -> Result<Exec.Result, Exec.Failure> in
        do {
            return .success(try Exec.run(clientPath, ["-c", conf, "-s", socket] + arguments, check: false))
        } catch {
            return .failure(Exec.Failure(description: "\(error)"))
        }
    }.get()
    return ClientRun(stdout: result.text, stderr: String(decoding: result.stderr, as: UTF8.self), status: result.status)
}

/// The differences accepted between the two runs of one command, each with its reason. Anything else is a
/// difference.
private let acceptedDifferences: [(name: String, reason: String, pattern: String, replacement: String)] = [
    (
        "client log prefix", "fail2ban-client stamps its own ERROR lines with the time and its own PID",
        #"(?m)^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3} (fail2ban[\w.]*)(\s+)\[\d+\]: "#, "<time> $1$2[<client pid>]: "
    ),
    ("times", "ban times: the two servers banned a moment apart", #"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d"#, "<time>"),
    (
        "log target", "each server writes its own log file", #"/tmp/pcl-f2b-[^/\s]+/(fail2ban|portcullis)\.log"#,
        "<logtarget>"
    ),
]

private func normalised(_ run: ClientRun) -> (ClientRun, Set<String>) {
    var out = run
    var used: Set<String> = []
    for a in acceptedDifferences {
        for keyPath in [\ClientRun.stdout, \ClientRun.stderr] {
            let text = out[keyPath: keyPath]
            let replaced = text.replacingOccurrences(of: a.pattern, with: a.replacement, options: .regularExpression)
            if replaced != text { used.insert(a.name) }
            out[keyPath: keyPath] = replaced
        }
    }
    return (out, used)
}

/// One step of the scripted admin session. In the words, `{dir}` stands for the session's directory and `{log}`
/// for each server's own log file.
private enum Step: Sendable {
    /// Runs fail2ban-client with these words against both servers. `differs` says why the outputs cannot be the
    /// same (an honest reason); nil: they must be the same.
    case run([String], differs: String? = nil)
    /// Appends failure lines to a log, then waits until both servers report these totals.
    case fail(
        log: LogFile, address: String, count: Int, text: String = "pcltest failure from",
        then: [(jail: String, failed: Int, banned: Int)])
    /// Appends failure lines to a log without waiting (nobody reads it yet, or the lines are ignored).
    case write(log: LogFile, address: String, count: Int)
    /// Waits until both servers report these totals.
    case wait([(jail: String, failed: Int, banned: Int)])
    /// Waits until both servers report the same totals for these jails (twice in a row): after a restart each
    /// server restores its bans in the background, fail2ban in its actions thread, so a status read at once can
    /// race the restore on a loaded machine.
    case agree([String])
    /// Checks what both servers sent to the syslog socket.
    case syslogHas(String)
    /// Runs fail2ban-client against fail2ban-server and `portcullis` (our CLI) against Portcullis: the same text
    /// (an error: on stderr after `ERROR: ` instead of on stdout) and the same exit status.
    case cli([String])
}

/// The log files: sshd and web read auth.log, only web reads other.log; sshd.log is read once `set sshd
/// addlogpath` adds it, new.log by the jail added at run time.
private enum LogFile: Sendable { case auth, other, sshd, new }

/// The expanded `<HOST>` is Portcullis's own regex text: fail2ban's is GPL code, which the project never copies.
private let hostText =
    "the reply lists the configured failregex with <HOST> expanded: Portcullis's expansion is its own regex text (equivalent; fail2ban's text is GPL code the project does not copy)"
private let regexEngine =
    "the compile error is PCRE2's message (Portcullis's engine), fail2ban's is Python re's: 'missing ), unterminated subpattern at position 4'"
private let nameBan =
    "fail2ban bans any text as an ID; Portcullis bans addresses only (an nftables set holds addresses) and refuses the name"
private let ignoredBan =
    "fail2ban bans an address its ignoreip covers when asked by banip; Portcullis refuses (ignoreip protects it from manual bans too)"

@Suite("Real fail2ban-client against fail2ban-server and the Portcullis daemon", .serialized, .blocking)
struct Fail2banClientTests {
    /// An admin's session over every command fail2ban-client 1.0.2 lists: reads, failures written to the logs
    /// (so that counters and bans matter), manual bans and unbans, runtime changes whose effect the following
    /// failures show, log targets, jails added, started and stopped, bad input, reload and restart, stop.
    private static let session: [Step] = {
        var s: [Step] = [
            .run(["ping"]), .run(["version"]), .run(["echo", "hello", "world"]), .run(["echo"]),
            .run(["status"]), .run(["status", "sshd"]), .run(["status", "web"]), .run(["status", "nosuch"]),
            .run(["status", "sshd", "short"]), .run(["status", "sshd", "basic"]),
            .run(["status", "sshd", "basic", "x"]),
            // Client-side: the server answers ping, so the client refuses to start another.
            .run(["start"]),
        ]
        for jail in ["sshd", "web"] {
            for p in [
                "bantime", "findtime", "maxretry", "actions", "logpath", "usedns", "ignoreself", "maxlines",
                "journalmatch", "banip", "ignoreregex", "ignoreip", "datepattern", "logencoding", "bantime.increment",
                "bantime.factor", "prefregex", "maxmatches", "ignorecommand", "ignorecache", "logtimezone", "banned",
            ] {
                s.append(.run(["get", jail, p]))
            }
            s.append(.run(["get", jail, "failregex"], differs: hostText))
        }
        for p in ["loglevel", "logtarget", "syslogsocket", "dbfile", "dbmaxmatches", "dbpurgeage"] {
            s.append(.run(["get", p]))
        }
        // Bans happen in ascending address order (IPv4 first) here; the ban lists keep the order bans were made.
        s += [
            // Two failures: counted by both jails (both watch auth.log), no ban yet.
            .fail(log: .auth, address: "198.51.100.10", count: 2, then: [("sshd", 2, 0), ("web", 2, 0)]),
            .run(["status", "sshd"]), .run(["status", "web"]), .run(["banned", "198.51.100.10"]),
            // The third: web (maxretry 3) bans, sshd (maxretry 5) does not.
            .fail(log: .auth, address: "198.51.100.10", count: 1, then: [("sshd", 3, 0), ("web", 3, 1)]),
            .run(["status", "sshd"]), .run(["status", "web"]), .run(["banned"]), .run(["banned", "198.51.100.10"]),
            .run(["get", "web", "banip"]), .run(["get", "web", "banned"]),
            .run(["get", "web", "banned", "198.51.100.10"]),
            .run(["get", "web", "banned", "198.51.100.10", "192.0.2.1"]),
            .run(["get", "web", "banip", "--with-time"]), .run(["get", "web", "banip", ","]),
            // Only web reads other.log.
            .fail(log: .other, address: "203.0.113.7", count: 3, then: [("sshd", 3, 0), ("web", 6, 2)]),
            .run(["status", "sshd"]), .run(["status", "web"]), .run(["banned"]),
            // Manual bans.
            .run(["set", "sshd", "banip", "198.51.100.1", "198.51.100.2"]),
            .run(["get", "sshd", "banip", "--with-time"]),
            // Banned again: the ban is prolonged, so it ends last (its length then counts the seconds between the
            // two bans, which each server measures itself: not shown with times).
            .run(["set", "sshd", "banip", "198.51.100.1"]), .run(["get", "sshd", "banip"]),
            .run(["set", "sshd", "banip"]),
            .run(["set", "sshd", "unbanip", "198.51.100.1"]), .run(["set", "sshd", "banip", "198.51.100.1"]),
            .run(["status", "sshd"]), .run(["banned"]), .run(["get", "sshd", "banip", "--with-time"]),
            // Four failures: below sshd's maxretry, web bans at the third and counts the fourth.
            .fail(log: .auth, address: "203.0.113.50", count: 4, then: [("sshd", 7, 3), ("web", 10, 3)]),
            .run(["status", "sshd"]), .run(["status", "web"]),
            .run(["set", "web", "banip", "2001:db8::1"]), .run(["status", "web"]),
            .run(["banned", "198.51.100.1", "2001:db8::1", "198.51.100.9"]),
            // Runtime changes (each undone at once).
            .run(["set", "sshd", "bantime", "600"]), .run(["get", "sshd", "bantime"]),
            .run(["get", "sshd", "banip", "--with-time"]),
            .run(["set", "sshd", "bantime", "3600"]), .run(["get", "sshd", "bantime"]),
            .run(["set", "sshd", "findtime", "300"]), .run(["set", "sshd", "findtime", "3600"]),
            .cli(["set", "sshd", "maxretry", "4"]), .cli(["set", "sshd", "maxretry", "5"]),
            .run(["set", "sshd", "addignoreip", "198.51.100.0/24"]),
            .run(["set", "sshd", "delignoreip", "198.51.100.0/24"]),
            .run(["set", "loglevel", "INFO"]),
            // The fifth failure: sshd bans now; web had banned already (the failure still counts).
            .fail(log: .auth, address: "203.0.113.50", count: 1, then: [("sshd", 8, 4), ("web", 11, 4)]),
            .run(["status", "sshd"]), .run(["banned", "203.0.113.50"]), .run(["banned"]), .run(["status", "web"]),
            // Unbans.
            .run(["set", "sshd", "unbanip", "198.51.100.1"]), .run(["set", "sshd", "unbanip", "203.0.113.99"]),
            .cli(["set", "sshd", "unbanip", "--report-absent", "203.0.113.99"]), .cli(["set", "sshd", "unbanip"]),
            .cli(["unban", "2001:db8::1"]), .cli(["unban"]), .run(["status", "sshd"]), .run(["banned"]),
            // Bad input that changes nothing.
            .run(["get", "nosuch", "maxretry"]), .run(["get", "sshd"]), .run(["get"]),
            .run(["get", "sshd", "nosuchprop"]),
            .run(["get", "nosuch", "nosuchprop"]), .run(["set", "sshd", "nosuchprop", "1"]), .run(["set", "sshd"]),
            .run(["set", "nosuch", "bantime", "10"]), .run(["set", "sshd", "bantime"]),
            .run(["stats"]), .run(["nosuchcommand"]),
            .run(["unban", "--all"]), .run(["banned"]), .run(["status", "sshd"]), .run(["status", "web"]),
            .run(["reload", "sshd"]), .run(["status", "sshd"]),
            .run(["reload"]), .run(["status"]),
        ]
        s += serverSettings + jailRuntime + actions + jailControl + restarts
        s += [
            // Bans in another order than addresses: the lists keep the order they were made in.
            .run(["set", "web", "banip", "203.0.113.200"]), .run(["set", "web", "banip", "198.51.100.200"]),
            .run(["get", "web", "banip"]), .run(["banned"]),
            .run(["set", "sshd", "banip", "not-an-address"], differs: nameBan),
            .run(["set", "sshd", "banip", "127.0.0.1"], differs: ignoredBan),
            .run(["set", "sshd", "maxretry", "abc"]),
            .run(["set", "sshd", "addignoreip", "999.1.1.1"]), .run(["get", "sshd", "ignoreip"]),
            .run(["stop"]),
        ]
        return s
    }()

    /// Log targets, the log level and the database settings.
    private static let serverSettings: [Step] = [
        .run(["get", "loglevel"]), .run(["set", "loglevel", "DEBUG"]), .run(["get", "loglevel"]),
        .run(["set", "loglevel", "20"]), .run(["get", "loglevel"]), .run(["set", "loglevel", "bogus"]),
        .run(["set", "loglevel", "info"]), .run(["get", "loglevel"]), .run(["set", "loglevel"]),
        .run(["get", "logtarget"]), .run(["get", "syslogsocket"]),
        // A socket that is not there: both refuse SYSLOG and keep their file.
        .run(["set", "syslogsocket", "{dir}/nosuch.sock"]), .run(["get", "syslogsocket"]),
        .run(["set", "logtarget", "SYSLOG"]), .run(["get", "logtarget"]),
        // The test's own syslog socket: both log there; a ban shows as fail2ban writes it.
        .run(["set", "syslogsocket", "{dir}/syslog.sock"]), .run(["set", "logtarget", "SYSLOG"]),
        .run(["get", "logtarget"]), .run(["get", "syslogsocket"]),
        .run(["set", "sshd", "banip", "192.0.2.201"]),
        .syslogHas("fail2ban.actions[PID]: NOTICE [sshd] Ban 192.0.2.201"),
        .run(["flushlogs"]),
        .run(["set", "logtarget", "STDOUT"]), .cli(["flushlogs"]), .cli(["set", "logtarget", "stdout"]),
        .run(["get", "logtarget"]), .run(["set", "logtarget", "SYSOUT"]), .run(["set", "logtarget", "STDERR"]),
        .run(["set", "logtarget", "/nonexistent/dir/x.log"]), .run(["get", "logtarget"]),
        .run(["set", "logtarget", "{log}"]), .run(["get", "logtarget"]), .run(["flushlogs"]),
        .run(["set", "syslogsocket", "auto"]), .run(["set", "logtarget"]),
        .run(["set", "sshd", "unbanip", "192.0.2.201"]),
        .run(["set", "dbfile", "{dir}/other.sqlite3"]), .run(["get", "dbfile"]), .run(["set", "dbfile", ":memory:"]),
        .run(["set", "dbmaxmatches", "5"]), .run(["get", "dbmaxmatches"]), .run(["set", "dbmaxmatches", "abc"]),
        .cli(["set", "dbmaxmatches", "10"]),
        .run(["set", "dbpurgeage", "2d"]), .run(["get", "dbpurgeage"]), .run(["set", "dbpurgeage", "abc"]),
        .run(["set", "dbpurgeage", "1d"]), .run(["get", "dbpurgeage"]),
    ]

    /// Runtime changes to sshd whose effect the next failures show.
    private static let jailRuntime: [Step] = [
        // sshd.log is read by nobody; added with `head`, sshd reads it from its beginning.
        .write(log: .sshd, address: "203.0.113.60", count: 2),
        .run(["set", "sshd", "addlogpath", "{dir}/sshd.log"]),
        .wait([("sshd", 10, 5)]),
        .run(["set", "sshd", "addlogpath", "{dir}/sshd.log", "tail"]),
        .run(["set", "sshd", "addlogpath", "{dir}/nonexistent.log"]),
        .run(["set", "sshd", "addlogpath", "{dir}/x.log", "bogus"]),
        .run(["set", "sshd", "addlogpath", "{dir}/x.log", "tail", "extra"]),
        .run(["get", "sshd", "logpath"]),
        // maxretry 3: the third failure of .60 bans at once.
        .run(["set", "sshd", "maxretry", "3"]),
        .fail(log: .sshd, address: "203.0.113.60", count: 1, then: [("sshd", 11, 6)]),
        .run(["status", "sshd"]), .run(["get", "sshd", "banip", "--with-time"]),
        .run(["set", "sshd", "maxretry", "5"]),
        // A new bantime applies to the bans in force too.
        .run(["set", "sshd", "bantime", "600"]), .run(["get", "sshd", "banip", "--with-time"]),
        .run(["set", "sshd", "bantime", "1h"]), .run(["get", "sshd", "banip", "--with-time"]),
        .cli(["set", "sshd", "bantime", "abc"]), .run(["get", "sshd", "bantime"]),
        .cli(["set", "sshd", "bantime", "-1"]),
        .cli(["get", "sshd", "banip", "--with-time"]), .cli(["set", "sshd", "bantime", "1h"]),
        .run(["set", "sshd", "findtime", "1.5h"]), .run(["get", "sshd", "findtime"]),
        .run(["set", "sshd", "findtime", "1h"]), .run(["set", "sshd", "findtime", "abc"]),
        // An ignored address is not counted; the next one is.
        .cli(["set", "sshd", "addignoreip", "203.0.113.70"]),
        .write(log: .sshd, address: "203.0.113.70", count: 5),
        .fail(log: .sshd, address: "203.0.113.71", count: 1, then: [("sshd", 12, 6)]),
        .run(["status", "sshd"]),
        .run(["set", "sshd", "delignoreip", "203.0.113.70"]), .run(["set", "sshd", "delignoreip", "203.0.113.70"]),
        .run(["set", "sshd", "addignoreip", "192.0.2.0/255.255.255.0", "::1"]), .run(["get", "sshd", "ignoreip"]),
        .cli(["set", "sshd", "delignoreip", "192.0.2.0/24"]),
        .run(["set", "sshd", "ignoreself", "false"]), .run(["get", "sshd", "ignoreself"]),
        .run(["set", "sshd", "ignoreself", "true"]),
        .run(["set", "sshd", "ignorecommand", "/bin/false"]), .run(["get", "sshd", "ignorecommand"]),
        .run(["set", "sshd", "ignorecommand", ""]), .run(["get", "sshd", "ignorecommand"]),
        .run(["set", "sshd", "ignorecache", "key=\"<ip>\",max-count=10,max-time=1m"]),
        .run(["get", "sshd", "ignorecache"]),
        .run(["set", "sshd", "logencoding", "latin-1"]), .run(["get", "sshd", "logencoding"]),
        .run(["set", "sshd", "logencoding", "bogus"]), .run(["set", "sshd", "logencoding", "auto"]),
        .run(["set", "sshd", "usedns", "no"]), .run(["get", "sshd", "usedns"]),
        .run(["set", "sshd", "usedns", "bogus"]),
        .run(["set", "sshd", "usedns", "warn"]),
        .run(["set", "sshd", "maxlines", "2"]), .run(["get", "sshd", "maxlines"]),
        .run(["set", "sshd", "maxlines", "0"]),
        .run(["set", "sshd", "maxlines", "abc"]), .run(["set", "sshd", "maxlines", "1"]),
        .run(["set", "sshd", "maxmatches", "3"]), .run(["get", "sshd", "maxmatches"]),
        .run(["set", "sshd", "maxmatches", "abc"]), .run(["set", "sshd", "maxmatches", "5"]),
        // A date pattern of the jail's own; the next line is read with it.
        .cli(["set", "sshd", "datepattern", "%Y-%m-%d %H:%M:%S"]), .run(["get", "sshd", "datepattern"]),
        .fail(log: .sshd, address: "203.0.113.73", count: 1, then: [("sshd", 13, 6)]),
        .run(["set", "sshd", "datepattern", "Epoch"]), .run(["set", "sshd", "datepattern", "{^LN-BEG}"]),
        .run(["set", "sshd", "datepattern", "{DEFAULT}"]), .run(["get", "sshd", "datepattern"]),
        .run(["set", "sshd", "logtimezone", "bogus"]), .run(["get", "sshd", "logtimezone"]),
        .run(["set", "sshd", "prefregex", "^<F-CONTENT>.+</F-CONTENT>$"]), .run(["get", "sshd", "prefregex"]),
        .run(["set", "sshd", "prefregex", ""]), .run(["get", "sshd", "prefregex"]),
        // A failregex added at run time matches the next line.
        .run(["set", "sshd", "addfailregex", "^\\s*pcltest other failure from (?P<ip4>\\S+)$"], differs: hostText),
        .fail(
            log: .sshd, address: "203.0.113.74", count: 1, text: "pcltest other failure from", then: [("sshd", 14, 6)]),
        .run(["set", "sshd", "delfailregex", "1"], differs: hostText),
        .run(["set", "sshd", "delfailregex", "7"], differs: hostText), .run(["set", "sshd", "delfailregex", "abc"]),
        .run(["set", "sshd", "addfailregex", "^no host here$"]),
        .run(["set", "sshd", "addfailregex", "^bad("], differs: regexEngine),
        // An ignoreregex added at run time: .75 is ignored, .76 counted.
        .run(["set", "sshd", "addignoreregex", "^.*from 203\\.0\\.113\\.75$"]), .run(["get", "sshd", "ignoreregex"]),
        .write(log: .sshd, address: "203.0.113.75", count: 2),
        .fail(log: .sshd, address: "203.0.113.76", count: 1, then: [("sshd", 15, 6)]),
        .run(["set", "sshd", "delignoreregex", "0"]), .run(["set", "sshd", "delignoreregex", "0"]),
        // Idle: what is written meanwhile is counted when idle ends.
        .cli(["set", "sshd", "idle", "on"]), .cli(["set", "sshd", "idle", "maybe"]),
        .write(log: .sshd, address: "203.0.113.77", count: 2),
        .run(["status", "sshd"]),
        .run(["set", "sshd", "idle", "off"]),
        // fail2ban's polling reads what was written while idle once the file changes again (Portcullis counted
        // it when idle ended): one more line, then both have all three.
        .fail(log: .sshd, address: "203.0.113.77", count: 1, then: [("sshd", 18, 6)]),
        .run(["status", "sshd"]),
        // Failures reported by hand: the matches count as attempts, the failure once.
        .run(["set", "sshd", "attempt", "203.0.113.78"]),
        .run(["set", "sshd", "attempt", "203.0.113.78", "one", "two"]),
        .run(["status", "sshd"]),
        .run(["set", "sshd", "attempt", "203.0.113.79", "a", "b", "c", "d", "e"]),
        .wait([("sshd", 21, 7)]),
        .run(["status", "sshd"]), .run(["get", "sshd", "banned"]),
        .run(["get", "sshd", "banned", "203.0.113.79", "192.0.2.1"]),
        .run(["get", "sshd", "banned", "203.0.113.79"]),
        // bantime.* keys.
        .run(["get", "sshd", "bantime.increment"]), .run(["set", "sshd", "bantime.increment", "true"]),
        .run(["get", "sshd", "bantime.increment"]), .run(["set", "sshd", "bantime.factor", "2"]),
        .run(["set", "sshd", "bantime.maxtime", "1w"]), .run(["set", "sshd", "bantime.rndtime", "10m"]),
        .run(["set", "sshd", "bantime.formula", "ban.Time * 2"]),
        .run(["set", "sshd", "bantime.multipliers", "1 2 4"]),
        .run(["set", "sshd", "bantime.overalljails", "true"]), .run(["get", "sshd", "bantime.multipliers"]),
        .run(["get", "sshd", "bantime.maxtime"]), .run(["set", "sshd", "bantime.maxtime", "abc"]),
        .cli(["set", "sshd", "bantime.rndtime", ""]), .run(["get", "sshd", "bantime.rndtime"]),
        .run(["set", "sshd", "bantime.increment", "false"]), .run(["get", "sshd", "bantime.increment"]),
        // Unbans by network.
        .run(["set", "sshd", "unbanip", "--report-absent", "192.0.2.99"]),
        .run(["set", "sshd", "unbanip", "203.0.113.0/24"]), .run(["banned"]), .run(["status", "sshd"]),
    ]

    /// web's command action: its properties read and changed.
    private static let actions: [Step] = [
        .run(["get", "web", "actions"]), .run(["get", "web", "actionproperties", "pclnote"]),
        .run(["get", "web", "actionmethods", "pclnote"]), .run(["get", "web", "action", "pclnote", "actionban"]),
        .run(["get", "web", "action", "pclnote", "actionstart"]), .run(["get", "web", "action", "pclnote", "timeout"]),
        .run(["get", "web", "action", "pclnote", "name"]), .run(["get", "web", "action", "pclnote", "actname"]),
        .run(["get", "web", "action", "pclnote", "nosuch"]), .run(["get", "web", "action", "nosuch", "actionban"]),
        .run(["get", "web", "action", "pclnote"]), .run(["get", "web", "actionproperties", "nosuch"]),
        .run(["set", "web", "action", "pclnote", "actionban", "true banned"]),
        .run(["get", "web", "action", "pclnote", "actionban"]),
        .run(["set", "web", "action", "pclnote", "timeout", "30"]),
        .run(["get", "web", "action", "pclnote", "timeout"]),
        .run(["set", "web", "action", "pclnote", "myprop", "5"]), .run(["get", "web", "actionproperties", "pclnote"]),
        .run(["set", "web", "action", "pclnote"]), .run(["set", "web", "action", "pclnote", "timeout"]),
        .run(["set", "web", "action", "nosuch", "actionban", "x"]),
        .cli(["set", "web", "addaction", "extra"]), .run(["get", "web", "actions"]),
        .run(["get", "web", "actionproperties", "extra"]), .run(["get", "web", "action", "extra", "actionban"]),
        .run(["set", "web", "addaction", "extra"]), .run(["set", "web", "delaction", "extra"]),
        .run(["set", "web", "delaction", "extra"]), .run(["get", "web", "actions"]),
        // A ban runs the changed command.
        .fail(log: .other, address: "203.0.113.80", count: 3, then: [("web", 14, 5)]),
        .run(["get", "web", "banip"]),
    ]

    /// Jails added, configured, started and stopped at run time.
    private static let jailControl: [Step] =
        [
            .run(["add", "newjail", "polling"]), .run(["add", "newjail", "polling"]), .run(["add", "--all"]),
            .run(["add", "j3", "bogus"]), .run(["add"]), .run(["status"]), .run(["status", "newjail"]),
        ]
        + [
            "maxretry", "bantime", "findtime", "ignoreip", "ignoreself", "usedns", "maxlines", "maxmatches",
            "logencoding",
            "datepattern", "failregex", "logpath", "journalmatch", "actions", "prefregex", "bantime.increment",
        ].map { Step.run(["get", "newjail", $0]) } + [
            .run(["set", "newjail", "addlogpath", "{dir}/new.log"]),
            .run(["set", "newjail", "addfailregex", "^\\s*pcltest failure from (?P<ip4>\\S+)$"]),
            .run(["get", "newjail", "failregex"]),
            .run(["set", "newjail", "addjournalmatch", "_COMM=sshd"]), .run(["get", "newjail", "journalmatch"]),
            .run(["start", "newjail"]), .run(["start", "newjail"]), .run(["start", "nosuch"]),
            .fail(log: .new, address: "203.0.113.100", count: 3, then: [("newjail", 3, 1)]),
            .run(["status", "newjail"]), .run(["banned"]), .run(["banned", "203.0.113.100"]),
            .cli(["stop", "newjail"]), .cli(["stop", "newjail"]), .run(["status"]), .run(["banned"]),
            // A journal jail (not started): its matches.
            .cli(["add", "j2", "systemd"]), .run(["get", "j2", "journalmatch"]),
            .run(["set", "j2", "addjournalmatch", "_SYSTEMD_UNIT=sshd.service", "+", "_COMM=sshd"]),
            .run(["set", "j2", "addjournalmatch", "_COMM=x"]), .run(["set", "j2", "deljournalmatch", "_COMM=x"]),
            .run(["set", "j2", "deljournalmatch", "_COMM=nosuch"]), .run(["get", "j2", "journalmatch"]),
            .run(["get", "j2", "logpath"]), .run(["status", "j2"]), .run(["stop", "j2"]), .run(["status"]),
        ]

    /// restart JAIL, reload with options.
    private static let restarts: [Step] = [
        .run(["unban", "--all"]), .run(["set", "sshd", "banip", "192.0.2.150"]),
        .run(["restart", "sshd"]), .agree(["sshd"]), .run(["status", "sshd"]),
        .run(["restart", "--unban", "sshd"]), .agree(["sshd"]), .run(["status", "sshd"]),
        .run(["set", "web", "banip", "192.0.2.151"]), .run(["reload", "--unban"]), .agree(["web"]),
        .run(["status", "web"]),
        .run(["set", "web", "banip", "192.0.2.152"]), .run(["reload", "--restart"]), .agree(["sshd", "web"]),
        .run(["status"]),
        .run(["status", "web"]), .run(["status", "sshd"]),
        .run(["reload", "--if-exists", "nosuch"]), .run(["reload", "sshd", "extra"]), .run(["reload", "nosuch"]),
        .run(["reload", "--all"]), .run(["get", "sshd", "logpath"]), .run(["get", "sshd", "maxretry"]),
    ]

    @Test(
        "fail2ban-client prints the same and exits the same against Portcullis as against fail2ban-server",
        .timeLimit(.minutes(40)))
    func sameOutputAsFail2ban() async throws {
        for tool in [clientPath, serverPath, portcullisPath] {
            try #require(
                FileManager.default.isExecutableFile(atPath: tool), "\(tool) missing (scripts/deps.sh, swift build)")
        }
        let servers = try TwoServers()
        defer { servers.stop() }
        if let why = await servers.waitUntilReady() {
            Issue.record(Comment(rawValue: why))
            return
        }

        func path(_ log: LogFile) -> String {
            switch log {
            case .auth: servers.authLog
            case .other: servers.otherLog
            case .sshd: servers.sshdLog
            case .new: servers.newLog
            }
        }
        var identical = 0
        var different: [String] = []
        var cliSame = 0
        var cliDifferent: [String] = []
        var accepted: [String: [String]] = [:]
        for step in Self.session {
            switch step {
            case .fail(let log, let address, let count, let text, let expected):
                try servers.fail(path(log), address, count: count, text: text)
                if let why = await servers.waitFor(expected) {
                    Issue.record("after \(count) failure(s) for \(address): \(why)")
                }
            case .write(let log, let address, let count):
                try servers.fail(path(log), address, count: count)
            case .wait(let expected):
                if let why = await servers.waitFor(expected) { Issue.record("waiting for \(expected): \(why)") }
            case .agree(let jails):
                if let why = await servers.waitUntilAgreed(jails) {
                    Issue.record("waiting for \(jails) to agree: \(why)")
                }
            case .syslogHas(let expected):
                // Both servers wrote this line to the socket, each with its own PID, as Python's SysLogHandler
                // sends it: `<PRI>NAME[PID]: LEVEL MESSAGE` and a NUL (daemon.notice: 29).
                try await Task.sleep(for: .milliseconds(300))
                let messages = servers.syslogMessages().map { String(decoding: $0, as: UTF8.self) }
                for (name, pid) in [
                    ("fail2ban", servers.real.processIdentifier), ("portcullis", servers.ours.processIdentifier),
                ] {
                    let line = "<29>" + expected.replacingOccurrences(of: "PID", with: String(pid)) + "\u{0}"
                    #expect(messages.contains(line), "\(name) sent no \(line.debugDescription) to syslog: \(messages)")
                }
            case .cli(let template):
                let (conf, realSocket, oursSocket, dir) = (
                    servers.conf, servers.realSocket, servers.oursSocket, servers.dir
                )
                let words = template.map { $0.replacingOccurrences(of: "{dir}", with: dir) }
                async let theirs = runClient(conf: conf, socket: realSocket, words)
                async let mine = runPortcullis(socket: oursSocket, words)
                var (expected, actual) = try await (theirs, mine)
                // fail2ban-client logs its own ERROR line on stderr and prints the error on stdout; portcullis
                // prints `ERROR: ` and the error on stderr.
                expected.stderr = ""
                if actual.status != 0, actual.stdout.isEmpty, actual.stderr.hasPrefix("ERROR: ") {
                    actual = ClientRun(stdout: String(actual.stderr.dropFirst(7)), stderr: "", status: actual.status)
                }
                let command = "portcullis " + words.joined(separator: " ")
                let (e, _) = normalised(expected)
                let (a, _) = normalised(actual)
                if e == a {
                    identical += 1
                } else {
                    different.append(command)
                    print(
                        "client: different: \(command) (UNEXPECTED)\n    fail2ban:   \(expected)\n    portcullis: \(actual)"
                    )
                    Issue.record("\(command): fail2ban-client \(expected) vs portcullis \(actual)")
                }
            case .run(let template, let differs):
                let (conf, realSocket, oursSocket, dir) = (
                    servers.conf, servers.realSocket, servers.oursSocket, servers.dir
                )
                func words(_ log: String) -> [String] {
                    template.map {
                        $0.replacingOccurrences(of: "{dir}", with: dir).replacingOccurrences(of: "{log}", with: log)
                    }
                }
                async let theirs = runClient(conf: conf, socket: realSocket, words(dir + "/fail2ban.log"))
                async let mine = runClient(conf: conf, socket: oursSocket, words(dir + "/portcullis.log"))
                let (expected, actual) = try await (theirs, mine)
                // Our own CLI with the same words against Portcullis, for commands that change nothing (running
                // a change twice would change the state).
                if ["get", "status", "banned", "echo", "ping", "version", "stats", "nosuchcommand"].contains(
                    template.first ?? "")
                {
                    let ownWords = words(dir + "/portcullis.log")
                    async let text = runPortcullis(socket: oursSocket, ownWords)
                    async let json = runPortcullis(socket: oursSocket, ["--json"] + ownWords)
                    // Only after fail2ban-client's run: a command that changes something must not run twice
                    // before fail2ban-client's reply was taken (the CLI's run repeats it).
                    if let why = cliAgrees(actual, text: try await text, json: try await json) {
                        cliDifferent.append("portcullis " + ownWords.joined(separator: " ") + ": " + why)
                    } else {
                        cliSame += 1
                    }
                }
                let command =
                    "fail2ban-client "
                    + template.map { $0.contains(" ") || $0.isEmpty ? "'\($0)'" : $0 }
                    .joined(separator: " ")
                let (e, usedE) = normalised(expected)
                let (a, usedA) = normalised(actual)
                if e == a {
                    identical += 1
                    for name in usedE.union(usedA) where expected != actual {
                        accepted[name, default: []].append(command)
                    }
                    if let differs { print("client: now identical (was: \(differs)): \(command)") }
                } else {
                    different.append(command)
                    print("client: different: \(command) (\(differs ?? "UNEXPECTED"))")
                    print("    fail2ban:   \(expected)")
                    print("    portcullis: \(actual)")
                    if differs == nil { Issue.record("\(command): fail2ban \(expected) vs Portcullis \(actual)") }
                }
            }
        }
        for a in acceptedDifferences where accepted[a.name] != nil {
            print(
                "client: accepted difference '\(a.name)' (\(a.reason)) in: \(accepted[a.name]!.joined(separator: ", "))"
            )
        }
        for d in cliDifferent { print("cli: different: \(d)") }
        print("\ncli: \(cliSame) the same as fail2ban-client, \(cliDifferent.count) different")
        // On a line of its own even when another test's child process has half-written one (they share the output).
        print("\nclient: \(identical) identical, \(different.count) different")
        #expect(
            identical + different.count
                == Self.session.filter {
                    switch $0 {
                    case .run, .cli: true
                    default: false
                    }
                }.count)
    }
}
