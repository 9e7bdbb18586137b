import Configuration
import Core
import Filter
import Firewall
import Foundation
import Testing

/// The repository's `config/` (the tree installed as /etc/portcullis) and `samples/logs/`.
enum Repo {
    static let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent().path
    static let config = root + "/config"
    static let samples = root + "/samples/logs"
}

/// A copy of `config/` with a `jail.d/*.local` of our own, removed when the value goes away.
final class ConfigCopy {
    let root: String

    init(local: String) throws {
        root = NSTemporaryDirectory() + "pcl-defaultconfig-\(UUID().uuidString)"
        try FileManager.default.copyItem(atPath: Repo.config, toPath: root)
        try local.write(toFile: root + "/jail.d/test.local", atomically: true, encoding: .utf8)
    }

    deinit { try? FileManager.default.removeItem(atPath: root) }
}

@Suite struct DefaultConfigTests {
    @Test func theDefaultTreeLoadsWithSshdOnly() throws {
        let result = ConfigTree(root: Repo.config).loadJails()
        #expect(result.errors.isEmpty, "\(result.errors)")
        #expect(result.enabled.map(\.name) == ["sshd"])
        let sshd = try #require(result.jails.first { $0.name == "sshd" })
        #expect(sshd.backend == "systemd")
        #expect(sshd.maxretry == 5)
        #expect(sshd.findtime.seconds == 600)
        #expect(sshd.bantime.seconds == 600)
        #expect(sshd.ignoreip == ["127.0.0.0/8", "::1"])
        #expect(sshd.filter?.journalmatch.isEmpty == false)
    }

    /// The seed scenario: postfix[mode=auth] on every mail port, and recidive, turned on by an admin.
    @Test func theSeedScenarioResolves() throws {
        let copy = try ConfigCopy(
            local: """
                [postfix-sasl]
                enabled = true
                [dovecot]
                enabled = true
                [recidive]
                enabled = true
                """)
        let result = ConfigTree(root: copy.root).loadJails()
        #expect(result.errors.isEmpty, "\(result.errors)")
        #expect(Set(result.enabled.map(\.name)) == ["sshd", "postfix-sasl", "dovecot", "recidive"])

        let sasl = try #require(result.jails.first { $0.name == "postfix-sasl" })
        #expect(sasl.filterSpec == "postfix[mode=auth]")
        #expect(sasl.logpath == ["/var/log/mail.log"])
        let resolver = try PortResolver()
        let ports = try resolver.resolve(try #require(sasl.port), jail: sasl.name)
        #expect(ports == .ports([25, 110, 143, 465, 587, 993, 995].map { PortRange($0) }))
        #expect(try BanActionMapping(banaction: try #require(sasl.banaction), jail: sasl.name).kind == .multiport)

        let recidive = try #require(result.jails.first { $0.name == "recidive" })
        #expect(recidive.bantime.seconds == 7 * 86400)
        #expect(recidive.findtime.seconds == 86400)
        #expect(recidive.logpath == ["/var/log/portcullis.log"])
        #expect(try BanActionMapping(banaction: try #require(recidive.banaction), jail: "recidive").kind == .allports)

        let dovecot = try #require(result.jails.first { $0.name == "dovecot" })
        let dovecotPorts = try resolver.resolve(try #require(dovecot.port), jail: "dovecot")
        #expect(dovecotPorts == .ports([110, 143, 465, 587, 993, 995, 4190].map { PortRange($0) }))
    }

    @Test(arguments: [
        "sshd", "sshd[mode=ddos]", "sshd[mode=extra]", "sshd[mode=aggressive]",
        "dovecot", "dovecot[mode=verbose]", "dovecot[mode=aggressive]", "dovecot[mode=verbose-aggressive]",
        "postfix", "postfix[mode=auth]", "postfix[mode=rbl]", "postfix[mode=more]", "postfix[mode=aggressive]",
        "recidive",
    ])
    func everyFilterModeCompiles(spec: String) throws {
        let definition = try ConfigTree(root: Repo.config).loadFilter(spec)
        #expect(!definition.failregex.isEmpty)
        _ = try CompiledFilter(definition)
    }
}

/// Lines real daemons printed for clients whose user names carry another address: Portcullis must take the
/// attacker's (192.0.2.7 / 2001:db8:bad::7), never the smuggled legitimate client's (198.51.100.8).
@Suite struct InjectionTests {
    static let cases: [(String, String, String)] = [
        (
            "sshd",
            "2026-11-30T00:51:36.994042+00:00 mail sshd[395]: Failed password for invalid user root from 198.51.100.8 port 22 from 192.0.2.7 port 34358 ssh2",
            "192.0.2.7"
        ),
        (
            "sshd",
            "Nov 30 00:51:43 mail sshd[830]: error: PAM: Authentication failure for illegal user root from 198.51.100.8 port 22 ssh2 from 192.0.2.7",
            "192.0.2.7"
        ),
        (
            "sshd",
            "Nov 30 00:53:09 mail sshd[6779]: Failed password for invalid user invalid user x from 198.51.100.8 port 22 from 2001:db8:bad::7 port 35636 ssh2",
            "2001:db8:bad::7"
        ),
        (
            "dovecot",
            "Nov 30 01:00:44 mail dovecot: imap-login: Disconnected: Aborted login by logging out (auth failed, 1 attempts in 4 secs): user=<admin>, rip=198.51.100.8>, method=PLAIN, rip=192.0.2.7, lip=203.0.113.25, TLS, session=<i/VB8HNh2tjAAAIH>",
            "192.0.2.7"
        ),
        (
            "dovecot[mode=verbose]",
            "Nov 30 01:01:11 mail dovecot: auth: plain(?,192.0.2.7,<Nakz8XNhJsTAAAIH>): Username character disallowed by auth_username_chars: 0x2c (username: y,198.51.100.8,<z>)",
            "192.0.2.7"
        ),
        (
            "postfix[mode=auth]",
            "Nov 30 01:06:12 mail postfix/submission/smtpd[8663]: warning: unknown[192.0.2.7]: SASL LOGIN authentication failed: (reason unavailable), sasl_username=a]: SASL PLAIN authentication failed: [198.51.100.8",
            "192.0.2.7"
        ),
    ]

    @Test(arguments: cases.indices)
    func attackerAddressIsTaken(index: Int) throws {
        let (spec, line, address) = Self.cases[index]
        let processor = try CompiledFilter(try ConfigTree(root: Repo.config).loadFilter(spec)).makeProcessor()
        #expect(processor.process(line) == .matched, "\(line)")
        #expect(processor.failures.map(\.address) == [IPAddress(address)], "\(line)")
    }
}
