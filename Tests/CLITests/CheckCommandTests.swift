import Foundation
import PortcullisTestKit
import Testing

/// A small tree that checks clean: one jail `demo` with its own filter (with a journalmatch), log file and native
/// banaction. `jailExtra` is appended to `[demo]`, `filterExtra` to the filter's `[Definition]`.
private func checkTree(jailExtra: String = "", filterExtra: String = "", mainExtra: String = "") throws -> URL {
    let dir = try CLI.temporaryDirectory()
    try CLI.write(
        """
        [Definition]
        logtarget = \(dir.path)/portcullis.log
        socket = \(dir.path)/portcullis.sock
        pidfile = \(dir.path)/portcullis.pid
        dbfile = \(dir.path)/portcullis.sqlite3
        dbpurgeage = 8d
        \(mainExtra)

        """, to: "portcullis.conf", in: dir)
    try CLI.write(
        """
        [Definition]
        failregex = ^\\S+ demo-auth\\[\\d+\\]: Login failed for \\S+ from <HOST>$
        journalmatch = _SYSTEMD_UNIT=demo.service
        \(filterExtra)

        """, to: "filter.d/demo.conf", in: dir)
    try CLI.write(
        """
        [DEFAULT]
        maxretry = 3
        findtime = 10m
        bantime = 1h
        banaction = nftables-multiport
        port = ssh
        action = %(banaction)s[port="%(port)s"]

        [demo]
        enabled = true
        filter = demo
        logpath = \(dir.path)/auth.log
        \(jailExtra)

        """, to: "jail.conf", in: dir)
    try CLI.write("", to: "auth.log", in: dir)
    return dir
}

/// The environment of the tests' runs: no SSH session unless a test gives one.
private let plainEnvironment: [String: String] = {
    var env = ProcessInfo.processInfo.environment
    env["SSH_CONNECTION"] = nil
    env["SSH_CLIENT"] = nil
    return env
}()

private func check(
    _ tree: URL, _ extra: [String] = [], environment: [String: String] = plainEnvironment
) throws
    -> CLI.Result
{
    try CLI.run(["check", "-c", tree.path] + extra, environment: environment)
}

/// The line of `jail.conf` (or another file of the tree) that holds `text`, as `FILE:LINE`.
private func place(_ tree: URL, _ file: String, _ text: String) throws -> String {
    let lines = try String(contentsOf: tree.appendingPathComponent(file), encoding: .utf8).split(
        separator: "\n", omittingEmptySubsequences: false)
    let index = try #require(lines.firstIndex { $0.contains(text) }, "\(text) not in \(file)")
    return "\(tree.path)/\(file):\(index + 1)"
}

/// Runs `portcullis check` in a new network namespace whose forwarding is set as asked (the sysctls are per
/// namespace), with Docker's `DOCKER` chain loaded there when `docker` is true: the host's own state is untouched.
private func checkInNamespace(
    _ tree: URL, ipv4Forward: Bool, docker: Bool = false, _ extra: [String] = []
) throws
    -> CLI.Result
{
    var script = "set -e; sysctl -q -w net.ipv4.ip_forward=\(ipv4Forward ? 1 : 0)\n"
    if docker { script += "nft add table ip filter; nft add chain ip filter DOCKER\n" }
    script += "exec \"$0\" \"$@\"\n"
    return try CLI.run(
        ["-n", "sh", "-c", script, CLI.binary(), "check", "-c", tree.path] + extra, executable: "/usr/bin/unshare",
        environment: plainEnvironment)
}

