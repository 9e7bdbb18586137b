import Core
import Firewall
import Policy
import Testing

@Suite struct PolicyRendererTests {
    static let seed = """
        [firewall]
        log = 5/minute
        forward = reject
        [groups]
        admin = 192.0.2.0/24, 2001:db8:1::/48
        [services]
        ssh = ssh
        web = http, https
        munin = 4949 from admin
        dns = udp/53
        lab = 8080 from 198.51.100.0/24, 203.0.113.0/24
        [antispoof]
        bogons = 10.0.0.0/8, fc00::/7
        bogons.eth1 = 203.0.113.0/24
        [portscan]
        exempt = admin
        """

    @Test func exactRuleset() throws {
        let p = try loadPolicy(Self.seed)
        let text = PolicyRenderer().ruleset(p, forwarding: false)
        let expected = """
            table inet portcullis-policy {
            \tset group-admin-v4 {
            \t\ttype ipv4_addr
            \t\tflags interval
            \t\telements = { 192.0.2.0/24 }
            \t}

            \tset group-admin-v6 {
            \t\ttype ipv6_addr
            \t\tflags interval
            \t\telements = { 2001:db8:1::/48 }
            \t}

            \tset bogons-v4 {
            \t\ttype ipv4_addr
            \t\tflags interval
            \t\telements = { 10.0.0.0/8 }
            \t}

            \tset bogons-v6 {
            \t\ttype ipv6_addr
            \t\tflags interval
            \t\telements = { fc00::/7 }
            \t}

            \tset bogons-eth1-v4 {
            \t\ttype ipv4_addr
            \t\tflags interval
            \t\telements = { 203.0.113.0/24 }
            \t}

            \tset portscan-meter-v4 {
            \t\ttype ipv4_addr
            \t\tsize 65535
            \t\ttimeout 1m
            \t\tflags dynamic,timeout
            \t}

            \tset portscan-block-v4 {
            \t\ttype ipv4_addr
            \t\tsize 65535
            \t\ttimeout 1m
            \t\tflags dynamic,timeout
            \t}

            \tset portscan-meter-v6 {
            \t\ttype ipv6_addr
            \t\tsize 65535
            \t\ttimeout 1m
            \t\tflags dynamic,timeout
            \t}

            \tset portscan-block-v6 {
            \t\ttype ipv6_addr
            \t\tsize 65535
            \t\ttimeout 1m
            \t\tflags dynamic,timeout
            \t}

            \tchain input {
            \t\ttype filter hook input priority 0; policy accept;
            \t\tiif "lo" accept
            \t\tct state established,related accept
            \t\tct state invalid drop
            \t\ticmpv6 type { nd-router-solicit, nd-router-advert, nd-neighbor-solicit, nd-neighbor-advert, nd-redirect } ip6 hoplimit 255 accept
            \t\tfib saddr . iif oif missing drop
            \t\tiifname != "lo" ip saddr @bogons-v4 drop
            \t\tiifname != "lo" ip6 saddr @bogons-v6 drop
            \t\tiifname "eth1" ip saddr @bogons-eth1-v4 drop
            \t\tip saddr @portscan-block-v4 drop
            \t\tip6 saddr @portscan-block-v6 drop
            \t\tct state new ip saddr != @group-admin-v4 add @portscan-meter-v4 { ip saddr limit rate over 10/second burst 10 packets } add @portscan-block-v4 { ip saddr } drop
            \t\tct state new ip6 saddr != @group-admin-v6 add @portscan-meter-v6 { ip6 saddr limit rate over 10/second burst 10 packets } add @portscan-block-v6 { ip6 saddr } drop
            \t\ticmp type { destination-unreachable, time-exceeded, parameter-problem, echo-request } accept
            \t\ticmpv6 type { destination-unreachable, packet-too-big, time-exceeded, parameter-problem, echo-request, mld-listener-query, mld-listener-report, mld2-listener-report } accept
            \t\ttcp dport 22 accept comment "ssh"
            \t\ttcp dport { 80, 443 } accept comment "web"
            \t\tip saddr @group-admin-v4 tcp dport 4949 accept comment "munin"
            \t\tip6 saddr @group-admin-v6 tcp dport 4949 accept comment "munin"
            \t\tudp dport 53 accept comment "dns"
            \t\tip saddr { 198.51.100.0/24, 203.0.113.0/24 } tcp dport 8080 accept comment "lab"
            \t\tlimit rate 5/minute log prefix "portcullis-policy refused: " level info
            \t\tmeta l4proto tcp reject with tcp reset
            \t\treject with icmpx port-unreachable
            \t}

            \tchain forward {
            \t\ttype filter hook forward priority 0; policy accept;
            \t\tct state established,related accept
            \t\tmeta l4proto tcp reject with tcp reset
            \t\treject with icmpx admin-prohibited
            \t}
            }

            """
        #expect(text == expected)
    }

