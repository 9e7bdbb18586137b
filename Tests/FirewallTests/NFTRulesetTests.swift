import Core
import Firewall
import Testing

private func ip(_ text: String) -> IPAddress { IPAddress(text)! }

@Suite struct NFTRulesetTests {
    let ruleset = NFTRuleset(configuration: FirewallConfiguration())
    let sshd = JailFirewall(name: "sshd", ports: .ports([PortRange(22)]), protocols: .tcp, blockType: .reject)

    @Test func setUpTextForMultiportTCPReject() {
        let text = ruleset.setUp(jails: [sshd]).text
        #expect(
            text == """
                add table inet portcullis
                add chain inet portcullis bans
                flush chain inet portcullis bans
                delete chain inet portcullis bans
                add chain inet portcullis bans-forward
                flush chain inet portcullis bans-forward
                delete chain inet portcullis bans-forward
                add chain inet portcullis bans { type filter hook input priority -1; policy accept; }
                add set inet portcullis addr-set-sshd { type ipv4_addr; flags timeout; }
                add set inet portcullis addr6-set-sshd { type ipv6_addr; flags timeout; }
                add rule inet portcullis bans tcp dport { 22 } ip saddr @addr-set-sshd reject with tcp reset
                add rule inet portcullis bans tcp dport { 22 } ip6 saddr @addr6-set-sshd reject with tcp reset

                """)
    }

    @Test func setUpDeletesStaleSetsAfterFlushingTheChain() {
        let commands = ruleset.setUp(jails: [sshd], staleSets: ["addr-set-old", "addr6-set-old"]).commands
        #expect(
            Array(commands.prefix(10)) == [
                .addTable, .ensureChain, .flushChain, .deleteChain, .ensureForwardChain, .flushForwardChain,
                .deleteForwardChain, .addChain, .deleteSet(name: "addr-set-old"),
                .deleteSet(name: "addr6-set-old"),
            ])
    }

    @Test func configurableTableChainAndPriority() {
        let r = NFTRuleset(configuration: FirewallConfiguration(tableName: "f2b", chainName: "in", priority: -10))
        let text = r.setUp(jails: []).text
        #expect(
            text == """
                add table inet f2b
                add chain inet f2b in
                flush chain inet f2b in
                delete chain inet f2b in
                add chain inet f2b in-forward
                flush chain inet f2b in-forward
                delete chain inet f2b in-forward
                add chain inet f2b in { type filter hook input priority -10; policy accept; }

                """)
    }

    @Test func banForwardAddsAForwardChainWithTheSameMatches() {
        let web = JailFirewall(
            name: "web", ports: .ports([PortRange(80), PortRange(443)]), protocols: .tcp, blockType: .reject,
            banForward: .yes)
        let text = ruleset.setUp(jails: [sshd, web]).text
        #expect(
            text == """
                add table inet portcullis
                add chain inet portcullis bans
                flush chain inet portcullis bans
                delete chain inet portcullis bans
                add chain inet portcullis bans-forward
                flush chain inet portcullis bans-forward
                delete chain inet portcullis bans-forward
                add chain inet portcullis bans { type filter hook input priority -1; policy accept; }
                add chain inet portcullis bans-forward { type filter hook forward priority -1; policy accept; }
                add set inet portcullis addr-set-sshd { type ipv4_addr; flags timeout; }
                add set inet portcullis addr6-set-sshd { type ipv6_addr; flags timeout; }
                add set inet portcullis addr-set-web { type ipv4_addr; flags timeout; }
                add set inet portcullis addr6-set-web { type ipv6_addr; flags timeout; }
                add rule inet portcullis bans tcp dport { 22 } ip saddr @addr-set-sshd reject with tcp reset
                add rule inet portcullis bans tcp dport { 22 } ip6 saddr @addr6-set-sshd reject with tcp reset
                add rule inet portcullis bans tcp dport { 80, 443 } ip saddr @addr-set-web reject with tcp reset
                add rule inet portcullis bans-forward tcp dport { 80, 443 } ip saddr @addr-set-web reject with tcp reset
                add rule inet portcullis bans tcp dport { 80, 443 } ip6 saddr @addr6-set-web reject with tcp reset
                add rule inet portcullis bans-forward tcp dport { 80, 443 } ip6 saddr @addr6-set-web reject with tcp reset

                """)
        // A rebuild after a flush of the ruleset recreates the forward chain too.
        let rebuild = ruleset.rebuild(jails: [web], bans: []).text
        #expect(
            rebuild.hasPrefix(
                """
                add table inet portcullis
                delete table inet portcullis
                add table inet portcullis
                add chain inet portcullis bans { type filter hook input priority -1; policy accept; }
                add chain inet portcullis bans-forward { type filter hook forward priority -1; policy accept; }

                """))
        #expect(rebuild.contains("add rule inet portcullis bans-forward tcp dport { 80, 443 } ip saddr @addr-set-web"))
        // JSON names the forward hook and chain.
        let json = ruleset.rebuild(jails: [web], bans: []).json
        #expect(
            json.contains(
                "{\"add\": {\"chain\": {\"family\": \"inet\", \"table\": \"portcullis\", \"name\": \"bans-forward\", "
                    + "\"type\": \"filter\", \"hook\": \"forward\", \"prio\": -1, \"policy\": \"accept\"}}}"))
        #expect(
            json.contains(
                "{\"add\": {\"rule\": {\"family\": \"inet\", \"table\": \"portcullis\", \"chain\": \"bans-forward\""))
        // An allports drop jail: one rule per family in each chain.
        let recidive = JailFirewall(name: "recidive", ports: .all, protocols: .all, blockType: .drop, banForward: .yes)
        #expect(
            ruleset.transaction(ruleset.rules(for: recidive, family: .v4).map { .addRule($0) }).text == """
                add rule inet portcullis bans ip saddr @addr-set-recidive drop
                add rule inet portcullis bans-forward ip saddr @addr-set-recidive drop

                """)
    }

    @Test func banForwardCoversPrefixAndFleetSetsToo() {
        let web = JailFirewall(
            name: "web", ports: .ports([PortRange(80)]), banForward: .yes, prefixSets: true, fleetSets: true)
        let text = ruleset.setUp(jails: [web]).text
        for set in ["addr-set-web", "net-set-web", "fleet-set-web"] {
            #expect(
                text.contains("add rule inet portcullis bans tcp dport { 80 } ip saddr @\(set) reject with tcp reset"))
            #expect(
                text.contains(
                    "add rule inet portcullis bans-forward tcp dport { 80 } ip saddr @\(set) reject with tcp reset"))
        }
        #expect(text.components(separatedBy: "add rule inet portcullis bans-forward ").count - 1 == 6)
        let resolved = JailFirewall(name: "w", ports: .all, prefixSets: true, fleetSets: true)
            .resolved(ForwardingState(ipv4: false, ipv6: true, docker: false))
        #expect(resolved.banForward == .yes && resolved.prefixSets && resolved.fleetSets)
    }

    @Test func banForwardAutoFollowsTheHostAndNoOrUnresolvedAutoHasNoForwardChain() throws {
        let routing = ForwardingState(ipv4: true, ipv6: false, docker: false)
        let docker = ForwardingState(ipv4: false, ipv6: false, docker: true)
        let none = ForwardingState(ipv4: false, ipv6: false, docker: false)
        #expect(sshd.resolved(routing).banForward == .yes)
        #expect(sshd.resolved(docker).banForward == .yes)
        #expect(sshd.resolved(none).banForward == .no)
        let off = JailFirewall(name: "x", ports: .all, banForward: .no)
        #expect(off.resolved(routing).banForward == .no)
        #expect(JailFirewall(name: "x", ports: .all, banForward: .yes).resolved(none).banForward == .yes)
        #expect(!ruleset.setUp(jails: [sshd, off]).text.contains("hook forward"))
        #expect(ruleset.setUp(jails: [sshd.resolved(routing)]).text.contains("hook forward"))
        #expect(try ForwardBanning(parsing: " Yes ", jail: "j") == .yes)
        #expect(try ForwardBanning(parsing: "", jail: "j") == .auto)
        #expect(try ForwardBanning(parsing: "off", jail: "j") == .no)
        let error = #expect(throws: FirewallError.self) { try ForwardBanning(parsing: "sometimes", jail: "sshd") }
        #expect(error?.code == .invalidForwardBanning)
        #expect(error?.message == "jail 'sshd': banforward must be auto, yes or no, not 'sometimes'")
        #expect(ForwardingState.hasDockerChains("table ip filter {\n\tchain DOCKER-USER {\n\t}\n}\n"))
        #expect(!ForwardingState.hasDockerChains("table ip filter {\n\tchain FORWARD {\n\t}\n}\n"))
        #expect(
            routing.description
                == "net.ipv4.ip_forward = 1, net.ipv6.conf.all.forwarding = 0, no Docker chains")
    }

    @Test func multiportUDPAndAllProtocols() {
        let udp = JailFirewall(
            name: "named", ports: .ports([PortRange(53), PortRange(1000, 2000)]), protocols: .udp, blockType: .reject)
        #expect(
            ruleset.rules(for: udp, family: .v4).map { ruleset.transaction([.addRule($0)]).text } == [
                "add rule inet portcullis bans udp dport { 53, 1000-2000 } ip saddr @addr-set-named reject with icmp port-unreachable\n"
            ])
        let both = JailFirewall(name: "x", ports: .ports([PortRange(80)]), protocols: .all, blockType: .drop)
        #expect(
            ruleset.transaction(ruleset.rules(for: both, family: .v6).map { .addRule($0) }).text == """
                add rule inet portcullis bans tcp dport { 80 } ip6 saddr @addr6-set-x drop
                add rule inet portcullis bans udp dport { 80 } ip6 saddr @addr6-set-x drop

                """)
    }

    @Test func allportsRejectAnswersTCPWithResetAndTheRestWithPortUnreachable() {
        let jail = JailFirewall(name: "recidive", ports: .all, protocols: .all, blockType: .reject)
        #expect(
            ruleset.transaction(ruleset.rules(for: jail, family: .v6).map { .addRule($0) }).text == """
                add rule inet portcullis bans meta l4proto tcp ip6 saddr @addr6-set-recidive reject with tcp reset
                add rule inet portcullis bans ip6 saddr @addr6-set-recidive reject with icmpv6 port-unreachable

                """)
        let drop = JailFirewall(name: "recidive", ports: .all, protocols: .all, blockType: .drop)
        #expect(
            ruleset.rules(for: drop, family: .v4) == [
                NFTRule(layer4: .any, family: .v4, set: "addr-set-recidive", verdict: .drop)
            ])
        let tcpOnly = JailFirewall(name: "r", ports: .all, protocols: .tcp, blockType: .reject)
        #expect(
            ruleset.rules(for: tcpOnly, family: .v4) == [
                NFTRule(layer4: .proto(.tcp), family: .v4, set: "addr-set-r", verdict: .tcpReset)
            ])
    }

    @Test func banGroupsPerSetInOneTransaction() {
        let t = ruleset.ban([
            BanRequest(address: ip("192.0.2.1"), jail: "sshd", duration: .timeout(.seconds(600))),
            BanRequest(address: ip("2001:db8::1"), jail: "sshd", duration: .permanent),
            BanRequest(address: ip("192.0.2.2"), jail: "sshd", duration: .permanent),
            BanRequest(address: ip("192.0.2.3"), jail: "sshd", duration: .timeout(.milliseconds(1500))),
        ])
        #expect(
            t.text == """
                add element inet portcullis addr-set-sshd { 192.0.2.1 timeout 10m, 192.0.2.2, 192.0.2.3 timeout 1s500ms }
                add element inet portcullis addr6-set-sshd { 2001:db8::1 }

                """)
    }

    @Test func banSkipsExpiredAndKeepsTheLastDuplicate() {
        let t = ruleset.ban([
            BanRequest(address: ip("192.0.2.1"), jail: "sshd", duration: .timeout(.seconds(5))),
            BanRequest(address: ip("192.0.2.9"), jail: "sshd", duration: .timeout(.zero)),
            BanRequest(address: ip("192.0.2.1"), jail: "sshd", duration: .timeout(.seconds(7))),
        ])
        #expect(t.text == "add element inet portcullis addr-set-sshd { 192.0.2.1 timeout 7s }\n")
        #expect(
            ruleset.ban([BanRequest(address: ip("192.0.2.9"), jail: "sshd", duration: .timeout(.seconds(-1)))]).isEmpty)
    }

    @Test func rebanOfABannedAddressReplacesItsTimeout() {
        let a = ip("192.0.2.1")
        let t = ruleset.ban(
            [
                BanRequest(address: a, jail: "sshd", duration: .timeout(.seconds(60))),
                BanRequest(address: ip("192.0.2.2"), jail: "sshd", duration: .timeout(.seconds(60))),
            ], replacing: [BanKey(address: a, jail: "sshd")])
        #expect(
            t.text == """
                add element inet portcullis addr-set-sshd { 192.0.2.1 timeout 1m }
                delete element inet portcullis addr-set-sshd { 192.0.2.1 }
                add element inet portcullis addr-set-sshd { 192.0.2.2 timeout 1m, 192.0.2.1 timeout 1m }

                """)
    }

    @Test func unbanAddsThenDeletesSoMissingAddressesDoNotFail() {
        let t = ruleset.unban([
            BanKey(address: ip("192.0.2.1"), jail: "sshd"), BanKey(address: ip("192.0.2.1"), jail: "sshd"),
            BanKey(address: ip("2001:db8::5"), jail: "sshd"),
        ])
        #expect(
            t.text == """
                add element inet portcullis addr-set-sshd { 192.0.2.1 }
                delete element inet portcullis addr-set-sshd { 192.0.2.1 }
                add element inet portcullis addr6-set-sshd { 2001:db8::5 }
                delete element inet portcullis addr6-set-sshd { 2001:db8::5 }

                """)
    }

    @Test func flushTearDownAndRebuild() {
        #expect(
            ruleset.flush(jail: "sshd").text == """
                flush set inet portcullis addr-set-sshd
                flush set inet portcullis addr6-set-sshd

                """)
        #expect(ruleset.tearDown().text == "add table inet portcullis\ndelete table inet portcullis\n")
        let rebuild = ruleset.rebuild(
            jails: [sshd], bans: [BanRequest(address: ip("192.0.2.1"), jail: "sshd", duration: .permanent)])
        #expect(rebuild.commands.first == .addTable)
        #expect(rebuild.commands.dropFirst().first == .deleteTable)
        #expect(
            Array(rebuild.commands.dropFirst(2)) == ruleset.setUp(jails: [sshd]).commands.filter {
                ![
                    .ensureChain, .flushChain, .deleteChain, .ensureForwardChain, .flushForwardChain,
                    .deleteForwardChain,
                ]
                .contains($0)
            }
                + [.addElements(set: "addr-set-sshd", [NFTElement(address: ip("192.0.2.1"), timeout: nil)])])
    }

    @Test func timeoutsUseNftCompoundSyntaxAndAreCapped() {
        func text(_ d: Duration) -> String {
            ruleset.ban([BanRequest(address: ip("192.0.2.1"), jail: "j", duration: .timeout(d))]).text
        }
        #expect(text(.seconds(7)) == "add element inet portcullis addr-set-j { 192.0.2.1 timeout 7s }\n")
        #expect(text(.seconds(90_061) + .milliseconds(5)).contains("timeout 1d1h1m1s5ms }"))
        #expect(text(.microseconds(1)).contains("timeout 1ms }"))
        #expect(text(.seconds(10_000_000_000)).contains("timeout 36500d }"))
        let json = ruleset.ban([
            BanRequest(address: ip("192.0.2.1"), jail: "j", duration: .timeout(.seconds(10_000_000_000)))
        ]).json
        #expect(json.contains("\"timeout\": 3153600000}"))
    }

    @Test func banDurationFromBanTimeSeconds() {
        #expect(BanDuration(banTime: 600) == .timeout(.seconds(600)))
        #expect(BanDuration(banTime: 0.25) == .timeout(.milliseconds(250)))
        #expect(BanDuration(banTime: -1) == .permanent)
        #expect(BanDuration(banTime: .nan) == .permanent)
        #expect(BanDuration(banTime: .infinity) == .timeout(.milliseconds(Int64.max)))
        #expect(BanDuration(banTime: 1e30) == .timeout(.milliseconds(Int64.max)))
        #expect(
            ruleset.ban([BanRequest(address: ip("192.0.2.1"), jail: "j", duration: BanDuration(banTime: 1e30))]).text
                .contains("timeout 36500d }"))
    }

    @Test func eventDescriptions() {
        #expect(
            FirewallEvent.restored(bans: 3, took: .microseconds(12_340)).description
                == "table was missing or damaged (ruleset flushed?); rebuilt with 3 bans in 12.3 ms")
        #expect(FirewallEvent.restoreFailed("nope").description.hasSuffix("(retrying): nope"))
    }

    @Test func jsonSetUp() {
        let json = ruleset.setUp(jails: [sshd]).json
        #expect(
            json == """
                {"nftables": [{"add": {"table": {"family": "inet", "name": "portcullis"}}}, \
                {"add": {"chain": {"family": "inet", "table": "portcullis", "name": "bans"}}}, \
                {"flush": {"chain": {"family": "inet", "table": "portcullis", "name": "bans"}}}, \
                {"delete": {"chain": {"family": "inet", "table": "portcullis", "name": "bans"}}}, \
                {"add": {"chain": {"family": "inet", "table": "portcullis", "name": "bans-forward"}}}, \
                {"flush": {"chain": {"family": "inet", "table": "portcullis", "name": "bans-forward"}}}, \
                {"delete": {"chain": {"family": "inet", "table": "portcullis", "name": "bans-forward"}}}, \
                {"add": {"chain": {"family": "inet", "table": "portcullis", "name": "bans", "type": "filter", "hook": "input", "prio": -1, "policy": "accept"}}}, \
                {"add": {"set": {"family": "inet", "table": "portcullis", "name": "addr-set-sshd", "type": "ipv4_addr", "flags": ["timeout"]}}}, \
                {"add": {"set": {"family": "inet", "table": "portcullis", "name": "addr6-set-sshd", "type": "ipv6_addr", "flags": ["timeout"]}}}, \
                {"add": {"rule": {"family": "inet", "table": "portcullis", "chain": "bans", "expr": [\
                {"match": {"op": "==", "left": {"payload": {"protocol": "tcp", "field": "dport"}}, "right": {"set": [22]}}}, \
                {"match": {"op": "==", "left": {"payload": {"protocol": "ip", "field": "saddr"}}, "right": "@addr-set-sshd"}}, \
                {"reject": {"type": "tcp reset"}}]}}}, \
                {"add": {"rule": {"family": "inet", "table": "portcullis", "chain": "bans", "expr": [\
                {"match": {"op": "==", "left": {"payload": {"protocol": "tcp", "field": "dport"}}, "right": {"set": [22]}}}, \
                {"match": {"op": "==", "left": {"payload": {"protocol": "ip6", "field": "saddr"}}, "right": "@addr6-set-sshd"}}, \
                {"reject": {"type": "tcp reset"}}]}}}]}
                """)
    }

    @Test func jsonElementsRulesAndDeletes() {
        let t = ruleset.ban([
            BanRequest(address: ip("192.0.2.1"), jail: "sshd", duration: .timeout(.milliseconds(1500))),
            BanRequest(address: ip("192.0.2.2"), jail: "sshd", duration: .permanent),
        ])
        #expect(
            t.json == """
                {"nftables": [{"add": {"element": {"family": "inet", "table": "portcullis", "name": "addr-set-sshd", "elem": [\
                {"elem": {"val": "192.0.2.1", "timeout": 2}}, "192.0.2.2"]}}}]}
                """)
        let rule = NFTRule(
            layer4: .ports(.udp, [PortRange(53), PortRange(1000, 2000)]), family: .v6, set: "addr6-set-x",
            verdict: .portUnreachable)
        #expect(
            ruleset.transaction([.addRule(rule)]).json == """
                {"nftables": [{"add": {"rule": {"family": "inet", "table": "portcullis", "chain": "bans", "expr": [\
                {"match": {"op": "==", "left": {"payload": {"protocol": "udp", "field": "dport"}}, "right": {"set": [53, {"range": [1000, 2000]}]}}}, \
                {"match": {"op": "==", "left": {"payload": {"protocol": "ip6", "field": "saddr"}}, "right": "@addr6-set-x"}}, \
                {"reject": {"type": "icmpv6", "expr": "port-unreachable"}}]}}}]}
                """)
        let meta = NFTRule(layer4: .proto(.tcp), family: .v4, set: "s", verdict: .drop)
        #expect(
            ruleset.transaction([.addRule(meta)]).json.contains(
                "{\"match\": {\"op\": \"==\", \"left\": {\"meta\": {\"key\": \"l4proto\"}}, \"right\": \"tcp\"}}, "))
        #expect(
            ruleset.unban([BanKey(address: ip("192.0.2.1"), jail: "sshd")]).json.hasSuffix(
                "{\"delete\": {\"element\": {\"family\": \"inet\", \"table\": \"portcullis\", \"name\": \"addr-set-sshd\", \"elem\": [\"192.0.2.1\"]}}}]}"
            ))
        #expect(
            ruleset.tearDown().json == """
                {"nftables": [{"add": {"table": {"family": "inet", "name": "portcullis"}}}, {"delete": {"table": {"family": "inet", "name": "portcullis"}}}]}
                """)
    }
}

