import Foundation
import PortcullisTestKit
import Testing

/// A tree that starts cleanly with `--no-firewall`: one jail `demo` on a log file of its own, with a command action
/// (so that an action file is read too), everything (socket, pid file, database, log) inside the tree.
private func startTree() throws -> URL {
    let dir = try CLI.temporaryDirectory()
    try CLI.write(
        """
        [Definition]
        loglevel = INFO
        logtarget = \(dir.path)/portcullis.log
        socket = \(dir.path)/portcullis.sock
        pidfile = \(dir.path)/portcullis.pid
        dbfile = \(dir.path)/portcullis.sqlite3

        """, to: "portcullis.conf", in: dir)
    try CLI.write(
        """
        [Definition]
        failregex = ^\\S+ demo-auth\\[\\d+\\]: Login failed for <F-USER>\\S+</F-USER> from <HOST>$

        """, to: "filter.d/demo.conf", in: dir)
    try CLI.write(
        """
        [Definition]
        actionban = true <ip>
        actionunban = true <ip>

        """, to: "action.d/note.conf", in: dir)
    try CLI.write(
        """
        [DEFAULT]
        maxretry = 3
        findtime = 10m
        bantime = 1h
        port = 0:65535

        [demo]
        enabled = true
        filter = demo
        action = note
        logpath = \(dir.path)/auth.log

        """, to: "jail.conf", in: dir)
    try CLI.write("", to: "auth.log", in: dir)
    return dir
}

/// One mistake in one file the start reads, and what the error must name.
struct BadConfiguration: Sendable, CustomTestStringConvertible {
    var name: String
    var file: String
    var text: String
    /// Texts the error must contain besides the file: the line (`FILE:LINE`) and the reason.
    var location: String
    var reason: String
    var testDescription: String { name }

    static let all: [BadConfiguration] = [
        BadConfiguration(
            name: "jail.local: a section header without ']'", file: "jail.local",
            text: "[demo\nenabled = true\n", location: "jail.local:1", reason: "closing ']'"),
        BadConfiguration(
            name: "jail.local: a line that is not INI", file: "jail.local",
            text: "[demo]\nmaxretry = 2\nthis is not an option\n", location: "jail.local:3",
            reason: "neither 'name = value'"),
        BadConfiguration(
            name: "jail.local: an unknown include", file: "jail.local",
            text: "[INCLUDES]\nbefore = nosuch.conf\n[demo]\nmaxretry = 2\n", location: "jail.local:2",
            reason: "nosuch.conf does not exist"),
        BadConfiguration(
            name: "jail.d: an interpolation loop", file: "jail.d/loop.local",
            text: "[demo]\nbantime = %(a)s\na = %(b)s\nb = %(a)s\n", location: "jail.d/loop.local:",
            reason: "loop"),
        BadConfiguration(
            name: "jail.local: an undefined %(name)s", file: "jail.local",
            text: "[demo]\nbantime = %(nosuch)s\n", location: "jail.local:2", reason: "not defined"),
        BadConfiguration(
            name: "filter: a syntax error in its .local", file: "filter.d/demo.local",
            text: "[Definition\nfailregex = x <HOST>\n", location: "filter.d/demo.local:1", reason: "closing ']'"),
        BadConfiguration(
            name: "filter: an interpolation loop", file: "filter.d/demo.local",
            text: "[Definition]\nfailregex = %(x)s\nx = %(failregex)s\n", location: "filter.d/demo.local:",
            reason: "loop"),
        BadConfiguration(
            name: "filter: an unknown include", file: "filter.d/demo.local",
            text: "[INCLUDES]\nbefore = common-missing.conf\n", location: "filter.d/demo.local:2",
            reason: "common-missing.conf does not exist"),
        BadConfiguration(
            name: "action: a syntax error", file: "action.d/note.local",
            text: "[Definition]\nactionban = true\n  fine continuation\n= no name\n", location: "action.d/note.local:4",
            reason: "option without a name"),
        BadConfiguration(
            name: "jail.local: an option given twice in a section", file: "jail.local",
            text: "[demo]\nmaxretry = 2\nenabled = true\nMaxRetry = 4\n", location: "jail.local:4",
            reason: "already set at line 2"),
        BadConfiguration(
            name: "filter: a section given twice in one file", file: "filter.d/demo.local",
            text: "[Definition]\nmaxlines = 1\n[Definition]\nignoreregex =\n", location: "filter.d/demo.local:3",
            reason: "already appears at line 1"),
        BadConfiguration(
            name: "main configuration: a syntax error", file: "portcullis.local",
            text: "[Definition\nloglevel = DEBUG\n", location: "portcullis.local:1", reason: "closing ']'"),
    ]
}