@Suite("portcullis check: forwarding, the host policy and [fleet]", .blocking)
struct CheckForwardingPolicyFleetTests {
    @Test("forwarding decides banforward = auto, and check says which jails ban forwarded connections")
    func forwardingNotes() throws {
        let tree = try checkTree()
        let routed = try checkInNamespace(tree, ipv4Forward: true)
        #expect(routed.status == 0, "\(routed.stdout) \(routed.stderr)")
        #expect(
            routed.stdout.contains(
                "note: forwarding: net.ipv4.ip_forward = 1, net.ipv6.conf.all.forwarding = 0, no Docker chains: "
                    + "bans refuse forwarded connections too in demo (banforward = auto: the host forwards)"),
            "\(routed.stdout)")
        let plain = try checkInNamespace(tree, ipv4Forward: false)
        #expect(
            plain.stdout.contains(
                "note: forwarding: net.ipv4.ip_forward = 0, net.ipv6.conf.all.forwarding = 0, no Docker chains: "
                    + "no jail bans forwarded connections (banforward = auto: the host does not forward)"),
            "\(plain.stdout)")
        let docker = try checkInNamespace(tree, ipv4Forward: false, docker: true)
        #expect(
            docker.stdout.contains("Docker's chains loaded: bans refuse forwarded connections too in demo"),
            "\(docker.stdout)")
    }

    @Test("banforward = no on a host that forwards: a warning at its line")
    func banforwardNoWhileForwarding() throws {
        let tree = try checkTree(jailExtra: "banforward = no")
        let r = try checkInNamespace(tree, ipv4Forward: true)
        #expect(r.status == 1, "\(r.stdout) \(r.stderr)")
        let at = try place(tree, "jail.conf", "banforward = no")
        #expect(
            r.stdout.contains("\(at): warning: jail 'demo': banforward = no while this host forwards"), "\(r.stdout)")
        // Not a problem where nothing is forwarded.
        let quiet = try checkInNamespace(tree, ipv4Forward: false)
        #expect(quiet.status == 0, "\(quiet.stdout)")
        #expect(
            quiet.stdout.contains("only connections to this host") || quiet.stdout.contains("no jail bans forwarded"))
    }

    @Test("the host policy: an error at its line, and what forward does, with Docker's chains a warning")
    func hostPolicy() throws {
        let tree = try checkTree()
        try CLI.write("[firewall]\nforward = sideways\n", to: "firewall.conf", in: tree)
        let bad = try checkInNamespace(tree, ipv4Forward: false)
        #expect(bad.status == 2, "\(bad.stdout)")
        #expect(
            bad.stdout.contains(
                "\(tree.path)/firewall.conf:2: error: forward must be auto, none, reject, drop or accept, not 'sideways'"
            ),
            "\(bad.stdout)")

        try CLI.write("[firewall]\nforward = auto\n\n[services]\nssh = ssh\n", to: "firewall.conf", in: tree)
        let routed = try checkInNamespace(tree, ipv4Forward: true)
        #expect(routed.status == 0, "\(routed.stdout)")
        #expect(
            routed.stdout.contains(
                "note: host policy: forward = auto: no forward chain: the host forwards, so Docker or the router decide"
            ),
            "\(routed.stdout)")
        let plain = try checkInNamespace(tree, ipv4Forward: false)
        #expect(
            plain.stdout.contains(
                "note: host policy: forward = auto: forwarded packets are rejected (the host does not forward)"),
            "\(plain.stdout)")

        try CLI.write("[firewall]\nforward = reject\n", to: "firewall.conf", in: tree)
        let docker = try checkInNamespace(tree, ipv4Forward: true, docker: true)
        #expect(docker.status == 1, "\(docker.stdout)")
        #expect(
            docker.stdout.contains(
                "\(tree.path)/firewall.conf:2: warning: the host policy's forward = reject refuses the traffic of Docker's containers"
            ),
            "\(docker.stdout)")
    }

    @Test("[fleet]: what a start refuses is an error at its line; a shared jail that is not enabled, a warning")
    func fleet() throws {
        let noName = try checkTree(mainExtra: "\n[fleet]\nurl = postgresql://portcullis@/portcullis\n")
        let r = try check(noName)
        #expect(r.status == 2, "\(r.stdout)")
        let at = try place(noName, "portcullis.conf", "url = postgresql")
        #expect(r.stdout.contains("\(at): error: [fleet] needs name = THIS-HOST"), "\(r.stdout)")

        let badNumber = try checkTree(
            mainExtra: "\n[fleet]\nurl = postgresql://p@/p\nname = web1\nescalate-after = many\n")
        let b = try check(badNumber)
        let at2 = try place(badNumber, "portcullis.conf", "escalate-after")
        #expect(b.stdout.contains("\(at2): error: escalate-after must be a whole number of hosts"), "\(b.stdout)")

        let unknownJail = try checkTree(
            mainExtra: "\n[fleet]\nurl = postgresql://p@/p\nname = web1\njails = demo, nosuch\n")
        let u = try check(unknownJail)
        #expect(u.status == 1, "\(u.stdout)")
        let at3 = try place(unknownJail, "portcullis.conf", "jails = demo")
        #expect(
            u.stdout.contains("\(at3): warning: [fleet] jails lists 'nosuch', which is not an enabled jail here"),
            "\(u.stdout)")
        #expect(!u.stdout.contains("'demo', which"))
    }
}

