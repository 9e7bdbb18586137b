import Core
import Firewall
import Foundation
import PortcullisTestKit
import Synchronization
import Testing

/// Bans deleted from the kernel by someone else (`nft flush set`, `nft delete element`) come back within a
/// second, noticed from the kernel's change notifications (the periodic health check is switched off here, so
/// only the notifications can bring them back), with an event naming what was restored.
@Suite(.serialized, .blocking, .enabled(if: NetnsLab.isRoot, "needs root for network namespaces"))
struct SetRefillTests {
    static let sshd = NFTablesFirewallIntegrationTests.sshd
    let v4 = ["192.0.2.2", "192.0.2.20", "192.0.2.21"]
    let v6 = ["2001:db8::2", "2001:db8::20"]

    func ip(_ s: String) -> IPAddress { IPAddress(s)! }

    /// The backend's events, in order.
    final class Events: Sendable {
        let list = Mutex<[FirewallEvent]>([])
        func withLock<T: Sendable>(_ body: (inout [FirewallEvent]) -> T) -> T { list.withLock { body(&$0) } }
    }

    /// A backend whose only repair path is the notifications.
    func backend(_ lab: NetnsLab, events: Events) throws -> NFTablesFirewall {
        let fw = try NFTablesFirewall(
            configuration: FirewallConfiguration(
                networkNamespace: lab.defended, healthCheckInterval: .seconds(3600), fullCheckInterval: .seconds(3600)),
            onEvent: { e in events.withLock { $0.append(e) } })
        try #require(fw.networkNamespace == lab.defended)
        return fw
    }

    func elements(_ lab: NetnsLab, _ set: String) async throws -> String {
        try await lab.nft(["list", "set", "inet", "portcullis", set])
    }

    /// True when every address is listed within one second of now.
    func backWithinASecond(_ lab: NetnsLab, _ set: String, _ addresses: [String]) async throws -> Bool {
        try await NetnsLab.eventually(within: .seconds(1)) {
            let listing = try await elements(lab, set)
            return addresses.allSatisfy { listing.contains($0) }
        }
    }

    func refilled(_ events: Events) -> [Set<IPAddress>] {
        events.withLock { list in
            list.compactMap { if case .refilled(_, let a, _, _) = $0 { Set(a) } else { nil } }
        }
    }

    @Test func flushedSetAndDeletedElementsComeBackWithinASecond() async throws {
        try await NetnsLab.with { lab in
            let events = Events()
            let fw = try backend(lab, events: events)
            defer { fw.shutdown() }
            try await fw.setUp(jails: [Self.sshd])
            try await fw.ban(
                v4.map { BanRequest(address: ip($0), jail: "sshd", duration: .timeout(.seconds(600))) }
                    + v6.map { BanRequest(address: ip($0), jail: "sshd", duration: .permanent) })
            #expect(try await lab.connect(from: NetnsLab.attackerV4) == .refused)

            // 1. The whole IPv4 set flushed.
            try await lab.nft(["flush", "set", "inet", "portcullis", "addr-set-sshd"])
            #expect(try await backWithinASecond(lab, "addr-set-sshd", v4))
            #expect(try await lab.connect(from: NetnsLab.attackerV4) == .refused)
            #expect(refilled(events).last == Set(v4.map(ip)))
            // The timeout put back is the remaining one, not a fresh 600 s, and not permanent.
            let listed = try await fw.list(jail: "sshd")
            let entry = try #require(listed.first { $0.address == ip(v4[0]) })
            #expect(entry.timeout.map { $0 <= .seconds(600) && $0 > .seconds(500) } == true)

            // 2. Single elements deleted, one command each.
            try await lab.nft(["delete", "element", "inet", "portcullis", "addr-set-sshd", "{ \(v4[1]) }"])
            #expect(try await backWithinASecond(lab, "addr-set-sshd", v4))
            #expect(refilled(events).last == [ip(v4[1])])

            // 3. One element of the IPv6 set; the other one was never gone.
            try await lab.nft(["delete", "element", "inet", "portcullis", "addr6-set-sshd", "{ \(v6[0]) }"])
            #expect(try await backWithinASecond(lab, "addr6-set-sshd", v6))
            #expect(refilled(events).last == [ip(v6[0])])
            #expect(try await lab.connect(from: NetnsLab.attackerV6) == .refused)

            // The log line says what was restored.
            let line = events.withLock { $0.last?.description ?? "" }
            #expect(line.contains("[sshd] 1 active bans were deleted from the kernel"))
            #expect(line.contains("2001:db8::2"))
            #expect(events.withLock { $0.count } == 3)
        }
    }

    @Test func ownUnbansAndFlushesAreNotUndone() async throws {
        try await NetnsLab.with { lab in
            let events = Events()
            let fw = try backend(lab, events: events)
            defer { fw.shutdown() }
            try await fw.setUp(jails: [Self.sshd])
            try await fw.ban(v4.map { BanRequest(address: ip($0), jail: "sshd", duration: .permanent) })
            try await fw.unban([BanKey(address: ip(v4[0]), jail: "sshd")])
            // A re-ban replaces the timeout by delete + add in one transaction: not a foreign deletion either.
            try await fw.ban([BanRequest(address: ip(v4[1]), jail: "sshd", duration: .timeout(.seconds(300)))])
            try await fw.flush(jail: "sshd")
            // Give a wrong refill time to happen: a foreign change afterwards is handled, so the earlier ones were read.
            try await fw.ban([BanRequest(address: ip(v4[2]), jail: "sshd", duration: .permanent)])
            try await lab.nft(["delete", "element", "inet", "portcullis", "addr-set-sshd", "{ \(v4[2]) }"])
            #expect(try await backWithinASecond(lab, "addr-set-sshd", [v4[2]]))
            let listing = try await elements(lab, "addr-set-sshd")
            #expect(!listing.contains(v4[0] + ","), "unbanned address came back")
            #expect(!listing.contains(v4[0] + " "), "unbanned address came back")
            #expect(!listing.contains(v4[1]), "flushed address came back")
            #expect(refilled(events) == [[ip(v4[2])]])
        }
    }