    @Test func loadScriptReplacesOnlyItsTable() throws {
        let p = try loadPolicy("[services]\nssh = ssh\n[portscan]\nenabled = no\n[antispoof]\nrpfilter = no\n")
        let script = PolicyRenderer().loadScript(p, forwarding: true)
        #expect(
            script.hasPrefix(
                "add table inet portcullis-policy\ndelete table inet portcullis-policy\ntable inet portcullis-policy {\n"
            ))
        // forward = auto on a forwarding host: no forward chain.
        #expect(!script.contains("chain forward"))
        #expect(!script.contains("portscan"))
        #expect(!script.contains("fib"))
        // Only this table is named anywhere.
        let tables = script.split(separator: "\n").filter { $0.contains("table ") }
        #expect(tables.allSatisfy { $0.contains("inet portcullis-policy") })
    }

    @Test func dropDefaultAndNoLogging() throws {
        let p = try loadPolicy("[firewall]\ndefault = drop\nlog = no\nforward = none\n[services]\nssh = ssh\n")
        let rules = PolicyRenderer().inputRules(p)
        #expect(rules.suffix(2) == ["tcp dport 22 accept comment \"ssh\"", "drop"])
        #expect(!rules.contains { $0.contains("log") })
        #expect(!PolicyRenderer().ruleset(p, forwarding: false).contains("chain forward"))
    }

    @Test func groupWithoutV6MembersGetsNoV6Rule() throws {
        let p = try loadPolicy("[groups]\nadmin = 192.0.2.0/24\n[services]\nmunin = 4949 from admin\n")
        let rules = PolicyRenderer().inputRules(p).filter { $0.contains("munin") }
        #expect(rules == ["ip saddr @group-admin-v4 tcp dport 4949 accept comment \"munin\""])
    }
}

@Suite struct RulesetTextTests {
    @Test func normalisesHandlesAndDynamicElements() {
        let listing = """
            table inet t { # handle 4
            \tset portscan-block-v4 { # handle 2
            \t\ttype ipv4_addr
            \t\tflags dynamic,timeout
            \t\telements = { 192.0.2.9 timeout 1m expires 40s,
            \t\t\t     192.0.2.10 timeout 1m expires 50s }
            \t}

            \tset group-a-v4 {
            \t\ttype ipv4_addr
            \t\tflags interval
            \t\telements = { 192.0.2.0/24 }
            \t}
            \tchain input { # handle 1
            \t\ttcp dport 22 accept # handle 7
            \t}
            }
            """
        #expect(
            RulesetText.normalized(listing) == [
                "table inet t {", "set portscan-block-v4 {", "type ipv4_addr", "flags dynamic,timeout", "}",
                "set group-a-v4 {", "type ipv4_addr", "flags interval", "elements = { 192.0.2.0/24 }", "}",
                "chain input {", "tcp dport 22 accept", "}", "}",
            ])
    }

    @Test func diffMarksChanges() {
        let d = RulesetText.diff(["a", "b", "c"], ["a", "c", "d"])
        #expect(d == ["  a", "- b", "  c", "+ d"])
        #expect(RulesetText.hasChanges(d))
        #expect(!RulesetText.hasChanges(RulesetText.diff(["x"], ["x"])))
        #expect(RulesetText.diff([], ["x"]) == ["+ x"])
    }
}