@Suite("start refuses bad configuration", .blocking)
struct StartConfigurationTests {
    /// The error is on stderr with the file and line, the reason and what to do; nothing is left running.
    private func expectRefused(_ r: CLI.Result, _ bad: BadConfiguration, tree: URL) throws {
        #expect(r.status == 255, "status \(r.status), stderr: \(r.stderr)")
        #expect(r.stderr.hasPrefix("ERROR: "), "stderr: \(r.stderr)")
        #expect(r.stderr.contains(tree.path + "/" + bad.location), "stderr: \(r.stderr)")
        #expect(r.stderr.contains(bad.reason), "stderr: \(r.stderr)")
        if bad.file != "portcullis.local" {
            #expect(r.stderr.contains("fix the configuration"), "stderr: \(r.stderr)")
        }
        #expect(!r.stderr.contains("Fatal error"))
        let ping = try CLI.run(["-c", tree.path, "-s", tree.path + "/portcullis.sock", "ping"])
        #expect(ping.status != 0, "a server is running after a refused start")
        #expect(!FileManager.default.fileExists(atPath: tree.path + "/portcullis.pid"))
    }

    @Test("the good tree starts and stops (the control case)")
    func goodTreeStarts() throws {
        let tree = try startTree()
        let r = try CLI.run(["-c", tree.path, "start", "--no-firewall"])
        #expect(r.status == 0, "stderr: \(r.stderr)")
        let status = try CLI.run(["-c", tree.path, "status"])
        #expect(status.stdout.contains("Jail list:\tdemo"), "\(status.stdout) \(status.stderr)")
        #expect(try CLI.run(["-c", tree.path, "stop"]).status == 0)
    }

    @Test("foreground start: file:line, reason, exit 255", arguments: BadConfiguration.all)
    func foreground(_ bad: BadConfiguration) throws {
        let tree = try startTree()
        try CLI.write(bad.text, to: bad.file, in: tree)
        let r = try CLI.run(["-c", tree.path, "-f", "start", "--no-firewall"])
        try expectRefused(r, bad, tree: tree)
    }

    @Test("background start: the parent prints the server's error and exits 255", arguments: BadConfiguration.all)
    func background(_ bad: BadConfiguration) throws {
        let tree = try startTree()
        try CLI.write(bad.text, to: bad.file, in: tree)
        let r = try CLI.run(["-c", tree.path, "start", "--no-firewall"])
        try expectRefused(r, bad, tree: tree)
    }

    @Test("an interpolation loop no longer drops the jail silently: the start stops, naming the option and the chain")
    func loopLine() throws {
        let tree = try startTree()
        try CLI.write("[demo]\nenabled = true\nfindtime = %(a)s\na = %(b)s\nb = %(a)s\n", to: "jail.local", in: tree)
        let r = try CLI.run(["-c", tree.path, "-f", "start", "--no-firewall"])
        #expect(r.status == 255)
        // The option that loops is named with its line, and the chain of references.
        #expect(r.stderr.contains("findtime → a → b → a"), "stderr: \(r.stderr)")
        #expect(r.stderr.contains(tree.path + "/jail.local:3"), "stderr: \(r.stderr)")
    }