    /// A large own transaction runs with the notifications left (the kernel would build one per element, three
    /// times the transaction's own kernel time). Another process deleting a ban and committing all the while is
    /// caught by the generation count: the table is checked and every ban added again, so in the end, within a
    /// second of the others stopping, every ban is in the kernel, the small transactions' notifications still work,
    /// and the repair was reported.
    @Test func foreignCommitsDuringALargeBanAreFoundAndRepaired() async throws {
        try await NetnsLab.with { lab in
            let events = Events()
            let fw = try backend(lab, events: events)
            defer { fw.shutdown() }
            try await fw.setUp(jails: [Self.sshd])
            try await fw.ban([BanRequest(address: ip(v4[0]), jail: "sshd", duration: .permanent)])
            let others = try lab.background(
                "while :; do nft delete element inet portcullis addr-set-sshd '{ \(v4[0]) }' 2>/dev/null;"
                    + " nft add table inet others; nft delete table inet others; done")
            let many = (0..<40000).map { IPAddress(v6High: 0x2001_0db8_0001_0000, low: UInt64($0)) }
            for chunk in stride(from: 0, to: many.count, by: 10000) {
                try await fw.ban(
                    many[chunk..<(chunk + 10000)].map { BanRequest(address: $0, jail: "sshd", duration: .permanent) })
            }
            others.terminate()
            others.waitUntilExit()
            #expect(try await backWithinASecond(lab, "addr-set-sshd", [v4[0]]))
            let listed = try await fw.list(jail: "sshd")
            let missing = Set(many + [ip(v4[0])]).subtracting(listed.map(\.address))
            #expect(missing.isEmpty, "\(missing.count) bans missing from the kernel, e.g. \(missing.prefix(3))")
            #expect(listed.count == many.count + 1)
            #expect(events.withLock { $0 }.contains { if case .missedWhileQuiet = $0 { true } else { false } })
            // Back to notifications after the large bans: a single deletion is refilled from them.
            try await lab.nft(["delete", "element", "inet", "portcullis", "addr6-set-sshd", "{ 2001:db8:1::7 }"])
            let back = try await NetnsLab.eventually(within: .seconds(1)) {
                try await fw.list(jail: "sshd").contains { $0.address == ip("2001:db8:1::7") }
            }
            #expect(back)
            #expect(refilled(events).last == [ip("2001:db8:1::7")])
        }
    }

    @Test func deletedTableIsRebuiltAtOnceWithoutTheHealthCheck() async throws {
        try await NetnsLab.with { lab in
            let events = Events()
            let fw = try backend(lab, events: events)
            defer { fw.shutdown() }
            try await fw.setUp(jails: [Self.sshd])
            try await fw.ban([BanRequest(address: ip(v4[0]), jail: "sshd", duration: .permanent)])
            try await lab.nft(["delete", "table", "inet", "portcullis"])
            #expect(try await backWithinASecond(lab, "addr-set-sshd", [v4[0]]))
            #expect(events.withLock { $0 }.contains { if case .restored(bans: 1, _) = $0 { true } else { false } })
        }
    }

    /// A rule someone else adds to the chain (an `accept` before the bans) or a ban rule replaced by one that
    /// accepts makes every ban void while the sets look full: the table is rebuilt, as for a deleted rule.
    @Test func foreignAcceptRulesInTheChainAreRemovedWithinASecond() async throws {
        try await NetnsLab.with { lab in
            let events = Events()
            let fw = try backend(lab, events: events)
            defer { fw.shutdown() }
            try await fw.setUp(jails: [Self.sshd])
            try await fw.ban([BanRequest(address: ip(NetnsLab.attackerV4), jail: "sshd", duration: .permanent)])
            #expect(try await lab.connect(from: NetnsLab.attackerV4) == .refused)
            func chainClean() async throws -> Bool {
                try await NetnsLab.eventually(within: .seconds(1)) {
                    let chain = try await lab.nft(["list", "chain", "inet", "portcullis", "bans"])
                    return !chain.contains("accept\n") && !chain.contains(" accept ")
                        && chain.contains("reject with tcp reset")
                }
            }

            // 1. An accept rule inserted at the head of the chain.
            try await lab.nft(["insert", "rule", "inet", "portcullis", "bans", "accept"])
            #expect(try await chainClean(), "foreign accept rule left in place")
            #expect(try await lab.connect(from: NetnsLab.attackerV4) == .refused)

            // 2. The ban rule's verdict replaced (same match, accept).
            let listing = try await lab.nft(["-a", "list", "chain", "inet", "portcullis", "bans"])
            let handle = try #require(
                listing.split(separator: "\n").first { $0.contains("ip saddr @addr-set-sshd") }?
                    .split(separator: " ").last.map(String.init))
            try await lab.nft([
                "replace", "rule", "inet", "portcullis", "bans", "handle", handle, "tcp", "dport", "22", "ip", "saddr",
                "@addr-set-sshd", "accept",
            ])
            #expect(try await chainClean(), "ban rule replaced by accept left in place")
            #expect(try await lab.connect(from: NetnsLab.attackerV4) == .refused)
        }
    }
}
