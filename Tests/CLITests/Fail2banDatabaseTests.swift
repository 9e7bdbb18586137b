import Foundation
import PortcullisTestKit
import Testing

/// `portcullis -c /etc/fail2ban start` (the README's way to run on an existing fail2ban tree) reads fail2ban.conf's
/// `dbfile`, which on a machine fail2ban ran on is fail2ban's own database (/var/lib/fail2ban/fail2ban.sqlite3).
/// Portcullis switched that file to WAL mode and then refused to start ("no such column: address"). It must leave
/// fail2ban's file as it is and keep its bans in a database of its own beside it, saying so.
@Suite("dbfile naming fail2ban's database", .blocking)
struct Fail2banDatabaseTests {
    @Test("the start keeps fail2ban's database untouched and uses portcullis.sqlite3 beside it")
    func fail2banDatabaseIsLeftAlone() throws {
        let dir = try CLI.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        let f2bDB = dir.appendingPathComponent("fail2ban.sqlite3").path
        // fail2ban 1.0.2 (the installed package, the oracle) creates its database the way its server does.
        let make = Process()
        make.executableURL = URL(fileURLWithPath: "/usr/bin/python3")
        make.arguments = [
            "-c",
            "import sys; from fail2ban.server.database import Fail2BanDb; Fail2BanDb(sys.argv[1]).close()", f2bDB,
        ]
        make.standardError = FileHandle.nullDevice
        try make.run()
        make.waitUntilExit()
        try #require(make.terminationStatus == 0, "fail2ban's Fail2BanDb must run")
        let before = try Data(contentsOf: URL(fileURLWithPath: f2bDB))
        _ = try CLI.write(
            """
            [Definition]
            loglevel = INFO
            logtarget = \(dir.path)/portcullis.log
            socket = \(dir.path)/portcullis.sock
            pidfile = \(dir.path)/portcullis.pid
            dbfile = \(f2bDB)

            """, to: "fail2ban.conf", in: dir)
        _ = try CLI.write("[Definition]\nfailregex = ^x from <HOST>$\n", to: "filter.d/demo.conf", in: dir)
        _ = try CLI.write(
            "[demo]\nenabled = true\nfilter = demo\naction =\nlogpath = \(dir.path)/auth.log\n", to: "jail.conf",
            in: dir)
        _ = try CLI.write("", to: "auth.log", in: dir)

        let start = try CLI.run(["-c", dir.path, "start", "--no-firewall"])
        #expect(start.status == 0, "stderr: \(start.stderr)")
        let status = try CLI.run(["-c", dir.path, "status"])
        #expect(status.stdout.contains("Jail list:\tdemo"), "\(status.stdout) \(status.stderr)")
        _ = try CLI.run(["-c", dir.path, "stop"])
        // fail2ban's file: byte for byte as it was, no WAL files beside it.
        #expect(try Data(contentsOf: URL(fileURLWithPath: f2bDB)) == before)
        #expect(!FileManager.default.fileExists(atPath: f2bDB + "-wal"))
        #expect(FileManager.default.fileExists(atPath: dir.appendingPathComponent("portcullis.sqlite3").path))
        let log = (try? String(contentsOfFile: dir.path + "/portcullis.log", encoding: .utf8)) ?? ""
        #expect(log.contains("is fail2ban's database") && log.contains(dir.path + "/portcullis.sqlite3"), "\(log)")
    }
}
