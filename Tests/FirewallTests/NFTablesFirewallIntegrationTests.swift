import Core
import Firewall
import Foundation
import PortcullisTestKit
import Synchronization
import Testing

/// Real-kernel tests: every nftables change happens inside namespaces created by ``NetnsLab`` (deleted afterwards).
@Suite(.serialized, .blocking, .enabled(if: NetnsLab.isRoot, "needs root for network namespaces"))
struct NFTablesFirewallIntegrationTests {
    static let sshd = JailFirewall(name: "sshd", ports: .ports([PortRange(8022)]), protocols: .tcp, blockType: .reject)

    /// A backend inside the lab's defended namespace; refuses to go on if it is not in a namespace.
    func firewall(
        _ lab: NetnsLab, syntax: FirewallConfiguration.Syntax = .text, keep: Bool = false,
        healthCheck: Duration = .milliseconds(200), followsChanges: Bool? = nil,
        onEvent: @escaping @Sendable (FirewallEvent) -> Void = { _ in }
    ) throws -> NFTablesFirewall {
        // Tests that switch the health check off sabotage the table on purpose: no instant repair either, unless asked.
        let fw = try NFTablesFirewall(
            configuration: FirewallConfiguration(
                keepTableOnStop: keep, syntax: syntax, networkNamespace: lab.defended,
                healthCheckInterval: healthCheck, fullCheckInterval: healthCheck * 3,
                followsChanges: followsChanges ?? (healthCheck < .seconds(60))),
            onEvent: onEvent)
        try #require(fw.networkNamespace == lab.defended)
        return fw
    }

    func ip(_ s: String) -> IPAddress { IPAddress(s)! }

    @Test(arguments: [FirewallConfiguration.Syntax.text, .json])
    func banRefusesOnlyTheBannedAddressAndUnbanLetsItBack(syntax: FirewallConfiguration.Syntax) async throws {
        try await NetnsLab.with(ports: [8022, 8080]) { lab in
            let fw = try firewall(lab, syntax: syntax)
            defer { fw.shutdown() }
            try await fw.setUp(jails: [Self.sshd])
            #expect(try await lab.connect(from: NetnsLab.attackerV4) == .connected)

            try await fw.ban([
                BanRequest(address: ip(NetnsLab.attackerV4), jail: "sshd", duration: .timeout(.seconds(600)))
            ])
            #expect(try await lab.connect(from: NetnsLab.attackerV4) == .refused)
            #expect(try await lab.connect(from: NetnsLab.otherV4) == .connected)
            // multiport: a port outside the jail's list is still open to the banned address.
            #expect(try await lab.connect(from: NetnsLab.attackerV4, port: 8080) == .connected)

            let listed = try await fw.list(jail: "sshd")
            #expect(listed.map(\.address) == [ip(NetnsLab.attackerV4)])
            #expect(listed.first?.timeout == .seconds(600))
            let remaining = try #require(listed.first?.remaining)
            #expect(remaining > .seconds(500) && remaining <= .seconds(600))

            try await fw.unban([BanKey(address: ip(NetnsLab.attackerV4), jail: "sshd")])
            #expect(try await lab.connect(from: NetnsLab.attackerV4) == .connected)
            #expect(try await fw.list(jail: "sshd").isEmpty)
            try await fw.tearDown()
            #expect(!(try await lab.nft(["list", "tables"]).contains("portcullis")))
        }
    }