@Suite struct PrefixSetTests {
    let ruleset = NFTRuleset(configuration: FirewallConfiguration())
    let sshd = JailFirewall(
        name: "sshd", ports: .ports([PortRange(22)]), protocols: .tcp, blockType: .reject, prefixSets: true)

    @Test func prefixSetsAreIntervalSetsWithTheJailsRules() {
        let text = ruleset.setUp(jails: [sshd]).text
        #expect(text.contains("add set inet portcullis net-set-sshd { type ipv4_addr; flags interval, timeout; }\n"))
        #expect(text.contains("add set inet portcullis net6-set-sshd { type ipv6_addr; flags interval, timeout; }\n"))
        #expect(
            text.contains(
                "add rule inet portcullis bans tcp dport { 22 } ip6 saddr @net6-set-sshd reject with tcp reset\n"))
        #expect(
            text.contains(
                "add rule inet portcullis bans tcp dport { 22 } ip saddr @net-set-sshd reject with tcp reset\n"))
        // The address sets are as before.
        #expect(text.contains("add set inet portcullis addr6-set-sshd { type ipv6_addr; flags timeout; }\n"))
    }

    @Test func prefixBanAndUnbanText() {
        let ban = BanRequest(
            address: ip("2001:db8:1:2::77"), jail: "sshd", duration: .timeout(.seconds(600)), scope: .prefix(64))
        #expect(ban.address == ip("2001:db8:1:2::"))  // host bits cleared
        #expect(
            ruleset.ban([ban]).text == "add element inet portcullis net6-set-sshd { 2001:db8:1:2::/64 timeout 10m }\n")
        #expect(
            ruleset.unban([ban.key]).text == """
                add element inet portcullis net6-set-sshd { 2001:db8:1:2::/64 }
                delete element inet portcullis net6-set-sshd { 2001:db8:1:2::/64 }

                """)
        #expect(
            ruleset.ban([ban]).json.contains(
                #"{"elem": {"val": {"prefix": {"addr": "2001:db8:1:2::", "len": 64}}, "timeout": 600}}"#))
    }

    @Test func addressAndPrefixOfTheSameNetworkAreDifferentKeys() {
        let a = BanRequest(address: ip("2001:db8:1:2::"), jail: "sshd", duration: .permanent)
        let p = BanRequest(address: ip("2001:db8:1:2::"), jail: "sshd", duration: .permanent, scope: .prefix(64))
        #expect(a.key != p.key)
        #expect(ruleset.ban([a, p]).commands.count == 2)
    }
}
