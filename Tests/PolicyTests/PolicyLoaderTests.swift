import Configuration
import Core
import Firewall
import Policy
import Testing

@Suite struct PolicyLoaderTests {
    @Test func readsEverySection() throws {
        let p = try loadPolicy(
            """
            [firewall]
            default = drop
            ping = no
            log = 3/minute
            logprefix = "refused: "
            forward = reject
            [groups]
            admin = 192.0.2.0/24, 2001:db8:1::/48
            [services]
            ssh = ssh
            web = http, https
            mail = smtp, 465, submission, pop3s, imaps
            dns = udp/53, 53/tcp
            munin = 4949 from admin
            x11 = 6000-6010 from 198.51.100.7, admin
            [antispoof]
            rpfilter = no
            bogons = 10.0.0.0/8, fc00::/7
            bogons.eth1 = 203.0.113.0/24
            [portscan]
            rate = 20/second
            burst = 5
            bantime = 2m
            exempt = admin
            """)
        #expect(p.defaultAction == .drop)
        #expect(!p.ping)
        #expect(p.log == Rate(count: 3, unit: .minute))
        #expect(p.logPrefix == "refused: ")
        #expect(p.forward == .reject)
        #expect(p.groups.map(\.name) == ["admin"])
        #expect(p.groups[0].networks.map(\.description) == ["192.0.2.0/24", "2001:db8:1::/48"])
        #expect(p.services.map(\.name) == ["ssh", "web", "mail", "dns", "munin", "x11"])
        #expect(p.services[1].ports == [ServicePorts(.tcp, [PortRange(80), PortRange(443)])])
        #expect(
            p.services[2].ports == [
                ServicePorts(.tcp, [PortRange(25), PortRange(465), PortRange(587), PortRange(993), PortRange(995)])
            ])
        #expect(p.services[3].ports == [ServicePorts(.tcp, [PortRange(53)]), ServicePorts(.udp, [PortRange(53)])])
        #expect(p.services[4].sources == [.group("admin")])
        #expect(p.services[5].sources == [.network(Subnet("198.51.100.7")!), .group("admin")])
        #expect(p.services[5].ports == [ServicePorts(.tcp, [PortRange(6000, 6010)])])
        #expect(!p.antispoof.reversePath)
        #expect(p.antispoof.bogons.count == 2)
        #expect(p.antispoof.bogons[1].interface == "eth1")
        #expect(p.portscan?.rate == Rate(count: 20, unit: .second))
        #expect(p.portscan?.burst == 5)
        #expect(p.portscan?.blockSeconds == 120)
        #expect(p.portscan?.exempt == ["admin"])
    }

    @Test func localOverridesAndRemoves() throws {
        let p = try loadPolicy(
            "[services]\nssh = ssh\nweb = http\n[portscan]\nenabled = yes\n",
            local: "[services]\nweb =\nimap = imaps\n[portscan]\nenabled = no\n")
        #expect(p.services.map(\.name) == ["ssh", "imap"])
        #expect(p.portscan == nil)
    }

    @Test func firewallDirectoryFilesApply() throws {
        let tree = PolicyTree([
            "firewall.conf": "[services]\nssh = ssh\n",
            "firewall.d/mail.conf": "[services]\nmail = smtp\n",
            "firewall.d/mail.local": "[services]\nmail = smtp, submission\n",
        ])
        defer { tree.remove() }
        let p = try tree.load()
        #expect(p.services.map(\.name) == ["ssh", "mail"])
        #expect(p.services[1].ports == [ServicePorts(.tcp, [PortRange(25), PortRange(587)])])
    }

    @Test func unknownServiceNameNamesFileAndLine() {
        #expect(
            policyError("[services]\nssh = ssh\nweb = htpp\n")
                == "DIR/firewall.conf:3: service 'web': unknown service name 'htpp' (not in test-services) "
                + "(use a number, a range such as 6000-6010, or a name from test-services)")
    }

    @Test func malformedNetworkNamesFileAndLine() {
        #expect(
            policyError("[groups]\nadmin = 192.0.2.0/33\n")
                == "DIR/firewall.conf:2: group 'admin': '192.0.2.0/33' is not an address or network "
                + "(write e.g. 192.0.2.0/24 or 2001:db8::/32)")
        #expect(
            policyError("[services]\nx = 22 from 192.0.2.300\n")?.hasPrefix("DIR/firewall.conf:2: service 'x'") == true)
        #expect(
            policyError("[antispoof]\nbogons = 10.0.0.0/8, banana\n")?.hasPrefix("DIR/firewall.conf:2: bogon list")
                == true)
    }

    @Test func undefinedGroupNamesFileAndLine() {
        #expect(
            policyError("[groups]\nops = 192.0.2.0/24\n[services]\nmunin = 4949 from admin\n")
                == "DIR/firewall.conf:4: address group 'admin' is used but not defined "
                + "(define it in [groups] (defined: ops))")
        #expect(
            policyError("[services]\nssh = ssh\n", local: "[portscan]\nexempt = admin\n")
                == "DIR/firewall.local:2: address group 'admin' is used but not defined "
                + "(define it in [groups], e.g. admin = 192.0.2.0/24)")
    }

    @Test func unknownOptionsAndSectionsAreErrors() {
        #expect(
            policyError("[firewall]\ndefualt = drop\n")?.hasPrefix(
                "DIR/firewall.conf:2: unknown option 'defualt' in [firewall]") == true)
        #expect(
            policyError("[firewall]\ndefault = deny\n")
                == "DIR/firewall.conf:2: default must be reject or drop, not 'deny'")
        #expect(
            policyError("[service]\nssh = ssh\n")?.hasPrefix("DIR/firewall.conf:2: unknown section [service]") == true)
        #expect(
            policyError("[portscan]\nrate = fast\n") == "DIR/firewall.conf:2: rate must look like 10/second, not 'fast'"
        )
        #expect(
            policyError("[services]\nall = 22\n")?.hasPrefix("DIR/firewall.conf:2: 'all' cannot name a service") == true
        )
        #expect(
            policyError("[services]\nweb = all\n")?.hasPrefix(
                "DIR/firewall.conf:2: service 'web': 'all' would open every port") == true)
        #expect(
            policyError("[services]\nweb = 70000\n")?.hasPrefix(
                "DIR/firewall.conf:2: service 'web': malformed port '70000'") == true)
        #expect(
            policyError("[services]\nweb = icmp/80\n")?.hasPrefix(
                "DIR/firewall.conf:2: service 'web': unknown protocol in 'icmp/80'") == true)
        #expect(policyError("services]\n")?.hasPrefix("DIR/firewall.conf:1:") == true)
    }

    @Test func sshSessionCheck() throws {
        let p = try loadPolicy(
            "[groups]\nadmin = 192.0.2.0/24\n[services]\nweb = http\nssh = ssh from admin\n")
        try p.checkSSHSession("192.0.2.2 50000 192.0.2.1 22")
        #expect(throws: ConfigError.self) { try p.checkSSHSession("198.51.100.9 50000 192.0.2.1 22") }
        #expect(throws: ConfigError.self) { try p.checkSSHSession("192.0.2.2 50000 192.0.2.1 2222") }
        do {
            try p.checkSSHSession("198.51.100.9 50000 192.0.2.1 22")
        } catch {
            #expect(error.location?.line == 4)
            #expect(error.message.contains("allows no new SSH connection from 198.51.100.9 to port 22"))
        }
        let noEstablished = try loadPolicy("[firewall]\nestablished = no\n[services]\nssh = ssh\n")
        #expect(throws: ConfigError.self) { try noEstablished.checkSSHSession("192.0.2.2 50000 192.0.2.1 22") }
        let bogon = try loadPolicy("[services]\nssh = ssh\n[antispoof]\nbogons = 192.0.2.0/24\n")
        #expect(throws: ConfigError.self) { try bogon.checkSSHSession("192.0.2.2 50000 192.0.2.1 22") }
        try bogon.checkSSHSession("2001:db8::2 50000 2001:db8::1 22")
    }

    @Test func reachPerFamilyAndGroup() throws {
        let p = try loadPolicy(
            "[groups]\nadmin = 192.0.2.0/24\n[services]\nweb = http\nmunin = 4949 from admin\ndns = udp/53\n")
        #expect(p.reach(proto: .tcp, port: 80, family: .v6) == .anywhere)
        #expect(p.reach(proto: .tcp, port: 4949, family: .v4) == .only(["admin"]))
        #expect(p.reach(proto: .tcp, port: 4949, family: .v6) == .closed)
        #expect(p.reach(proto: .udp, port: 53, family: .v4) == .anywhere)
        #expect(p.reach(proto: .tcp, port: 53, family: .v4) == .closed)
    }

    @Test func shippedDefaultLoads() throws {
        let p = try PolicyLoader.load(tree: ConfigTree(root: "config"), services: testServices)
        #expect(p.services.map(\.name) == ["ssh"])
        #expect(p.defaultAction == .reject)
        #expect(p.portscan != nil)
        #expect(p.logPrefix == "portcullis-policy refused: ")
        try p.checkSSHSession("203.0.113.5 40000 192.0.2.1 22")
    }
}