    @Test("jail-level problems fail2ban tolerates: warning, the other jails run, exit 0")
    func tolerated() throws {
        let tree = try startTree()
        try CLI.write(
            """
            [nofilter]
            enabled = true
            filter = nosuchfilter
            logpath = \(tree.path)/auth.log

            [noaction]
            enabled = true
            filter = demo
            action = nosuchaction
            logpath = \(tree.path)/auth.log

            [badport]
            enabled = true
            filter = demo
            banaction = nftables-multiport
            action = %(banaction)s[port="no-such-service-name"]
            logpath = \(tree.path)/auth.log

            [nolog]
            enabled = true
            filter = demo
            backend = polling
            logpath = \(tree.path)/not-yet-there.log

            """, to: "jail.local", in: tree)
        let r = try CLI.run(["-c", tree.path, "start", "--no-firewall"])
        #expect(r.status == 0, "stderr: \(r.stderr)")
        defer { _ = try? CLI.run(["-c", tree.path, "stop"]) }
        let status = try CLI.run(["-c", tree.path, "status"])
        #expect(status.stdout.contains("Number of jail:\t2"), "\(status.stdout)")
        #expect(status.stdout.contains("demo") && status.stdout.contains("nolog"), "\(status.stdout)")
        let log = (try? String(contentsOfFile: tree.path + "/portcullis.log", encoding: .utf8)) ?? ""
        for (jail, why) in [
            ("nofilter", "nosuchfilter"), ("noaction", "nosuchaction"), ("badport", "no-such-service-name"),
        ] {
            #expect(log.contains("Jail '\(jail)' cannot start: "), "log: \(log)")
            #expect(log.contains(why), "log: \(log)")
        }
    }

    @Test("SIGHUP with a broken jail.local keeps the running jails, their bans and counters")
    func sighupKeepsConfiguration() throws {
        let tree = try startTree()
        #expect(try CLI.run(["-c", tree.path, "start", "--no-firewall"]).status == 0)
        defer { _ = try? CLI.run(["-c", tree.path, "stop"]) }
        #expect(try CLI.run(["-c", tree.path, "set", "demo", "banip", "192.0.2.9"]).status == 0)
        try CLI.write("[demo\nmaxretry = 1\n", to: "jail.local", in: tree)
        let pidText = try String(contentsOfFile: tree.path + "/portcullis.pid", encoding: .utf8)
        let pid = try #require(pid_t(pidText.trimmingCharacters(in: .whitespacesAndNewlines)))
        #expect(kill(pid, SIGHUP) == 0)
        // Wait until the server logged the refusal (it reads the configuration on its own).
        var log = ""
        for _ in 0..<500 {
            log = (try? String(contentsOfFile: tree.path + "/portcullis.log", encoding: .utf8)) ?? ""
            if log.contains("Reload refused") { break }
            usleep(20_000)
        }
        #expect(log.contains("Configuration error: \(tree.path)/jail.local:1: section header without its closing ']'"))
        #expect(log.contains("Reload refused: the running configuration is kept"))
        let status = try CLI.run(["-c", tree.path, "status", "demo"])
        #expect(status.status == 0)
        #expect(status.stdout.contains("Banned IP list:\t192.0.2.9"), "\(status.stdout)")
        #expect(try CLI.run(["-c", tree.path, "get", "demo", "maxretry"]).stdout.contains("3"))
        // The socket reload answers with the error and a non-zero exit; fixing the file makes it go through.
        let reload = try CLI.run(["-c", tree.path, "reload"])
        #expect(reload.status == 255)
        #expect(reload.stderr.contains("\(tree.path)/jail.local:1"), "\(reload.stderr)")
        #expect(reload.stderr.contains("reload refused"), "\(reload.stderr)")
        try CLI.write("[demo]\nmaxretry = 1\n", to: "jail.local", in: tree)
        #expect(try CLI.run(["-c", tree.path, "reload"]).status == 0)
        #expect(try CLI.run(["-c", tree.path, "get", "demo", "maxretry"]).stdout.contains("1"))
    }
}
