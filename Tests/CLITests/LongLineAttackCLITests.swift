import Foundation
import PortcullisTestKit
import Testing

/// Issue 7 item 1 through `portcullis regex`: the same padded-user-name sweep as the daemon's test
/// (`LongLineAttackTests`), through the CLI, which reads files with the daemon's own `LineReader`. The forged
/// address is never printed, over-long lines are counted as skipped, and the neighbours are all found.
@Suite("Long lines never move the address (portcullis regex)", .blocking)
struct LongLineAttackCLITests {
    static let limit = 64 * 1024

    @Test(
        "every cut position around the limit, our sshd/dovecot/postfix and stock pam-generic",
        arguments: LongLineAttack.all.map(\.name))
    func sweep(_ name: String) throws {
        let attack = try #require(LongLineAttack.all.first { $0.name == name })
        let conf = attack.stock ? "/etc/fail2ban" : CLI.packageRoot.appendingPathComponent("config").path
        var lines: [String] = []
        var neighbours: [String] = []
        var longer = 0
        for (i, cut) in LongLineAttack.cuts(around: Self.limit).enumerated() {
            let n = LongLineAttack.neighbourAddress(i)
            neighbours.append(n)
            lines.append(attack.neighbourLine(n))
            let l = attack.line(cut: cut)
            if l.utf8.count > Self.limit { longer += 1 }
            lines.append(l)
        }
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("pcl-lines-cli-\(getpid())-\(name)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        let log = dir.appendingPathComponent("attack.log")
        try Data((lines.joined(separator: "\n") + "\n").utf8).write(to: log)

        let ids = try CLI.run(["regex", "--conf", conf, "--out", "ip", log.path, attack.filter])
        #expect(ids.status == 0, "\(ids.stderr)")
        let found = ids.stdout.split(separator: "\n").map(String.init)
        #expect(!found.contains(LongLineAttack.fake), "the forged address was printed")
        for n in neighbours { #expect(found.filter { $0 == n }.count == 1, "neighbour \(n)") }
        #expect(found.filter { !neighbours.contains($0) }.allSatisfy { $0 == LongLineAttack.real })

        let text = try CLI.run(["regex", "--conf", conf, "--print-no-missed", log.path, attack.filter])
        #expect(text.status == 0, "\(text.stderr)")
        #expect(
            text.stdout.contains("[\(longer) line(s) longer than \(Self.limit) bytes skipped, not matched]"),
            "\(text.stdout.suffix(400))")
        let json = try CLI.run(["regex", "--conf", conf, "--json", log.path, attack.filter])
        #expect(
            json.stdout.contains("\"tooLong\":\(longer)") || json.stdout.contains("\"tooLong\": \(longer)"),
            "\(json.stdout.prefix(300))")

        // A single over-long line given on the command line is skipped the same way (the filter's own limit).
        let one = try CLI.run(["regex", "--conf", conf, "--out", "ip", attack.line(cut: Self.limit), attack.filter])
        #expect(!one.stdout.contains(LongLineAttack.fake))
    }

    @Test("a line at PCRE2's match limit is reported apart, not as missed")
    func matchLimit() throws {
        let line = String(repeating: "word ", count: 40) + "x from 192.0.2.1"
        let r = try CLI.run(["regex", line, #"^(?:(?:\w+)+\s?)+ from <HOST> never$"#])
        #expect(r.status == 0, "\(r.stderr)")
        #expect(r.stdout.contains("[1 line(s) hit the regex match limit, not matched]"), "\(r.stdout)")
        #expect(r.stdout.contains("0 matched, 0 missed"), "\(r.stdout)")
    }
}
