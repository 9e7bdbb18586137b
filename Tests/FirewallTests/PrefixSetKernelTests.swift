import Core
import Firewall
import Foundation
import Testing

/// Prefix bans in the real kernel (interval sets), inside ``NetnsLab`` namespaces.
@Suite(.serialized, .blocking, .enabled(if: NetnsLab.isRoot, "needs root for network namespaces"))
struct PrefixSetKernelTests {
    static let sshd = JailFirewall(
        name: "sshd", ports: .ports([PortRange(8022)]), protocols: .tcp, blockType: .reject, prefixSets: true)

    func firewall(_ lab: NetnsLab, syntax: FirewallConfiguration.Syntax) throws -> NFTablesFirewall {
        let fw = try NFTablesFirewall(
            configuration: FirewallConfiguration(
                syntax: syntax, networkNamespace: lab.defended, healthCheckInterval: .milliseconds(100),
                fullCheckInterval: .milliseconds(300)))
        try #require(fw.networkNamespace == lab.defended)
        return fw
    }

    @Test(arguments: [FirewallConfiguration.Syntax.text, .json])
    func aPrefixBanRefusesEveryAddressInsideAndItsUnbanLetsThemBack(
        syntax: FirewallConfiguration.Syntax
    )
        async throws
    {
        try await NetnsLab.with(ports: [8022]) { lab in
            let fw = try firewall(lab, syntax: syntax)
            defer { fw.shutdown() }
            try await fw.setUp(jails: [Self.sshd])
            let sets = try await lab.nft(["list", "set", "inet", "portcullis", "net6-set-sshd"])
            #expect(sets.contains("flags interval,timeout"))
            #expect(try await lab.connect(from: NetnsLab.attackerV6) == .connected)

            // An address ban of one attacker and a prefix ban of the whole /64 coexist (different sets).
            let prefix = BanRequest(
                address: IPAddress(NetnsLab.attackerV6)!, jail: "sshd", duration: .timeout(.seconds(600)),
                scope: .prefix(64))
            try await fw.ban([
                BanRequest(address: IPAddress(NetnsLab.attackerV6)!, jail: "sshd", duration: .timeout(.seconds(600))),
                prefix,
            ])
            #expect(try await lab.connect(from: NetnsLab.attackerV6) == .refused)
            #expect(try await lab.connect(from: NetnsLab.otherV6) == .refused)
            #expect(try await lab.connect(from: NetnsLab.attackerV4) == .connected)
            let listed = try await lab.nft(["list", "set", "inet", "portcullis", "net6-set-sshd"])
            #expect(listed.contains("2001:db8::/64 timeout 10m"))

            // Banned again: the timeout is replaced, no overlap error.
            try await fw.ban([prefix])

            // Flushing the ruleset: the table comes back with the prefix ban.
            _ = try await lab.nft(["flush", "ruleset"])
            var healed = false
            for _ in 0..<50 where !healed {
                try await Task.sleep(for: .milliseconds(100))
                healed =
                    (try? await lab.nft(["list", "set", "inet", "portcullis", "net6-set-sshd"]))?
                    .contains("2001:db8::/64") ?? false
            }
            #expect(healed)
            #expect(try await lab.connect(from: NetnsLab.otherV6) == .refused)

            // Lifting the prefix lets the other address back; the attacker's own ban stays.
            try await fw.unban([prefix.key])
            #expect(try await lab.connect(from: NetnsLab.otherV6) == .connected)
            #expect(try await lab.connect(from: NetnsLab.attackerV6) == .refused)
            // Unbanning it again is harmless (already gone).
            try await fw.unban([prefix.key])
            try await fw.tearDown()
        }
    }
}