@Suite("portcullis check", .blocking)
struct CheckCommandTests {
    @Test("a clean tree: exit 0 and the summary")
    func clean() throws {
        let tree = try checkTree()
        let r = try check(tree)
        #expect(r.status == 0, "stdout: \(r.stdout) stderr: \(r.stderr)")
        // Notes (what the host's forwarding decides) are not findings.
        let lines = r.stdout.split(separator: "\n").filter { !$0.hasPrefix("note: ") }
        #expect(lines == ["check: 1 jail enabled, 1 resolve; 1 filter, 1 compile; 0 errors, 0 warnings"], "\(r.stdout)")
    }

    @Test("every regex that does not compile, each with its file and line; exit 2")
    func badRegexes() throws {
        let tree = try checkTree()
        // Two bad failregexes in the filter's .local, after a good one.
        try CLI.write(
            """
            [Definition]
            failregex = ^\\S+ demo-auth\\[\\d+\\]: Login failed for \\S+ from <HOST>$
                        ^bad [z-a] <HOST>$
                        ^worse (?P<x <HOST>$
            journalmatch = _SYSTEMD_UNIT=demo.service

            """, to: "filter.d/demo.local", in: tree)
        let r = try check(tree)
        #expect(r.status == 2, "stdout: \(r.stdout)")
        for (file, text) in [
            ("filter.d/demo.local", "^bad [z-a]"), ("filter.d/demo.local", "^worse (?P<x"),
        ] {
            let at = try place(tree, file, text)
            #expect(r.stdout.contains("\(at): error: jail 'demo': unable to compile"), "\(at) in \(r.stdout)")
        }
        #expect(r.stdout.contains("0 compile"), "\(r.stdout)")
        #expect(r.stdout.contains("1 jail enabled, 0 resolve"), "\(r.stdout)")
    }

    @Test("ignoreregexes that do not compile are all listed")
    func badIgnoreRegexes() throws {
        let tree = try checkTree(
            filterExtra: "ignoreregex = ^ok (unclosed$\n            ^fine$\n            ^also (unclosed$")
        let r = try check(tree)
        #expect(r.status == 2, "stdout: \(r.stdout)")
        let lines = r.stdout.split(separator: "\n").filter { $0.contains(": error: jail 'demo': unable to compile") }
        #expect(lines.count == 2, "\(r.stdout)")
        #expect(r.stdout.contains(try place(tree, "filter.d/demo.conf", "ignoreregex") + ": error:"), "\(r.stdout)")
    }

    @Test("a jail that does not resolve: its filter does not exist")
    func jailDoesNotResolve() throws {
        let tree = try checkTree(jailExtra: "")
        try CLI.write(
            "[other]\nenabled = true\nfilter = nosuch\nlogpath = \(tree.path)/auth.log\n", to: "jail.local", in: tree)
        let r = try check(tree)
        #expect(r.status == 2, "stdout: \(r.stdout)")
        let at = try place(tree, "jail.local", "filter = nosuch")
        #expect(r.stdout.contains("\(at): error: [other] filter 'nosuch'"), "\(r.stdout)")
        #expect(r.stdout.contains("not found"), "\(r.stdout)")
        #expect(r.stdout.contains("2 jails enabled, 1 resolve"), "\(r.stdout)")
    }

