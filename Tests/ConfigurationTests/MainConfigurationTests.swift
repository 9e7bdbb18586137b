import Foundation
import PortcullisTestKit
import Testing

@testable import Configuration

@Suite("Main configuration", .blocking)
struct MainConfigurationTests {
    func compare(_ root: String) throws -> [String] {
        let data = try Oracle.run(mainOracleScript, [root])
        let expected = try JSONDecoder().decode([String: String].self, from: data)
        let main = try ConfigTree(root: root).loadMain()
        let ours: [String: String] = [
            "loglevel": main.loglevel, "logtarget": main.logtarget, "syslogsocket": main.syslogsocket,
            "socket": main.socket, "pidfile": main.pidfile, "allowipv6": main.allowipv6, "dbfile": main.dbfile,
            "dbmaxmatches": String(main.dbmaxmatches), "dbpurgeage": main.dbpurgeageText,
        ]
        var diffs: [String] = []
        for (k, v) in expected where ours[k] != v { diffs.append("\(k): ours \(ours[k] ?? "nil") | f2b \(v)") }
        print("Main oracle (\(root)): \(expected.count - diffs.count)/\(expected.count) options agree with fail2ban")
        return diffs
    }

    @Test("the installed fail2ban.conf resolves as fail2ban resolves it")
    func installed() throws {
        #expect(try compare("/etc/fail2ban") == [])
    }

    @Test(".local and .d/ overrides, DEFAULT and interpolation, as fail2ban")
    func overrides() throws {
        let t = try TempTree()
        defer { t.remove() }
        try t.write("fail2ban.conf", try String(contentsOfFile: "/etc/fail2ban/fail2ban.conf", encoding: .utf8))
        try t.write("fail2ban.d/10-db.conf", "[Definition]\ndbpurgeage = 2d\ndbmaxmatches = 3\n")
        try t.write(
            "fail2ban.local", "[DEFAULT]\nrun = /run/pcl\n[Definition]\nsocket = %(run)s/sock\nloglevel = DEBUG\n")
        try t.write("fail2ban.d/20-log.local", "[Definition]\nlogtarget = SYSLOG\nallowipv6 = no\n")
        #expect(try compare(t.root) == [])
        let main = try t.tree.loadMain()
        #expect(main.socket == "/run/pcl/sock")
        #expect(main.dbpurgeage.seconds == 2 * 86400)
        #expect(main.file == t.root + "/fail2ban.conf")
    }

    @Test("portcullis.conf is preferred over fail2ban.conf; defaults fill the rest")
    func portcullisConf() throws {
        let t = try TempTree()
        defer { t.remove() }
        try t.write("fail2ban.conf", "[Definition]\nloglevel = ERROR\n")
        try t.write("portcullis.conf", "[Definition]\nloglevel = NOTICE\nsocket = /run/portcullis.sock\n")
        let main = try t.tree.loadMain()
        #expect(main.loglevel == "NOTICE")
        #expect(main.socket == "/run/portcullis.sock")
        #expect(main.dbfile == "/var/lib/fail2ban/fail2ban.sqlite3")
        #expect(main.file == t.root + "/portcullis.conf")
    }

    @Test("a bad dbpurgeage names file and line")
    func badPurgeAge() throws {
        let t = try TempTree()
        defer { t.remove() }
        try t.write("fail2ban.conf", "[Definition]\n\ndbpurgeage = soon\n")
        do {
            _ = try t.tree.loadMain()
            Issue.record("expected an error")
        } catch {
            #expect(error.code == .badValue)
            #expect(error.location == SourceLocation(file: t.root + "/fail2ban.conf", line: 3))
        }
    }

    @Test("no main configuration at all → notFound")
    func missing() throws {
        let t = try TempTree()
        defer { t.remove() }
        #expect { try t.tree.loadMain() } throws: { ($0 as? ConfigError)?.code == .notFound }
    }
}