    @Test func ipv6BanAndUnban() async throws {
        try await NetnsLab.with { lab in
            let fw = try firewall(lab)
            defer { fw.shutdown() }
            try await fw.setUp(jails: [Self.sshd])
            #expect(try await lab.connect(from: NetnsLab.attackerV6) == .connected)
            try await fw.ban([BanRequest(address: ip(NetnsLab.attackerV6), jail: "sshd", duration: .permanent)])
            #expect(try await lab.connect(from: NetnsLab.attackerV6) == .refused)
            #expect(try await lab.connect(from: NetnsLab.otherV6) == .connected)
            #expect(try await lab.connect(from: NetnsLab.attackerV4) == .connected)
            let listed = try await fw.list(jail: "sshd")
            #expect(
                listed == [BannedEntry(address: ip(NetnsLab.attackerV6), jail: "sshd", timeout: nil, remaining: nil)])
            try await fw.unban([BanKey(address: ip(NetnsLab.attackerV6), jail: "sshd")])
            #expect(try await lab.connect(from: NetnsLab.attackerV6) == .connected)
        }
    }

    @Test func timedBanExpiresInTheKernelWhileTheBackendIsStopped() async throws {
        try await NetnsLab.with { lab in
            let fw = try firewall(lab, keep: true)
            try await fw.setUp(jails: [Self.sshd])
            let clock = ContinuousClock()
            let bannedAt = clock.now
            try await fw.ban([
                BanRequest(address: ip(NetnsLab.attackerV4), jail: "sshd", duration: .timeout(.seconds(2))),
                BanRequest(address: ip(NetnsLab.attackerV6), jail: "sshd", duration: .timeout(.seconds(2))),
            ])
            // In the kernel with a 2 s timeout (read back in-process, long before it can expire).
            let listed = try await fw.list(jail: "sshd")
            #expect(Set(listed.map(\.address)) == [ip(NetnsLab.attackerV4), ip(NetnsLab.attackerV6)])
            #expect(listed.allSatisfy { $0.timeout == .seconds(2) })
            // The "daemon" goes away; nothing but the kernel can lift the ban now.
            try await fw.tearDown()
            fw.shutdown()
            let blocked = try await lab.connect(from: NetnsLab.attackerV4)
            if bannedAt.duration(to: clock.now) < .milliseconds(1500) {
                // Only meaningful while the ban surely still runs (a loaded machine may be slower).
                #expect(blocked == .refused)
            }
            let lifted = try await NetnsLab.eventually {
                let v4 = try await lab.connect(from: NetnsLab.attackerV4)
                let v6 = try await lab.connect(from: NetnsLab.attackerV6)
                return v4 == .connected && v6 == .connected
            }
            #expect(lifted)
            #expect(
                !(try await lab.nft(["list", "set", "inet", "portcullis", "addr-set-sshd"]).contains(
                    NetnsLab.attackerV4)))
            #expect(
                !(try await lab.nft(["list", "set", "inet", "portcullis", "addr6-set-sshd"]).contains(
                    NetnsLab.attackerV6)))
            // The table itself stays (keepTableOnStop).
            #expect(try await lab.nft(["list", "tables"]).contains("table inet portcullis"))
        }
    }

    @Test func flushRulesetIsHealedWithEveryActiveBan() async throws {
        try await NetnsLab.with { lab in
            let events = Mutex<[FirewallEvent]>([])
            let fw = try firewall(lab) { e in events.withLock { $0.append(e) } }
            defer { fw.shutdown() }
            try await fw.setUp(jails: [Self.sshd])
            try await fw.ban([
                BanRequest(address: ip(NetnsLab.attackerV4), jail: "sshd", duration: .timeout(.seconds(600))),
                BanRequest(address: ip(NetnsLab.attackerV6), jail: "sshd", duration: .permanent),
            ])
            #expect(try await lab.connect(from: NetnsLab.attackerV4) == .refused)

            // 1. nft flush ruleset
            try await lab.nft(["flush", "ruleset"])
            #expect(
                try await NetnsLab.eventually {
                    try await lab.nft(["list", "tables"]).contains("table inet portcullis")
                })
            #expect(try await lab.connect(from: NetnsLab.attackerV4) == .refused)
            #expect(try await lab.connect(from: NetnsLab.attackerV6) == .refused)
            #expect(try await lab.connect(from: NetnsLab.otherV4) == .connected)
            let listed = try await fw.list(jail: "sshd")
            #expect(Set(listed.map(\.address)) == [ip(NetnsLab.attackerV4), ip(NetnsLab.attackerV6)])
            let v4 = try #require(listed.first { $0.address.family == .v4 })
            #expect(v4.remaining.map { $0 <= .seconds(600) && $0 > .seconds(500) } == true)
            #expect(events.withLock { $0 }.contains { if case .restored(bans: 2, _) = $0 { true } else { false } })

            // 2. an admin reloads /etc/nftables.conf, which starts with `flush ruleset`.
            try await lab.nft(
                ["-f", "-"],
                input: """
                    flush ruleset
                    table inet filter {
                        chain input { type filter hook input priority filter; policy accept; }
                    }
                    """)
            #expect(
                try await NetnsLab.eventually {
                    try await lab.nft(["list", "tables"]).contains("table inet portcullis")
                })
            #expect(try await lab.nft(["list", "tables"]).contains("table inet filter"))
            #expect(try await lab.connect(from: NetnsLab.attackerV4) == .refused)

            // 3. someone deletes just our table; an unbanned address stays unbanned after the restore.
            try await fw.unban([BanKey(address: ip(NetnsLab.attackerV6), jail: "sshd")])
            try await lab.nft(["delete", "table", "inet", "portcullis"])
            #expect(
                try await NetnsLab.eventually {
                    try await lab.nft(["list", "tables"]).contains("table inet portcullis")
                })
            #expect(try await lab.connect(from: NetnsLab.attackerV4) == .refused)
            #expect(try await lab.connect(from: NetnsLab.attackerV6) == .connected)

            // 4. someone flushes our chain (rules gone, sets intact), then deletes it.
            for command in [
                ["flush", "chain", "inet", "portcullis", "bans"], ["delete", "chain", "inet", "portcullis", "bans"],
            ] {
                let restoresBefore = events.withLock { $0.count }
                try await lab.nft(command)
                #expect(await NetnsLab.eventually { events.withLock { $0.count } > restoresBefore })
                #expect(try await lab.connect(from: NetnsLab.attackerV4) == .refused)
            }
        }
    }

    @Test func twentyThousandBansInOneTransactionAndTheirRestore() async throws {
        try await NetnsLab.with { lab in
            let fw = try firewall(lab)
            defer { fw.shutdown() }
            try await fw.setUp(jails: [Self.sshd])
            var requests: [BanRequest] = []
            for i in 0..<20_000 {
                let v4 = IPAddress(v4: 0xC612_0000 + UInt32(i))  // 198.18.0.0/15 (RFC 2544)
                requests.append(BanRequest(address: v4, jail: "sshd", duration: .timeout(.seconds(3600))))
            }
            requests.append(
                BanRequest(address: ip(NetnsLab.attackerV4), jail: "sshd", duration: .timeout(.seconds(3600))))
            try await fw.ban(requests)
            func kernelCount() async throws -> Int {
                let json = try await lab.nft(["-j", "list", "set", "inet", "portcullis", "addr-set-sshd"])
                return json.components(separatedBy: "\"val\"").count - 1
            }
            #expect(try await kernelCount() == 20_001)
            #expect(try await lab.connect(from: NetnsLab.attackerV4) == .refused)
            #expect(try await fw.activeBanCount() == 20_001)

            try await lab.nft(["flush", "ruleset"])
            #expect(await NetnsLab.eventually { (try? await kernelCount()) == 20_001 })
            #expect(try await lab.connect(from: NetnsLab.attackerV4) == .refused)
        }
    }

    @Test func bansSurviveABackendRestartAndSetUpDropsRemovedJails() async throws {
        try await NetnsLab.with { lab in
            let old = JailFirewall(name: "old-jail", ports: .all, protocols: .all, blockType: .drop)
            let first = try firewall(lab)
            try await first.setUp(jails: [Self.sshd, old])
            try await first.ban([
                BanRequest(address: ip(NetnsLab.attackerV4), jail: "sshd", duration: .timeout(.seconds(600)))
            ])
            first.shutdown()  // crash-like stop: no tearDown

            let second = try firewall(lab)
            defer { second.shutdown() }
            try await second.setUp(jails: [Self.sshd])
            let listed = try await second.list(jail: "sshd")
            #expect(listed.map(\.address) == [ip(NetnsLab.attackerV4)])
            #expect(try await lab.connect(from: NetnsLab.attackerV4) == .refused)
            let ruleset = try await lab.nft(["list", "table", "inet", "portcullis"])
            #expect(!ruleset.contains("old-jail"))
            // The chain has exactly the rules of the current jails (set-up replaced, not appended).
            #expect(ruleset.components(separatedBy: "saddr @").count - 1 == 2)
            // The restarted backend knows the surviving ban: it comes back after a flush.
            try await lab.nft(["flush", "ruleset"])
            #expect(try await NetnsLab.eventually { try await lab.connect(from: NetnsLab.attackerV4) == .refused })
            try await second.tearDown()
            #expect(!(try await lab.nft(["list", "tables"]).contains("portcullis")))
        }
    }

    @Test func setUpAppliesAChangedPriorityAndKeepsTheBans() async throws {
        try await NetnsLab.with { lab in
            let first = try firewall(lab)
            try await first.setUp(jails: [Self.sshd])
            try await first.ban([BanRequest(address: ip(NetnsLab.attackerV4), jail: "sshd", duration: .permanent)])
            first.shutdown()
            let second = try NFTablesFirewall(
                configuration: FirewallConfiguration(priority: -150, networkNamespace: lab.defended))
            defer { second.shutdown() }
            try #require(second.networkNamespace == lab.defended)
            try await second.setUp(jails: [Self.sshd])
            #expect(try await lab.nft(["list", "chain", "inet", "portcullis", "bans"]).contains("priority mangle"))
            #expect(try await lab.connect(from: NetnsLab.attackerV4) == .refused)
            #expect(try await lab.connect(from: NetnsLab.otherV4) == .connected)
        }
    }

    @Test func reloadPutsBackBansTheKernelLostAndDropsRemovedJails() async throws {
        try await NetnsLab.with { lab in
            let fw = try firewall(lab, healthCheck: .seconds(3600))
            defer { fw.shutdown() }
            let web = JailFirewall(name: "web", ports: .ports([PortRange(8022)]))
            try await fw.setUp(jails: [Self.sshd, web])
            try await fw.ban([
                BanRequest(address: ip(NetnsLab.attackerV4), jail: "sshd", duration: .timeout(.seconds(600))),
                BanRequest(address: ip(NetnsLab.otherV4), jail: "web", duration: .permanent),
            ])
            try await lab.nft(["delete", "table", "inet", "portcullis"])
            try await fw.setUp(jails: [Self.sshd])  // reload without the web jail
            #expect(try await lab.connect(from: NetnsLab.attackerV4) == .refused)
            #expect(try await lab.connect(from: NetnsLab.otherV4) == .connected)
            #expect(try await fw.activeBanCount() == 1)
            #expect(try await fw.list(jail: "sshd").map(\.address) == [ip(NetnsLab.attackerV4)])
        }
    }

    @Test func allportsDropAndRebanWithNewTimeout() async throws {
        try await NetnsLab.with(ports: [8022, 8080]) { lab in
            let fw = try firewall(lab)
            defer { fw.shutdown() }
            let recidive = JailFirewall(name: "recidive", ports: .all, protocols: .all, blockType: .drop)
            try await fw.setUp(jails: [Self.sshd, recidive])
            try await fw.ban([
                BanRequest(address: ip(NetnsLab.attackerV4), jail: "recidive", duration: .timeout(.seconds(100)))
            ])
            #expect(try await lab.connect(from: NetnsLab.attackerV4, port: 8080, timeout: 1) == .timeout)
            #expect(try await lab.connect(from: NetnsLab.attackerV4, port: 8022, timeout: 1) == .timeout)
            #expect(try await lab.connect(from: NetnsLab.otherV4, port: 8080) == .connected)
            // Re-ban with a longer timeout: the kernel element now carries the new one.
            try await fw.ban([
                BanRequest(address: ip(NetnsLab.attackerV4), jail: "recidive", duration: .timeout(.seconds(5000)))
            ])
            let listed = try await fw.list(jail: "recidive")
            #expect(listed.map(\.timeout) == [.seconds(5000)])
            // An absurd bantime is capped to a century rather than failing the whole transaction.
            try await fw.ban([
                BanRequest(address: ip("192.0.2.77"), jail: "recidive", duration: .timeout(.seconds(10_000_000_000)))
            ])
            let century = try await fw.list(jail: "recidive").first { $0.address == ip("192.0.2.77") }
            #expect(century?.timeout == NFTRuleset.maximumTimeout)
            try await fw.flush(jail: "recidive")
            #expect(try await fw.list(jail: "recidive").isEmpty)
            #expect(try await lab.connect(from: NetnsLab.attackerV4, port: 8080) == .connected)
        }
    }

    @Test func everyRuleShapeIsAcceptedAndTextAndJSONBuildTheSameKernelRuleset() async throws {
        let jails = [
            Self.sshd,
            JailFirewall(name: "dns", ports: .ports([PortRange(53), PortRange(1000, 2000)]), protocols: .udp),
            JailFirewall(name: "web", ports: .ports([PortRange(80), PortRange(443)]), protocols: .all),
            JailFirewall(name: "recidive", ports: .all, protocols: .all, blockType: .reject),
            JailFirewall(name: "r.drop", ports: .all, protocols: .all, blockType: .drop),
            JailFirewall(name: "tcp_all", ports: .all, protocols: .tcp, blockType: .drop),
            JailFirewall(name: "multi", ports: .all, protocols: ProtocolSelection(protocols: [.udp, .sctp, .dccp])),
        ]
        var listings: [String] = []
        for syntax in [FirewallConfiguration.Syntax.text, .json] {
            try await NetnsLab.with { lab in
                let fw = try firewall(lab, syntax: syntax)
                defer { fw.shutdown() }
                try await fw.setUp(jails: jails)
                try await fw.ban([
                    BanRequest(address: ip(NetnsLab.attackerV4), jail: "recidive", duration: .timeout(.seconds(60))),
                    BanRequest(address: ip(NetnsLab.attackerV6), jail: "web", duration: .permanent),
                ])
                #expect(try await lab.connect(from: NetnsLab.attackerV4) == .refused)
                listings.append(try await lab.nft(["list", "chain", "inet", "portcullis", "bans"]))
            }
        }
        #expect(listings.count == 2)
        #expect(listings.first == listings.last)
        let chain = listings[0]
        #expect(chain.contains("type filter hook input priority filter - 1; policy accept;"))
        #expect(chain.contains("udp dport { 53, 1000-2000 } ip saddr @addr-set-dns reject"))
        #expect(chain.contains("meta l4proto tcp ip6 saddr @addr6-set-recidive reject with tcp reset"))
        #expect(chain.contains("ip6 saddr @addr6-set-r.drop drop"))
        #expect(chain.contains("meta l4proto sctp ip saddr @addr-set-multi reject"))
        #expect(chain.components(separatedBy: "saddr @").count - 1 == 2 * (1 + 1 + 2 + 2 + 1 + 1 + 3))
    }

    @Test func banForwardChainFollowsIpForwardInTheNamespaceAndComesBackAfterAFlush() async throws {
        let web = JailFirewall(name: "web", ports: .ports([PortRange(80), PortRange(443)]), protocols: .all)
        let recidive = JailFirewall(name: "recidive", ports: .all, protocols: .all, blockType: .drop, banForward: .yes)
        var listings: [String] = []
        for syntax in [FirewallConfiguration.Syntax.text, .json] {
            try await NetnsLab.with { lab in
                let fw = try firewall(lab, syntax: syntax)
                defer { fw.shutdown() }
                // Forwarding off: `auto` has no forward chain, `yes` has one.
                try await fw.setUp(jails: [web])
                #expect(!(try await lab.nft(["list", "chains"]).contains("bans-forward")))
                var state = try await fw.forwarding()
                #expect(state.state == ForwardingState(ipv4: false, ipv6: false, docker: false))
                #expect(state.jails.isEmpty)
                try await fw.setUp(jails: [web, recidive])
                #expect(try await fw.forwarding().jails == ["recidive"])
                // Forwarding on (read in the namespace, not the host): `auto` follows at the next set-up.
                _ = try NetnsLab.sh(["ip", "netns", "exec", lab.defended, "sysctl", "-qw", "net.ipv4.ip_forward=1"])
                try await fw.setUp(jails: [web, recidive])
                state = try await fw.forwarding()
                #expect(state.state == ForwardingState(ipv4: true, ipv6: false, docker: false))
                #expect(state.jails == ["web", "recidive"])
                let chain = try await lab.nft(["list", "chain", "inet", "portcullis", "bans-forward"])
                listings.append(chain)
                // The repair after `nft flush ruleset` brings the forward chain back.
                _ = try await lab.nft(["flush", "ruleset"])
                let back = await NetnsLab.eventually(within: .seconds(3)) {
                    (try? await lab.nft(["list", "chain", "inet", "portcullis", "bans-forward"])) == chain
                }
                #expect(back)
                // Turned off again: set-up removes the chain.
                try await fw.setUp(jails: [JailFirewall(name: "web", ports: .all, banForward: .no)])
                #expect(!(try await lab.nft(["list", "chains"]).contains("bans-forward")))
            }
        }
        #expect(listings.count == 2)
        #expect(listings.first == listings.last)
        let chain = listings[0]
        #expect(chain.contains("type filter hook forward priority filter - 1; policy accept;"))
        #expect(chain.contains("tcp dport { 80, 443 } ip saddr @addr-set-web reject with tcp reset"))
        #expect(chain.contains("udp dport { 80, 443 } ip6 saddr @addr6-set-web reject with icmpv6 port-unreachable"))
        #expect(chain.contains("ip6 saddr @addr6-set-recidive drop"))
        #expect(chain.components(separatedBy: "saddr @").count - 1 == 2 * (2 + 1))
    }

    @Test func banUnbanAndFlushRebuildTheTableWhenItVanishedBeforeTheHealthCheckNoticed() async throws {
        try await NetnsLab.with { lab in
            let events = Mutex<[FirewallEvent]>([])
            let fw = try firewall(lab, healthCheck: .seconds(3600)) { e in events.withLock { $0.append(e) } }
            defer { fw.shutdown() }
            try await fw.setUp(jails: [Self.sshd])
            try await fw.ban([BanRequest(address: ip(NetnsLab.otherV6), jail: "sshd", duration: .permanent)])
            try await lab.nft(["flush", "ruleset"])
            try await fw.ban([
                BanRequest(address: ip(NetnsLab.attackerV4), jail: "sshd", duration: .timeout(.seconds(600)))
            ])
            #expect(try await lab.connect(from: NetnsLab.attackerV4) == .refused)
            #expect(try await lab.connect(from: NetnsLab.otherV6) == .refused)
            #expect(events.withLock { $0.count } == 1)

            try await lab.nft(["delete", "table", "inet", "portcullis"])
            try await fw.unban([BanKey(address: ip(NetnsLab.otherV6), jail: "sshd")])
            #expect(try await lab.connect(from: NetnsLab.otherV6) == .connected)
            #expect(try await lab.connect(from: NetnsLab.attackerV4) == .refused)

            try await lab.nft(["flush", "chain", "inet", "portcullis", "bans"])
            try await fw.flush(jail: "sshd")
            #expect(events.withLock { $0.count } == 2)  // flush of the sets worked; the chain is repaired later
            #expect(try await fw.list(jail: "sshd").isEmpty)
        }
    }

    @Test func errorsAreClear() async throws {
        try await NetnsLab.with { lab in
            // No health check during this test: it would repair the sabotage below.
            let fw = try firewall(lab, healthCheck: .seconds(3600))
            defer { fw.shutdown() }
            try await fw.setUp(jails: [Self.sshd])
            do {
                try await fw.ban([BanRequest(address: ip(NetnsLab.attackerV4), jail: "nope", duration: .permanent)])
                Issue.record("expected an error")
            } catch let error as FirewallError {
                #expect(error.code == .unknownJail)
            }
            // Someone replaces our IPv4 set with an IPv6 one of the same name (the table still looks intact):
            // libnftables' message comes through.
            try await lab.nft(["delete", "rule", "inet", "portcullis", "bans", "handle", try await ruleHandle(lab)])
            try await lab.nft(["delete", "set", "inet", "portcullis", "addr-set-sshd"])
            try await lab.nft(["add", "set", "inet", "portcullis", "addr-set-sshd", "{ type ipv6_addr; }"])
            try await lab.nft(["add", "rule", "inet", "portcullis", "bans", "ip6", "saddr", "@addr-set-sshd", "drop"])
            do {
                try await fw.ban([BanRequest(address: ip(NetnsLab.attackerV4), jail: "sshd", duration: .permanent)])
                Issue.record("expected an error")
            } catch let error as FirewallError {
                #expect(error.code == .nftables)
                #expect(error.underlying?.message.isEmpty == false)
                #expect(error.description.contains("addr-set-sshd"))
            }
        }
        try await NetnsLab.with { lab in
            let stopped = try firewall(lab)
            stopped.shutdown()
            do {
                try await stopped.setUp(jails: [Self.sshd])
                Issue.record("expected an error")
            } catch let error as FirewallError {
                #expect(error.code == .stopped)
            }
        }
        do {
            _ = try NFTablesFirewall(configuration: FirewallConfiguration(networkNamespace: "pcl-fw-does-not-exist"))
            Issue.record("expected an error")
        } catch {
            #expect(error.code == .networkNamespace)
            #expect(error.message.contains("/run/netns/pcl-fw-does-not-exist"))
        }
        #expect(throws: FirewallError.self) {
            try NFTablesFirewall(configuration: FirewallConfiguration(tableName: "bad name", networkNamespace: "x"))
        }
    }

    /// The handle of the IPv4 rule (the one referencing addr-set-sshd).
    func ruleHandle(_ lab: NetnsLab) async throws -> String {
        let listing = try await lab.nft(["-a", "list", "chain", "inet", "portcullis", "bans"])
        let line = try #require(listing.split(separator: "\n").first { $0.contains("@addr-set-sshd") })
        return String(try #require(line.split(separator: " ").last))
    }
}