    @Test("an iptables banaction: a warning at its line, exit 1")
    func iptablesBanaction() throws {
        let tree = try checkTree(jailExtra: "banaction = iptables-multiport")
        let r = try check(tree)
        #expect(r.status == 1, "stdout: \(r.stdout)")
        let at = try place(tree, "jail.conf", "banaction = iptables-multiport")
        #expect(
            r.stdout.contains(
                "\(at): warning: jail 'demo': banaction iptables-multiport is served by Portcullis's nftables multiport rule"
            ),
            "\(r.stdout)")
        #expect(r.stdout.contains("write banaction = nftables-multiport"), "\(r.stdout)")
    }

    @Test("an unknown banaction without an action file: an error at its line")
    func unknownBanaction() throws {
        let tree = try checkTree(jailExtra: "banaction = shorewall")
        let r = try check(tree)
        #expect(r.status == 2, "stdout: \(r.stdout)")
        let at = try place(tree, "jail.conf", "banaction = shorewall")
        #expect(
            r.stdout.contains("\(at): error: [demo] banaction 'shorewall': action 'shorewall' not found"), "\(r.stdout)"
        )
        #expect(r.stdout.contains("write banaction = nftables-multiport"), "\(r.stdout)")
    }

    @Test("a banaction of another firewall with an action file runs as commands: a warning")
    func foreignBanactionWithFile() throws {
        let tree = try checkTree(jailExtra: "banaction = shorewall")
        try CLI.write(
            "[Definition]\nactionban = true <ip>\nactionunban = true <ip>\n", to: "action.d/shorewall.conf", in: tree)
        let r = try check(tree)
        #expect(r.status == 1, "stdout: \(r.stdout)")
        let at = try place(tree, "jail.conf", "banaction = shorewall")
        #expect(
            r.stdout.contains("\(at): warning: jail 'demo': banaction 'shorewall' is not a firewall Portcullis drives"),
            "\(r.stdout)")
    }

    @Test("every port name that does not resolve, at the port line")
    func unknownPorts() throws {
        let tree = try checkTree(jailExtra: "port = ssh,nosuchservice,http,alsonotaservice")
        let r = try check(tree)
        #expect(r.status == 2, "stdout: \(r.stdout)")
        let at = try place(tree, "jail.conf", "port = ssh,nosuchservice")
        for name in ["nosuchservice", "alsonotaservice"] {
            #expect(r.stdout.contains("\(at): error: jail 'demo': unknown port name '\(name)'"), "\(r.stdout)")
        }
    }

    @Test("a log file that does not exist, with the journal hint (backend auto and explicit)")
    func missingLog() throws {
        let tree = try checkTree()
        try FileManager.default.removeItem(atPath: tree.path + "/auth.log")
        var r = try check(tree)
        #expect(r.status == 1, "stdout: \(r.stdout)")
        let at = try place(tree, "jail.conf", "logpath =")
        #expect(
            r.stdout.contains(
                "\(at): warning: jail 'demo': log file \(tree.path)/auth.log does not exist; with backend = auto the jail reads the systemd journal instead"
            ),
            "\(r.stdout)")
        #expect(r.stdout.contains("write backend = systemd in [demo] of jail.local"), "\(r.stdout)")

        try CLI.write("[demo]\nbackend = polling\n", to: "jail.local", in: tree)
        r = try check(tree)
        #expect(r.status == 1, "stdout: \(r.stdout)")
        #expect(r.stdout.contains("does not exist; the jail reads nothing from it until it appears"), "\(r.stdout)")
        #expect(r.stdout.contains("backend = systemd"), "\(r.stdout)")

        // With the journal, the log path does not matter.
        try CLI.write("[demo]\nbackend = systemd\n", to: "jail.local", in: tree)
        r = try check(tree)
        #expect(r.status == 0, "stdout: \(r.stdout)")
    }

    @Test("the admin's SSH address: a warning unless ignoreip covers it")
    func sshSession() throws {
        let tree = try checkTree()
        var env = plainEnvironment
        env["SSH_CONNECTION"] = "192.0.2.44 50122 198.51.100.1 22"
        var r = try check(tree, environment: env)
        #expect(r.status == 1, "stdout: \(r.stdout)")
        let at = try place(tree, "jail.conf", "enabled = true")
        #expect(
            r.stdout.contains(
                "\(at): warning: your SSH session comes from 192.0.2.44, which ignoreip does not cover in jail demo"),
            "\(r.stdout)")
        #expect(r.stdout.contains("add 192.0.2.44 (or its network) to ignoreip"), "\(r.stdout)")

        // SSH_CLIENT alone is read too, and a covering network silences it.
        env["SSH_CONNECTION"] = nil
        env["SSH_CLIENT"] = "192.0.2.44 50122 22"
        r = try check(tree, environment: env)
        #expect(r.status == 1 && r.stdout.contains("192.0.2.44"), "stdout: \(r.stdout)")
        try CLI.write("[DEFAULT]\nignoreip = 127.0.0.1/8 ::1 192.0.2.0/24\n", to: "jail.local", in: tree)
        r = try check(tree, environment: env)
        #expect(r.status == 0, "stdout: \(r.stdout)")
    }

    @Test("maxretry that can never be reached within findtime, and bantime nonsense")
    func unreachableMaxretry() throws {
        let tree = try checkTree(jailExtra: "findtime = 0")
        var r = try check(tree)
        #expect(r.status == 2, "stdout: \(r.stdout)")
        var at = try place(tree, "jail.conf", "findtime = 0")
        #expect(
            r.stdout.contains("\(at): error: jail 'demo': maxretry = 3 can never be reached with findtime = 0"),
            "\(r.stdout)")

        try CLI.write("[demo]\nfindtime = 10m\nbantime = 0\n", to: "jail.local", in: tree)
        r = try check(tree)
        #expect(r.status == 2, "stdout: \(r.stdout)")
        at = try place(tree, "jail.local", "bantime = 0")
        #expect(r.stdout.contains("\(at): error: jail 'demo': bantime = 0 lifts every ban at once"), "\(r.stdout)")

        try CLI.write("[demo]\nfindtime = 10m\nbantime = 30d\n", to: "jail.local", in: tree)
        r = try check(tree)
        #expect(r.status == 1, "stdout: \(r.stdout)")
        at = try place(tree, "jail.local", "bantime = 30d")
        #expect(
            r.stdout.contains("\(at): warning: jail 'demo': bans of up to 30d outlive dbpurgeage = 8d"), "\(r.stdout)")
    }

    @Test("a syntax error stops everything: reported at its line")
    func syntaxError() throws {
        let tree = try checkTree()
        try CLI.write("[demo]\nmaxretry = 2\nthis is not an option\n", to: "jail.local", in: tree)
        let r = try check(tree)
        #expect(r.status == 2, "stdout: \(r.stdout)")
        #expect(r.stdout.contains("\(tree.path)/jail.local:3: error:"), "\(r.stdout)")
    }

    @Test("metrics: a bad value is an error at its line; metrics beyond loopback a warning")
    func metricsValue() throws {
        var tree = try checkTree(mainExtra: "metrics = 127.0.0.1:99999")
        var r = try check(tree)
        #expect(r.status == 2, "stdout: \(r.stdout)")
        #expect(
            r.stdout.contains(try place(tree, "portcullis.conf", "metrics =") + ": error: metrics = 127.0.0.1:99999"),
            "\(r.stdout)")
        tree = try checkTree(mainExtra: "metrics = 0.0.0.0:9191")
        r = try check(tree)
        #expect(r.status == 1, "stdout: \(r.stdout)")
        #expect(r.stdout.contains("metrics = 0.0.0.0:9191 serves /metrics to other hosts"), "\(r.stdout)")
    }

    @Test("-t is check, as fail2ban-client -t; --json has stable keys")
    func aliasAndJSON() throws {
        let tree = try checkTree(jailExtra: "banaction = iptables-multiport")
        let plain = try check(tree)
        let alias = try CLI.run(["-c", tree.path, "-t"], environment: plainEnvironment)
        #expect(alias.status == plain.status && alias.stdout == plain.stdout, "\(alias.stdout) vs \(plain.stdout)")

        let r = try check(tree, ["--json"])
        #expect(r.status == 1)
        let object = try #require(JSONSerialization.jsonObject(with: Data(r.stdout.utf8)) as? [String: Any])
        let findings = try #require(object["findings"] as? [[String: Any]])
        #expect(findings.count == 1)
        #expect(findings.first?["severity"] as? String == "warning")
        #expect(findings.first?["file"] as? String == tree.path + "/jail.conf")
        #expect(findings.first?["line"] as? Int != nil)
        #expect(findings.first?["jail"] as? String == "demo")
        let summary = try #require(object["summary"] as? [String: Any])
        #expect(summary["jails_enabled"] as? Int == 1 && summary["warnings"] as? Int == 1)
        #expect(object["status"] as? Int == 1)
    }

    @Test("start refuses what check calls fatal, and starts what check passes (they share the loader)")
    func agreesWithStart() throws {
        let tree = try checkTree()
        try CLI.write("[INCLUDES]\nbefore = missing.conf\n", to: "jail.local", in: tree)
        let c = try check(tree)
        #expect(c.status == 2)
        let s = try CLI.run(["-c", tree.path, "-f", "start", "--no-firewall"], environment: plainEnvironment)
        #expect(s.status != 0)
        let at = try place(tree, "jail.local", "before = missing.conf")
        #expect(c.stdout.contains(at + ": error:") && s.stderr.contains(at), "check: \(c.stdout) start: \(s.stderr)")
    }

    /// fail2ban 1.0.2's own /etc/fail2ban with every jail enabled (a copy, with a jail.local enabling each section).
    @Test("stock /etc/fail2ban with every jail enabled")
    func stockFail2ban() throws {
        let stock = "/etc/fail2ban"
        try #require(FileManager.default.fileExists(atPath: stock + "/jail.conf"), "fail2ban is not installed")
        let dir = try CLI.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        let tree = dir.appendingPathComponent("fail2ban")
        try FileManager.default.copyItem(atPath: stock, toPath: tree.path)
        let jailConf = try String(contentsOfFile: stock + "/jail.conf", encoding: .utf8)
        var sections: [String] = []
        for line in jailConf.split(separator: "\n") where line.hasPrefix("[") && line.hasSuffix("]") {
            let name = String(line.dropFirst().dropLast())
            if name != "INCLUDES" && name != "DEFAULT" { sections.append(name) }
        }
        try CLI.write(sections.map { "[\($0)]\nenabled = true\n" }.joined(separator: "\n"), to: "jail.local", in: tree)

        let r = try CLI.run(["check", "-c", tree.path, "--json"], environment: plainEnvironment)
        let object = try #require(JSONSerialization.jsonObject(with: Data(r.stdout.utf8)) as? [String: Any])
        let summary = try #require(object["summary"] as? [String: Int])
        let findings = try #require(object["findings"] as? [[String: Any]])
        let text = try CLI.run(["check", "-c", tree.path], environment: plainEnvironment)
        // The figures for the project's note.
        let kinds = Dictionary(grouping: findings) { f -> String in
            let m = f["message"] as? String ?? ""
            if m.contains("is served by Portcullis's nftables") { return "iptables banaction translated" }
            if m.contains("does not exist") || m.contains("matches no file") { return "log file missing" }
            if m.contains("outlive dbpurgeage") { return "bantime beyond dbpurgeage" }
            if m.contains("ignorecommand") { return "ignorecommand not run" }
            return "\(f["severity"] ?? ""): \(m)"
        }
        print(
            "check on stock fail2ban 1.0.2, every jail enabled: \(sections.count) sections; "
                + (text.stdout.split(separator: "\n").last.map(String.init) ?? ""))
        for (kind, list) in kinds.sorted(by: { $0.key < $1.key }) { print("  \(list.count) × \(kind)") }

        #expect(summary["jails_enabled"] == sections.count)
        // Every filter fail2ban ships for its jails compiles.
        #expect(summary["filters"] ?? 0 > 0 && summary["filters_compiled"] == summary["filters"], "\(text.stdout)")
        // Every jail that does not resolve is reported as an error with its file and line.
        let broken = (summary["jails_enabled"] ?? 0) - (summary["jails_resolved"] ?? 0)
        let errors = findings.filter { $0["severity"] as? String == "error" }
        #expect(errors.count >= broken)
        #expect(r.status == (errors.isEmpty ? 1 : 2))
        for f in findings {
            #expect(f["file"] as? String != nil && (f["line"] as? Int ?? 0) > 0, "no file:line: \(f)")
        }
    }
}
