import Foundation
import PortcullisTestKit
import Testing

@Suite("portcullis firewall (no kernel)", .blocking)
struct FirewallCommandTests {
    @Test("firewall --help matches the snapshot (the policy keys, man-page style)")
    func helpSnapshot() throws {
        let r = try CLI.run(["firewall", "--help"])
        #expect(r.status == 0)
        let snapshot = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
            .appendingPathComponent("Snapshots/firewall-help.txt")
        #expect(r.stdout == (try String(contentsOf: snapshot, encoding: .utf8)))
    }

    @Test("top-level help lists firewall and audit")
    func topLevel() throws {
        let r = try CLI.run(["--help"])
        #expect(r.stdout.contains("firewall") && r.stdout.contains("audit"))
    }

    @Test("a bad policy is one line with file:line and exit status 3, before any kernel access")
    func badPolicy() throws {
        let dir = try CLI.temporaryDirectory()
        _ = try CLI.write("[services]\nssh = ssh\nweb = htpp\n", to: "firewall.conf", in: dir)
        let r = try CLI.run(["firewall", "apply", "-c", dir.path, "--run-dir", dir.path + "/run"])
        #expect(r.status == 3)
        #expect(r.stderr.contains("\(dir.path)/firewall.conf:3: service 'web': unknown service name 'htpp'"))
        #expect(r.stderr.split(separator: "\n").count == 1)
    }

    @Test("import prints the policy on stdout and the report on stderr")
    func importDump() throws {
        let dir = try CLI.temporaryDirectory()
        let dump = try CLI.write(
            "*filter\n:INPUT DROP [0:0]\n-A INPUT -i lo -j ACCEPT\n-A INPUT -p tcp -m tcp --dport 22 -j ACCEPT\n"
                + "-A INPUT -p tcp -m tcp --dport 25 -m owner --uid-owner 0 -j ACCEPT\nCOMMIT\n",
            to: "rules.v4", in: dir)
        let r = try CLI.run(["firewall", "import", dump])
        #expect(r.status == 0)
        #expect(r.stdout.contains("[services]\nssh = ssh\n"))
        #expect(r.stdout.contains("#   line 5: -A INPUT -p tcp -m tcp --dport 25 -m owner --uid-owner 0 -j ACCEPT"))
        #expect(r.stderr.hasPrefix("import: 3 rules carried over, 1 not carried over"))
        #expect(r.stderr.contains("the input has IPv4 rules only"))
    }
}
