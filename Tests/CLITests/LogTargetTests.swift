import Foundation
import Testing

#if canImport(Glibc)
import Glibc
#endif

/// A tree with one jail `demo` (no firewall needed: the tests start the daemon with `--no-firewall`) whose main
/// configuration says where the log goes.
private func logTree(_ definition: String) throws -> URL {
    let dir = try CLI.temporaryDirectory()
    try CLI.write(
        """
        [Definition]
        loglevel = INFO
        socket = \(dir.path)/portcullis.sock
        pidfile = \(dir.path)/portcullis.pid
        dbfile = \(dir.path)/portcullis.sqlite3
        \(definition)

        """, to: "portcullis.conf", in: dir)
    try CLI.write("[Definition]\nfailregex = ^\\S+ demo failure from <HOST>$\n", to: "filter.d/demo.conf", in: dir)
    try CLI.write(
        """
        [demo]
        enabled = true
        filter = demo
        action =
        logpath = \(dir.path)/auth.log
        maxretry = 3

        """, to: "jail.conf", in: dir)
    try CLI.write("", to: "auth.log", in: dir)
    return dir
}

/// A datagram socket bound at `path` (a syslog daemon's or journald's), read without blocking.
private final class DatagramListener {
    let fd: Int32
    let path: String

    init(_ path: String) throws {
        self.path = path
        unlink(path)
        fd = socket(AF_UNIX, Int32(SOCK_DGRAM.rawValue) | Int32(SOCK_NONBLOCK.rawValue), 0)
        guard fd >= 0 else { throw CLIError("socket: \(errno)") }
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
        guard rc == 0 else { throw CLIError("bind \(path): \(errno)") }
    }

    /// Every datagram received so far, as text.
    func messages() -> [String] {
        var out: [String] = []
        var buffer = [UInt8](repeating: 0, count: 65536)
        while true {
            let n = buffer.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, 0) }
            guard n > 0 else { break }
            out.append(String(decoding: buffer[0..<n], as: UTF8.self))
        }
        return out
    }

    /// Waits (up to 10 s) until a datagram satisfies `condition`; returns everything read.
    func wait(for condition: (String) -> Bool) async -> [String] {
        var all: [String] = []
        for _ in 0..<200 {
            all += messages()
            if all.contains(where: condition) { return all }
            try? await Task.sleep(for: .milliseconds(50))
        }
        return all
    }

    func close() {
        Glibc.close(fd)
        unlink(path)
    }
}

struct CLIError: Error, CustomStringConvertible {
    var description: String
    init(_ description: String) { self.description = description }
}

/// Reads a file, or "" when it is not there.
private func contents(_ path: String) -> String { (try? String(contentsOfFile: path, encoding: .utf8)) ?? "" }

/// Waits (up to 10 s) until `path` holds `text`.
private func waitForText(_ text: String, in path: String) async -> Bool {
    for _ in 0..<200 {
        if contents(path).contains(text) { return true }
        try? await Task.sleep(for: .milliseconds(50))
    }
    return false
}

@Suite("log targets: file (logrotate), JSON lines, syslog, the systemd journal, streams", .serialized, .blocking)
struct LogTargetTests {
    @Test("a log file moved by logrotate: flushlogs opens a new one; JSON lines carry their documented keys")
    func fileAndJSON() async throws {
        let tree = try logTree("logformat = json\nlogtarget = LOGFILE")
        let log = tree.path + "/portcullis.log"
        try contents(tree.path + "/portcullis.conf").replacingOccurrences(of: "LOGFILE", with: log)
            .write(toFile: tree.path + "/portcullis.conf", atomically: true, encoding: .utf8)
        defer { try? FileManager.default.removeItem(at: tree) }
        let start = try CLI.run(["-c", tree.path, "start", "--no-firewall"])
        try #require(start.status == 0, "\(start.stderr)")
        defer { _ = try? CLI.run(["-c", tree.path, "stop"]) }

        // logrotate moves the file away; the daemon still writes to the moved file until told.
        try FileManager.default.moveItem(atPath: log, toPath: log + ".1")
        let flush = try CLI.run(["-c", tree.path, "flushlogs"])
        #expect(flush.stdout == "logs: rolled over\n" && flush.status == 0, "\(flush)")
        #expect(try CLI.run(["-c", tree.path, "set", "demo", "banip", "192.0.2.7"]).stdout == "1\n")
        #expect(await waitForText("Ban 192.0.2.7", in: log), "no Ban line in the new file: \(contents(log))")
        #expect(
            contents(log + ".1").contains("Portcullis ready"), "the old file keeps the start: \(contents(log + ".1"))")
        #expect(!contents(log + ".1").contains("Ban 192.0.2.7"))

