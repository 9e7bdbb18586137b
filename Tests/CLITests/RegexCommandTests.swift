import Foundation
import PortcullisTestKit
import Testing

/// A tiny config tree of our own: one filter whose failregex captures a user and an address, with an ignoreregex.
private func demoTree() throws -> URL {
    let dir = try CLI.temporaryDirectory()
    try CLI.write(
        """
        [Definition]
        _daemon = demo-auth
        failregex = %(_daemon)s\\[\\d+\\]: Login failed for user <F-USER>\\S+</F-USER> from <HOST>$
        ignoreregex = from 192\\.0\\.2\\.250$

        """, to: "filter.d/demo.conf", in: dir)
    return dir
}

/// Five tested lines (plus a comment and a blank line): 3 failures, 1 ignored, 1 missed.
private let demoLog = """
    2026-11-29T10:00:00 gate demo-auth[11]: Login failed for user alice from 192.0.2.1
    2026-11-29T10:00:01 gate demo-auth[12]: Login ok for user bob from 192.0.2.2
    # a comment line is not tested

    2026-11-29T10:00:02 gate demo-auth[13]: Login failed for user carol from 2001:db8::7
    2026-11-29T10:00:03 gate demo-auth[14]: Login failed for user mallory from 192.0.2.250
    2026-11-29T10:00:04 gate demo-auth[15]: Login failed for user dave from 192.0.2.1

    """

