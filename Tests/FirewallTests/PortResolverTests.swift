import Firewall
import Foundation
import Testing

@Suite struct PortResolverTests {
    let resolver = PortResolver(
        servicesText: """
            # comment line
            ssh\t\t22/tcp\t\t\t\t# SSH Remote Login Protocol
            smtp\t\t25/tcp\t\tmail
            domain\t\t53/tcp
            domain\t\t53/udp
            pop3\t\t110/tcp\t\tpop-3
            imap2\t\t143/tcp\t\timap
            submissions\t465/tcp\t\tssmtp smtps
            submission\t587/tcp
            imaps\t\t993/tcp
            pop3s\t\t995/tcp
            ftp-data\t20/tcp
            syslog\t\t514/udp
            broken line
            """, source: "test-services")

    @Test func mailPortsWithNamesAliasesAndNumbers() throws {
        let spec = try resolver.resolve("smtp,465,submission,imap,imaps,pop3,pop3s", jail: "postfix")
        #expect(spec == .ports([25, 110, 143, 465, 587, 993, 995].map { PortRange($0) }))
    }

    @Test func rangesBothSpellingsAndNamedEnds() throws {
        #expect(try resolver.resolve("1000:2000", jail: "j") == .ports([PortRange(1000, 2000)]))
        #expect(try resolver.resolve("1000-2000", jail: "j") == .ports([PortRange(1000, 2000)]))
        #expect(try resolver.resolve("ssh:smtp", jail: "j") == .ports([PortRange(22, 25)]))
        #expect(try resolver.resolve("0:65535", jail: "j") == .ports([PortRange(0, 65535)]))
    }

    @Test func hyphenatedServiceNamesAreNamesNotRanges() throws {
        #expect(try resolver.resolve("ftp-data", jail: "j") == .ports([PortRange(20)]))
        #expect(try resolver.resolve("pop-3", jail: "j") == .ports([PortRange(110)]))
    }

    @Test func allAndUDPOnlyNames() throws {
        #expect(try resolver.resolve("all", jail: "j") == .all)
        #expect(try resolver.resolve("ssh, all", jail: "j") == .all)
        #expect(try resolver.resolve("syslog", jail: "j") == .ports([PortRange(514)]))
    }

    @Test func overlappingAndAdjacentRangesAreMerged() throws {
        #expect(try resolver.resolve("25,20:30,31,80,80", jail: "j") == .ports([PortRange(20, 31), PortRange(80)]))
    }

    @Test func unknownNameNamesTheJailAndTheName() {
        do {
            _ = try resolver.resolve("ssh,nosuchservice", jail: "postfix")
            Issue.record("expected an error")
        } catch {
            #expect(error.code == .unknownPort)
            #expect(error.jail == "postfix")
            #expect(error.message.contains("'postfix'"))
            #expect(error.message.contains("'nosuchservice'"))
            #expect(error.message.contains("test-services"))
        }
    }

    @Test func malformedValues() {
        for (value, code) in [
            ("70000", FirewallError.Code.invalidPort), ("2000:1000", .invalidPort), ("1000:", .invalidPort),
            ("", .invalidPort), ("ssh:nosuch", .unknownPort), ("1:2:3", .invalidPort),
        ] {
            #expect(throws: FirewallError.self, "\(value)") { try resolver.resolve(value, jail: "j") }
            do { _ = try resolver.resolve(value, jail: "j") } catch { #expect(error.code == code, "\(value)") }
        }
    }

    @Test func systemServicesFile() throws {
        try #require(FileManager.default.fileExists(atPath: "/etc/services"), "netbase provides /etc/services")
        let system = try PortResolver()
        #expect(
            try system.resolve("smtp,465,submission,imap,imaps,pop3,pop3s", jail: "postfix")
                == .ports([25, 110, 143, 465, 587, 993, 995].map { PortRange($0) }))
        #expect(try system.resolve("ssh", jail: "sshd") == .ports([PortRange(22)]))
        #expect(try system.resolve("http,https", jail: "nginx") == .ports([PortRange(80), PortRange(443)]))
    }

    @Test func missingServicesFileIsAClearError() {
        do {
            _ = try PortResolver(servicesPath: "/nonexistent/services")
            Issue.record("expected an error")
        } catch {
            #expect(error.code == .servicesFile)
            #expect(error.message.contains("/nonexistent/services"))
        }
    }
}