        // Every line is one JSON object; a jail event names the jail, the event and the address.
        let lines = contents(log).split(separator: "\n")
        #expect(!lines.isEmpty)
        var sawBan = false
        for line in lines {
            let object = try #require(
                try JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any], "not a JSON object: \(line)")
            for key in ["time", "logger", "pid", "level", "message"] {
                #expect(object[key] != nil, "\(key) missing: \(line)")
            }
            #expect(
                (object["time"] as? String)?.range(
                    of: #"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}[+-]\d\d:\d\d$"#, options: .regularExpression) != nil)
            if object["message"] as? String == "[demo] Ban 192.0.2.7" {
                sawBan = true
                #expect(object["logger"] as? String == "fail2ban.actions")
                #expect(object["level"] as? String == "NOTICE")
                #expect(object["jail"] as? String == "demo")
                #expect(object["event"] as? String == "ban")
                #expect(object["address"] as? String == "192.0.2.7")
            }
        }
        #expect(sawBan, "\(lines)")
    }

    @Test("SYSLOG to a socket of the test's own: fail2ban's datagram layout, the facility option, a restarted syslog")
    func syslog() async throws {
        let tree = try logTree("logtarget = SYSLOG[facility=auth]\nsyslogsocket = SOCKET")
        defer { try? FileManager.default.removeItem(at: tree) }
        let socketPath = tree.path + "/log.sock"
        try contents(tree.path + "/portcullis.conf").replacingOccurrences(of: "SOCKET", with: socketPath)
            .write(toFile: tree.path + "/portcullis.conf", atomically: true, encoding: .utf8)
        var listener = try DatagramListener(socketPath)
        defer { listener.close() }
        let start = try CLI.run(["-c", tree.path, "start", "--no-firewall"])
        try #require(start.status == 0, "\(start.stderr)")
        defer { _ = try? CLI.run(["-c", tree.path, "stop"]) }
        let pid = try #require(
            Int32(contents(tree.path + "/portcullis.pid").trimmingCharacters(in: .whitespacesAndNewlines)))

        // fail2ban answers the target without its options.
        #expect(try CLI.run(["-c", tree.path, "get", "logtarget"]).stdout == "Current logging target is:\n`- SYSLOG\n")
        #expect(try CLI.run(["-c", tree.path, "set", "demo", "banip", "192.0.2.7"]).stdout == "1\n")
        // auth (4) × 8 + notice (5) = 37; the component as tag, no time (syslog stamps it), a NUL at the end.
        let expected = "<37>fail2ban.actions[\(pid)]: NOTICE [demo] Ban 192.0.2.7\u{0}"
        let got = await listener.wait { $0 == expected }
        #expect(got.contains(expected), "\(got)")
        #expect(got.contains { $0.hasPrefix("<38>fail2ban.server[\(pid)]: INFO ") }, "start lines at auth.info: \(got)")

        // The syslog daemon restarts (its socket goes and comes back): the next line reconnects.
        listener.close()
        #expect(try CLI.run(["-c", tree.path, "set", "demo", "banip", "192.0.2.8"]).status == 0)
        listener = try DatagramListener(socketPath)
        #expect(try CLI.run(["-c", tree.path, "set", "demo", "banip", "192.0.2.9"]).status == 0)
        let again = await listener.wait { $0.contains("Ban 192.0.2.9") }
        #expect(again.contains("<37>fail2ban.actions[\(pid)]: NOTICE [demo] Ban 192.0.2.9\u{0}"), "\(again)")

        // A syslog daemon that stops reading (its queue holds net.unix.max_dgram_qlen messages, 10 by default):
        // lines beyond are dropped, nothing waits. An unban logs from the coordinator itself: it must answer.
        _ = listener.messages()
        for i in 100..<125 {
            #expect(
                try CLI.run(["-c", tree.path, "--timeout", "10", "set", "demo", "banip", "192.0.2.\(i)"]).stdout
                    == "1\n")
        }
        try await Task.sleep(for: .milliseconds(500))
        let unban = try CLI.run(["-c", tree.path, "--timeout", "10", "set", "demo", "unbanip", "192.0.2.100"])
        #expect(unban.stdout == "1\n" && unban.status == 0, "the daemon waited on a full syslog socket: \(unban)")
        #expect(try CLI.run(["-c", tree.path, "--timeout", "10", "status"]).status == 0)
        let queued = listener.messages()
        #expect(queued.contains("<37>fail2ban.actions[\(pid)]: NOTICE [demo] Ban 192.0.2.100\u{0}"), "\(queued)")

        // A socket that is not there: refused, the target stays.
        let bad = try CLI.run(["-c", tree.path, "set", "syslogsocket", tree.path + "/nosuch.sock"])
        #expect(bad.status == 255 && bad.stderr == "ERROR: Failed to change syslog socket\n", "\(bad)")
        #expect(try CLI.run(["-c", tree.path, "get", "logtarget"]).stdout.hasSuffix("- SYSLOG\n"))
    }

    /// Runs `portcullis -c TREE start --no-firewall` in a private mount namespace whose /run is empty, with
    /// `journalDirectory` (when given) as /run/systemd/journal: journald's socket is then the test's own.
    private func startInPrivateRun(_ tree: URL, journalDirectory: String?) throws -> CLI.Result {
        let bind =
            journalDirectory.map { "mkdir -p /run/systemd/journal && mount --bind '\($0)' /run/systemd/journal && " }
            ?? ""
        let script =
            "mount -t tmpfs tmpfs /run && \(bind)exec '\(CLI.binary())' -c '\(tree.path)' start --no-firewall"
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/unshare")
        process.arguments = ["--mount", "--propagation", "private", "/bin/sh", "-c", script]
        let err = Pipe()
        process.standardError = err
        process.standardOutput = FileHandle.nullDevice
        try process.run()
        let errData = err.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        return CLI.Result(
            status: process.terminationStatus, stdout: "", stderr: String(decoding: errData, as: UTF8.self))
    }

    @Test("SYSTEMD-JOURNAL: entries reach journald's socket (a test socket in a private mount namespace)")
    func journal() async throws {
        #expect(getuid() == 0, "needs root for a private mount namespace (the test command runs as root)")
        let tree = try logTree("logtarget = SYSTEMD-JOURNAL")
        defer { try? FileManager.default.removeItem(at: tree) }
        let journalDir = tree.path + "/journal"
        try FileManager.default.createDirectory(atPath: journalDir, withIntermediateDirectories: true)
        let listener = try DatagramListener(journalDir + "/socket")
        defer { listener.close() }
        let start = try startInPrivateRun(tree, journalDirectory: journalDir)
        try #require(start.status == 0, "\(start.stderr)")
        defer { _ = try? CLI.run(["-c", tree.path, "stop"]) }
        #expect(try CLI.run(["-c", tree.path, "set", "demo", "banip", "192.0.2.7"]).stdout == "1\n")
        // journald's native protocol: FIELD=value lines.
        let got = await listener.wait { $0.contains("MESSAGE=[demo] Ban 192.0.2.7\n") }
        let ban = got.first { $0.contains("MESSAGE=[demo] Ban 192.0.2.7\n") } ?? ""
        for field in ["PRIORITY=4\n", "SYSLOG_IDENTIFIER=portcullis\n", "LOGGER=fail2ban.actions\n"] {
            #expect(ban.contains(field), "\(field) missing: \(got)")
        }
        #expect(got.contains { $0.contains("MESSAGE=Portcullis ready") }, "\(got)")
    }

    @Test("SYSTEMD-JOURNAL without journald: the daemon runs, answers and bans all the same")
    func journalAbsent() async throws {
        #expect(getuid() == 0, "needs root for a private mount namespace (the test command runs as root)")
        let tree = try logTree("logtarget = SYSTEMD-JOURNAL")
        defer { try? FileManager.default.removeItem(at: tree) }
        let start = try startInPrivateRun(tree, journalDirectory: nil)
        try #require(start.status == 0, "\(start.stderr)")
        defer { _ = try? CLI.run(["-c", tree.path, "stop"]) }
        #expect(try CLI.run(["-c", tree.path, "set", "demo", "banip", "192.0.2.7"]).stdout == "1\n")
        #expect(
            try CLI.run(["-c", tree.path, "get", "logtarget"]).stdout
                == "Current logging target is:\n`- SYSTEMD-JOURNAL\n")
        #expect(try CLI.run(["-c", tree.path, "banned", "192.0.2.7"]).stdout == "[['demo']]\n")
    }

    @Test("at run time: STDOUT (stamped), SYSOUT (not stamped), STDERR, then a file again; bad targets refused")
    func streams() async throws {
        let tree = try logTree("logtarget = STDERR")
        defer { try? FileManager.default.removeItem(at: tree) }
        let out = tree.path + "/daemon.out"
        FileManager.default.createFile(atPath: out, contents: nil)
        let handle = try FileHandle(forWritingTo: URL(fileURLWithPath: out))
        let daemon = Process()
        daemon.executableURL = URL(fileURLWithPath: CLI.binary())
        daemon.arguments = ["-c", tree.path, "-f", "start", "--no-firewall"]
        daemon.standardOutput = handle
        daemon.standardError = handle
        try daemon.run()
        defer {
            _ = try? CLI.run(["-c", tree.path, "stop"])
            daemon.waitUntilExit()
        }
        for _ in 0..<200 where try CLI.run(["-c", tree.path, "ping"]).status != 0 {
            try await Task.sleep(for: .milliseconds(50))
        }
        let pid = daemon.processIdentifier
        let stamp = #"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3} "#
        func has(_ pattern: String) -> Bool { contents(out).range(of: pattern, options: .regularExpression) != nil }

        #expect(
            try CLI.run(["-c", tree.path, "set", "logtarget", "STDOUT"]).stdout
                == "Current logging target is:\n`- STDOUT\n")
        #expect(try CLI.run(["-c", tree.path, "flushlogs"]).stdout == "logs: flushed\n")
        #expect(
            has("(?m)^" + stamp + #"fail2ban\.server +\[\#(pid)\]: INFO    flush performed on STDOUT$"#),
            "\(contents(out))")
        #expect(try CLI.run(["-c", tree.path, "set", "logtarget", "SYSOUT"]).status == 0)
        #expect(
            has(#"(?m)^fail2ban\.server +\[\#(pid)\]: INFO    Changed logging target to SYSOUT for Portcullis$"#),
            "\(contents(out))")
        #expect(try CLI.run(["-c", tree.path, "set", "logtarget", "STDERR"]).status == 0)
        let bad = try CLI.run(["-c", tree.path, "set", "logtarget", "/nonexistent/dir/x.log"])
        #expect(bad.status == 255 && bad.stderr == "ERROR: Failed to change log target\n", "\(bad)")
        #expect(has(#"ERROR   cannot open log file /nonexistent/dir/x.log"#), "\(contents(out))")
        let file = tree.path + "/later.log"
        #expect(try CLI.run(["-c", tree.path, "set", "logtarget", file]).status == 0)
        #expect(
            try CLI.run(["-c", tree.path, "set", "loglevel", "NOTICE"]).stdout == "Current logging level is 'NOTICE'\n")
        #expect(try CLI.run(["-c", tree.path, "set", "demo", "banip", "192.0.2.7"]).stdout == "1\n")
        #expect(await waitForText("NOTICE  [demo] Ban 192.0.2.7", in: file))
        // INFO lines are below the level now (the one before is the switch to this file).
        let info = contents(file).split(separator: "\n").filter { $0.contains(" INFO ") }
        #expect(info.count == 1 && info[0].contains("Changed logging target to \(file)"), "\(contents(file))")
    }
}