@Suite("portcullis regex", .blocking)
struct RegexCommandTests {
    @Test("counts lines like fail2ban-regex")
    func counts() throws {
        let tree = try demoTree()
        let log = try CLI.write(demoLog, to: "auth.log", in: tree)
        let r = try CLI.run(["regex", "--conf", tree.path, log, "demo"])
        #expect(r.status == 0, "\(r.stderr)")
        #expect(r.stdout.contains("Lines: 5 lines, 1 ignored, 3 matched, 1 missed"))
        #expect(r.stdout.contains("Use   failregex filter file : demo, basedir: \(tree.path)"))
        #expect(r.stdout.contains("Use         log file : \(log)"))
        #expect(
            r.stdout.contains(
                "|   1) [3] demo-auth\\[\\d+\\]: Login failed for user <F-USER>\\S+</F-USER> from <HOST>$"))
        #expect(r.stdout.contains("Ignoreregex: 1 total"))
        #expect(r.stdout.hasPrefix("\nRunning tests\n=============\n"))
    }

    @Test("--out ip prints one address per failure, in log order")
    func outIP() throws {
        let tree = try demoTree()
        let log = try CLI.write(demoLog, to: "auth.log", in: tree)
        let r = try CLI.run(["regex", "--conf", tree.path, "--out", "ip", log, "demo"])
        #expect(r.status == 0, "\(r.stderr)")
        #expect(r.stdout == "192.0.2.1\n2001:db8::7\n192.0.2.1\n")
    }

    @Test("a host name getaddrinfo reads as a number is no address, as in the daemon (no 192.0.2.1 from 3221225985)")
    func numericSpellingsAreNotAddresses() throws {
        let dir = try CLI.temporaryDirectory()
        let log = try CLI.write(
            """
            2026-11-29T10:00:00 gate x: fail from 3221225985
            2026-11-29T10:00:01 gate x: fail from 0xc0.0.2.2
            2026-11-29T10:00:03 gate x: fail from 192.0.2.4

            """, to: "auth.log", in: dir)
        let r = try CLI.run(["regex", "--out", "ip", log, #"^\s*\S+ x: fail from <HOST>$"#])
        #expect(r.status == 0, "\(r.stderr)")
        // getaddrinfo would give 192.0.2.1 and 192.0.2.2: attacker text choosing the address banned.
        #expect(r.stdout == "192.0.2.4\n", "\(r.stdout)")
    }

    @Test("-o user prints the F-USER capture")
    func outUser() throws {
        let tree = try demoTree()
        let log = try CLI.write(demoLog, to: "auth.log", in: tree)
        let r = try CLI.run(["regex", "--conf", tree.path, "-o", "user", log, "demo"])
        #expect(r.status == 0, "\(r.stderr)")
        #expect(r.stdout == "alice\ncarol\ndave\n")
    }

    @Test("a raw failregex and a single log line")
    func rawRegexSingleLine() throws {
        let line = "2026-11-29T10:00:00 gate sshd[7]: Failed password for root from 198.51.100.9 port 22 ssh2"
        let r = try CLI.run([
            "regex", "--conf", "/nonexistent-is-not-needed-for-raw", line, "Failed \\S+ for \\S+ from <HOST>",
        ])
        // --conf must exist: a clear error, not a crash.
        #expect(r.status != 0)
        let ok = try CLI.run(["regex", "-o", "id", line, "Failed \\S+ for \\S+ from <HOST>"])
        #expect(ok.status == 0, "\(ok.stderr)")
        #expect(ok.stdout == "198.51.100.9\n")
        let text = try CLI.run(["regex", line, "Failed \\S+ for \\S+ from <HOST>"])
        #expect(text.stdout.contains("Use      single line : 2026-11-29T10:00:00 gate sshd[7]: Failed password ..."))
        #expect(text.stdout.contains("Lines: 1 lines, 0 ignored, 1 matched, 0 missed"))
    }

    @Test("--json reports counts and failures")
    func json() throws {
        let tree = try demoTree()
        let log = try CLI.write(demoLog, to: "auth.log", in: tree)
        let r = try CLI.run(["regex", "--conf", tree.path, "--json", log, "demo"])
        #expect(r.status == 0, "\(r.stderr)")
        let object = try JSONSerialization.jsonObject(with: Data(r.stdout.utf8)) as? [String: Any]
        let lines = object?["lines"] as? [String: Any]
        #expect(lines?["total"] as? Int == 5)
        #expect(lines?["matched"] as? Int == 3)
        #expect(lines?["ignored"] as? Int == 1)
        #expect(lines?["missed"] as? Int == 1)
        let failures = object?["failures"] as? [[String: Any]]
        #expect(failures?.map { $0["id"] as? String } == ["192.0.2.1", "2001:db8::7", "192.0.2.1"])
        #expect(failures?.first?["user"] as? String == "alice")
    }

    @Test("a 1 MB line, NUL bytes and invalid UTF-8 do not lose neighbouring lines")
    func hostileLines() throws {
        let tree = try demoTree()
        var data = Data()
        func add(_ s: String) { data.append(contentsOf: Array(s.utf8)) }
        add("2026-11-29T10:00:00 gate demo-auth[1]: Login failed for user a from 192.0.2.11\n")
        add("2026-11-29T10:00:01 gate demo-auth[1]: " + String(repeating: "x", count: 1_048_576) + "\n")
        add("2026-11-29T10:00:02 gate demo-auth[1]: Login failed for user b from 192.0.2.12\r\n")
        add("2026-11-29T10:00:03 gate demo-auth[1]: nul")
        data.append(contentsOf: [0, 0, 0x41, 0x0A])
        add("2026-11-29T10:00:04 gate demo-auth[1]: bad utf8 ")
        data.append(contentsOf: [0xFF, 0xFE, 0xC3, 0x28, 0x0A])
        add("2026-11-29T10:00:05 gate demo-auth[1]: Login failed for user c from 192.0.2.13\n")
        // A last line without newline may still be being written: not tested, like fail2ban-regex.
        add("2026-11-29T10:00:06 gate demo-auth[1]: Login failed for user d from 192.0.2.14")
        let log = tree.appendingPathComponent("hostile.log")
        try data.write(to: log)
        let ids = try CLI.run(["regex", "--conf", tree.path, "--out", "id", log.path, "demo"])
        #expect(ids.status == 0, "\(ids.stderr)")
        #expect(ids.stdout == "192.0.2.11\n192.0.2.12\n192.0.2.13\n")
        #expect(ids.stderr.contains("has no newline"))
        let text = try CLI.run(["regex", "--conf", tree.path, "--print-no-missed", log.path, "demo"])
        #expect(text.stdout.contains("Lines: 5 lines, 0 ignored, 3 matched, 2 missed"))
        #expect(text.stdout.contains("[1 line(s) longer than 65536 bytes skipped, not matched]"))
    }

    @Test("standard input with '-'")
    func stdin() throws {
        let tree = try demoTree()
        let r = try CLI.run(["regex", "--conf", tree.path, "-o", "id", "-", "demo"], stdin: Data(demoLog.utf8))
        #expect(r.status == 0, "\(r.stderr)")
        #expect(r.stdout == "192.0.2.1\n2001:db8::7\n192.0.2.1\n")
    }
}

@Suite("portcullis regex errors", .blocking)
struct RegexErrorTests {
    /// An error is one line on stderr, names the culprit, and exits non-zero; nothing on stdout, no trace.
    private func expectCleanError(_ r: CLI.Result, mentioning words: [String]) {
        #expect(r.status != 0)
        let lines = r.stderr.split(separator: "\n")
        #expect(lines.count == 1, "stderr: \(r.stderr)")
        for w in words { #expect(r.stderr.contains(w), "stderr: \(r.stderr)") }
        #expect(!r.stderr.contains("Fatal error"))
        #expect(!r.stdout.contains("Results"))
    }

    @Test("unknown filter name")
    func unknownFilter() throws {
        let tree = try demoTree()
        let log = try CLI.write(demoLog, to: "auth.log", in: tree)
        let r = try CLI.run(["regex", "--conf", tree.path, log, "nosuchfilter"])
        expectCleanError(r, mentioning: ["nosuchfilter", "filter.d"])
    }

    @Test("bad raw regex")
    func badRegex() throws {
        let tree = try demoTree()
        let log = try CLI.write(demoLog, to: "auth.log", in: tree)
        let r = try CLI.run(["regex", "--conf", tree.path, log, "Failed (<HOST>"])
        expectCleanError(r, mentioning: ["Failed (<HOST>"])
    }

    @Test("bad regex in a filter file names the file and line")
    func badRegexInFile() throws {
        let tree = try demoTree()
        try CLI.write(
            "[Definition]\n\nfailregex = ^ok from <HOST>$\n            ^broken [from <HOST>\n",
            to: "filter.d/broken.conf", in: tree)
        let log = try CLI.write(demoLog, to: "auth.log", in: tree)
        let r = try CLI.run(["regex", "--conf", tree.path, log, "broken"])
        expectCleanError(r, mentioning: ["broken.conf:4"])
    }

    @Test("regex without an address group")
    func noHostGroup() throws {
        let tree = try demoTree()
        let log = try CLI.write(demoLog, to: "auth.log", in: tree)
        let r = try CLI.run(["regex", "--conf", tree.path, log, "Login failed for user \\S+"])
        expectCleanError(r, mentioning: ["<HOST>"])
    }

    @Test("missing log file")
    func missingLog() throws {
        let tree = try demoTree()
        let r = try CLI.run(["regex", "--conf", tree.path, "/nonexistent/auth.log", "demo"])
        expectCleanError(r, mentioning: ["/nonexistent/auth.log"])
    }

    @Test("missing arguments print usage and exit non-zero")
    func missingArguments() throws {
        let r = try CLI.run(["regex"])
        #expect(r.status != 0)
        #expect(r.stderr.contains("Missing expected argument"))
    }
}

@Suite("portcullis help", .blocking)
struct HelpTests {
    @Test("top-level help lists the regex subcommand")
    func topLevel() throws {
        let r = try CLI.run(["--help"])
        #expect(r.status == 0)
        #expect(r.stdout.contains("USAGE: portcullis <subcommand>"))
        #expect(r.stdout.contains("regex"))
    }

    @Test("regex --help matches the snapshot")
    func regexHelpSnapshot() throws {
        let r = try CLI.run(["regex", "--help"])
        #expect(r.status == 0)
        let snapshot = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
            .appendingPathComponent("Snapshots/regex-help.txt")
        let expected = try String(contentsOf: snapshot, encoding: .utf8)
        #expect(r.stdout == expected)
    }
}

@Suite("portcullis regex agrees with fail2ban-regex", .blocking)
struct Fail2banAgreementTests {
    static let available =
        FileManager.default.isExecutableFile(atPath: "/usr/bin/fail2ban-regex")
        && FileManager.default.fileExists(atPath: "/etc/fail2ban/filter.d/sshd.conf")

    private func fail2banRegex(_ arguments: [String]) throws -> String {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: "/usr/bin/fail2ban-regex")
        p.arguments = arguments
        let out = Pipe()
        p.standardOutput = out
        p.standardError = FileHandle.nullDevice
        try p.run()
        let data = out.fileHandleForReading.readDataToEndOfFile()
        p.waitUntilExit()
        return String(decoding: data, as: UTF8.self)
    }

    @Test("samples/auth.log with fail2ban's sshd filter: same ids and same counts", .enabled(if: available))
    func sampleAuthLog() throws {
        let log = CLI.packageRoot.appendingPathComponent("samples/auth.log").path
        for mode in ["sshd", "sshd[mode=aggressive]"] {
            let ours = try CLI.run(["regex", "--conf", "/etc/fail2ban", "--out", "id", log, mode])
            #expect(ours.status == 0, "\(ours.stderr)")
            #expect(ours.stdout == (try fail2banRegex(["-o", "id", log, mode])), "\(mode)")
        }
        let text = try CLI.run(["regex", "--conf", "/etc/fail2ban", log, "sshd"])
        let theirs = try fail2banRegex([log, "sshd"])
        let countsLine = { (s: String) in s.split(separator: "\n").first { $0.hasPrefix("Lines: ") } }
        #expect(countsLine(text.stdout) != nil)
        #expect(countsLine(text.stdout) == countsLine(theirs))
    }

    @Test(
        "fail2ban's sample logs: same counts, regex hits and date templates (multi-line included)",
        .enabled(if: available),
        arguments: ["sshd", "guacamole", "ejabberd-auth", "apache-auth", "openhab", "monit"])
    func fail2banSampleLog(_ name: String) throws {
        let log = "/usr/lib/python3/dist-packages/fail2ban/tests/files/logs/" + name
        let ours = try CLI.run(["regex", "--conf", "/etc/fail2ban", log, name])
        #expect(ours.status == 0, "\(ours.stderr)")
        let theirs = try fail2banRegex([log, name])
        // Everything from the failregex hits on, except the time taken.
        let tail = { (s: String) -> [Substring] in
            let lines = s.split(separator: "\n", omittingEmptySubsequences: false)
            let start = lines.firstIndex { $0.hasPrefix("Failregex: ") } ?? lines.endIndex
            return lines[start...].filter { !$0.hasPrefix("[processed in ") }
        }
        #expect(!tail(ours.stdout).isEmpty)
        #expect(tail(ours.stdout) == tail(theirs))
    }
}
