import Firewall
import Testing

@Suite struct BanActionTests {
    @Test(arguments: [
        ("nftables", BanActionMapping.Kind.multiport, false),
        ("nftables-multiport", .multiport, false),
        ("nftables-allports", .allports, false),
        ("nftables[type=allports]", .allports, false),
        ("iptables", .multiport, true),
        ("iptables-multiport", .multiport, true),
        ("iptables-multiport-log", .multiport, true),
        ("iptables-new", .multiport, true),
        ("iptables-allports", .allports, true),
        ("iptables-ipset-proto6", .multiport, true),
        ("iptables-ipset-proto6-allports", .allports, true),
        ("iptables-ipset[type=allports]", .allports, true),
        ("iptables[type=multiport]", .multiport, true),
        ("firewallcmd-ipset[actiontype=<allports>]", .allports, true),
        ("firewallcmd-allports", .allports, true),
        ("  iptables-multiport[name=SSH, port=\"ssh\", protocol=tcp]  ", .multiport, true),
        ("ip6tables-multiport", .multiport, true),
        ("ip6tables-allports", .allports, true),
        ("iptables-custom-local", .multiport, true),
        ("portcullis", .multiport, false),
        ("portcullis-allports", .allports, false),
    ])
    func mapping(banaction: String, kind: BanActionMapping.Kind, warns: Bool) throws {
        let m = try BanActionMapping(banaction: banaction, jail: "sshd")
        #expect(m.kind == kind)
        #expect((m.warning != nil) == warns)
        if let warning = m.warning {
            #expect(warning.contains("'sshd'"))
            #expect(warning.contains(m.name))
        }
    }

    @Test func unsupportedActionNamesJailAndAction() {
        do {
            _ = try BanActionMapping(banaction: "shorewall", jail: "apache-auth")
            Issue.record("expected an error")
        } catch {
            #expect(error.code == .unsupportedBanAction)
        }
        do {
            _ = try BanActionMapping(banaction: "iptablesque", jail: "x")
            Issue.record("expected an error")
        } catch {
            #expect(error.code == .unsupportedBanAction)
        }
        do {
            _ = try BanActionMapping(banaction: "shorewall", jail: "apache-auth")
            Issue.record("expected an error")
        } catch {
            #expect(error.code == .unsupportedBanAction)
            #expect(error.message.contains("'apache-auth'"))
            #expect(error.message.contains("'shorewall'"))
        }
    }

    @Test func jailFromSettings() throws {
        let resolver = PortResolver(servicesText: "ssh 22/tcp\nhttp 80/tcp www\nhttps 443/tcp\n")
        let (rule, warning) = try JailFirewall.fromSettings(
            jail: "nginx", banaction: "iptables-multiport", port: "http,https", protocol: "tcp", blocktype: "DROP",
            resolver: resolver)
        #expect(
            rule
                == JailFirewall(
                    name: "nginx", ports: .ports([PortRange(80), PortRange(443)]), protocols: .tcp, blockType: .drop))
        #expect(warning != nil)
        let (all, none) = try JailFirewall.fromSettings(
            jail: "recidive", banaction: "nftables-allports", port: "nosuchname", protocol: "all",
            blocktype: "REJECT --reject-with icmp-port-unreachable", resolver: resolver)
        #expect(all == JailFirewall(name: "recidive", ports: .all, protocols: .all, blockType: .reject))
        #expect(none == nil)
        #expect(throws: FirewallError.self) {
            try JailFirewall.fromSettings(jail: "bad name", port: "ssh", resolver: resolver)
        }
        #expect(throws: FirewallError.self) {
            try JailFirewall.fromSettings(jail: "x", port: "ssh", protocol: "icmp", resolver: resolver)
        }
        #expect(throws: FirewallError.self) {
            try JailFirewall.fromSettings(jail: "x", port: "ssh", blocktype: "tarpit", resolver: resolver)
        }
    }

    @Test func protocolParsing() throws {
        #expect(try ProtocolSelection(parsing: "tcp,udp", jail: "j") == ProtocolSelection(protocols: [.udp, .tcp]))
        #expect(try ProtocolSelection(parsing: "ALL", jail: "j").isAll)
        #expect(try ProtocolSelection(parsing: "", jail: "j") == .tcp)
    }
}
