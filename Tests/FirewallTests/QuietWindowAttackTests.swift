import Core
import Firewall
import Foundation
import PortcullisTestKit
import Testing

/// Attacks on the quiet window: a transaction of more than 2,000 elements runs with the notification group left,
/// and another process's commits meanwhile are found by the nf_tables generation count. Above 20,000 bans the
/// periodic full check is off, so the notifications (and the generation count) are the only way a deleted ban
/// comes back. The periodic checks are switched off here (as in `SetRefillTests`).
@Suite(.serialized, .blocking, .enabled(if: NetnsLab.isRoot, "needs root for network namespaces"))
struct QuietWindowAttackTests {
    typealias Events = SetRefillTests.Events

    func ip(_ s: String) -> IPAddress { IPAddress(s)! }

    func backend(_ lab: NetnsLab, events: Events) throws -> NFTablesFirewall {
        try SetRefillTests().backend(lab, events: events)
    }

    func missing(_ fw: NFTablesFirewall, _ wanted: [IPAddress]) async throws -> Set<IPAddress> {
        Set(wanted).subtracting(try await fw.list(jail: "sshd").map(\.address))
    }

    /// More than 20,000 bans (no periodic full check): one deleted element, a flushed small set and the flushed
    /// large set all come back within a second, from the notifications alone.
    @Test func deletionsAboveTheFullCheckLimitComeBackWithinASecond() async throws {
        try await NetnsLab.with { lab in
            let events = Events()
            let fw = try backend(lab, events: events)
            defer { fw.shutdown() }
            try await fw.setUp(jails: [SetRefillTests.sshd])
            let many = (0..<25000).map { IPAddress(v6High: 0x2001_0db8_0002_0000, low: UInt64($0)) }
            let few = (10..<20).map { ip("192.0.2.\($0)") }
            try await fw.ban((many + few).map { BanRequest(address: $0, jail: "sshd", duration: .permanent) })
            #expect(try await fw.activeBanCount() == 25010)

            try await lab.nft(["delete", "element", "inet", "portcullis", "addr6-set-sshd", "{ 2001:db8:2::77 }"])
            let single = try await NetnsLab.eventually(within: .seconds(1)) {
                try await missing(fw, many + few).isEmpty
            }
            #expect(single, "a deleted element of a 25,000-element set did not come back")

            try await lab.nft(["flush", "set", "inet", "portcullis", "addr-set-sshd"])
            let small = try await NetnsLab.eventually(within: .seconds(1)) {
                try await missing(fw, many + few).isEmpty
            }
            #expect(small, "a flushed small set was not refilled")

            try await lab.nft(["flush", "set", "inet", "portcullis", "addr6-set-sshd"])
            let large = try await NetnsLab.eventually(within: .seconds(2)) {
                try await missing(fw, many + few).isEmpty
            }
            let left = try await missing(fw, many + few).count
            #expect(large, "a flushed 25,000-element set was not refilled: \(left) missing")
        }
    }

    /// Another process commits transactions that each delete one of our bans (a different one each time) and do a
    /// lot of other work in the same commit, so the time between the kernel counting its generation and sending
    /// its notifications is long. A large own ban that leaves the notification group in that time must not lose
    /// the deletion: neither its notifications (dropped, the group left) nor the generation count (read after the
    /// other commit counted itself) would tell.
    @Test func aForeignCommitStraddlingTheStartOfAQuietBanIsNotLost() async throws {
        try await NetnsLab.with { lab in
            let events = Events()
            let fw = try backend(lab, events: events)
            defer { fw.shutdown() }
            try await fw.setUp(jails: [SetRefillTests.sshd])
            // 60 bans the other process deletes one by one.
            let targets = (0..<60).map { IPAddress(v4: 0xC633_6400 | UInt32($0)) }  // 198.51.100.0-249
            try await fw.ban(targets.map { BanRequest(address: $0, jail: "sshd", duration: .permanent) })
            let dir = FileManager.default.temporaryDirectory
                .appendingPathComponent("pcl-aq-\(getpid())-\(lab.defended)")
            try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
            defer { try? FileManager.default.removeItem(at: dir) }
            // Its own table: a set refilled with 5,000 elements in every commit (a long commit).
            var bulk = "add table inet others\nadd set inet others s { type ipv6_addr; }\nflush set inet others s\n"
            bulk += "add element inet others s { "
            bulk += (0..<5000).map { "2001:db8:ff::\(String($0, radix: 16))" }.joined(separator: ", ")
            bulk += " }\n"
            try bulk.write(to: dir.appendingPathComponent("bulk.nft"), atomically: true, encoding: .utf8)
            let script =
                "i=0; while [ $i -lt 60 ]; do printf 'include \"\(dir.path)/bulk.nft\"\\n"
                + "delete element inet portcullis addr-set-sshd { 198.51.100.%d }\\n' $i | nft -f -; i=$((i+1)); done"
            let others = try lab.background(script)
            // Large own bans all the while.
            var own: [IPAddress] = []
            var round: UInt64 = 0
            while others.isRunning {
                let chunk = (0..<2500).map { IPAddress(v6High: 0x2001_0db8_0003_0000 | round, low: UInt64($0)) }
                own += chunk
                try await fw.ban(chunk.map { BanRequest(address: $0, jail: "sshd", duration: .permanent) })
                round += 1
            }
            others.waitUntilExit()
            #expect(others.terminationStatus == 0)
            let back = try await NetnsLab.eventually(within: .seconds(2)) {
                try await missing(fw, targets + own).isEmpty
            }
            let lost = try await missing(fw, targets + own)
            #expect(back, "\(lost.count) bans lost after \(round) large bans, e.g. \(lost.sorted().prefix(5))")
        }
    }

    /// Another process commits all the time (harmless commits to its own table, as a container runtime or another
    /// firewall manager does): every large own transaction then counts as missed and every ban is added again
    /// (up to three times after each ban, and at each tick). That must neither lose a ban nor keep the backend
    /// from applying new ones; the printed figures say what it costs.
    @Test func aForeignProcessCommittingAllTheTimeStarvesNoBan() async throws {
        try await NetnsLab.with { lab in
            let events = Events()
            let fw = try backend(lab, events: events)
            defer { fw.shutdown() }
            try await fw.setUp(jails: [SetRefillTests.sshd])
            let many = (0..<25000).map { IPAddress(v6High: 0x2001_0db8_0004_0000, low: UInt64($0)) }
            try await fw.ban(many.map { BanRequest(address: $0, jail: "sshd", duration: .permanent) })
            let others = try lab.background("while :; do nft add table inet churn; nft delete table inet churn; done")
            defer { if others.isRunning { others.terminate() } }
            let clock = ContinuousClock()
            var singles: [IPAddress] = []
            var slowest = Duration.zero
            let started = clock.now
            for i in 0..<20 {
                let a = IPAddress(v4: 0xCB00_7100 | UInt32(i))  // 203.0.113.i
                let t0 = clock.now
                try await fw.ban([BanRequest(address: a, jail: "sshd", duration: .permanent)])
                slowest = max(slowest, t0.duration(to: clock.now))
                singles.append(a)
                // One large ban now and then: its quiet window sees the others' commits.
                if i % 5 == 0 {
                    let chunk = (0..<2500).map { IPAddress(v6High: 0x2001_0db8_0005_0000, low: UInt64(i * 10000 + $0)) }
                    try await fw.ban(chunk.map { BanRequest(address: $0, jail: "sshd", duration: .permanent) })
                    singles += chunk
                }
                try await Task.sleep(for: .milliseconds(100))
            }
            let total = started.duration(to: clock.now)
            let repairs = events.withLock { list in
                list.filter { if case .missedWhileQuiet = $0 { true } else { false } }.count
            }
            print("churn: 20 single bans beside 25,000 in \(total), slowest \(slowest), \(repairs) repairs")
            // Stopped before the check: while it commits, libnftables restarts every interrupted dump of the large
            // set, so no listing completes.
            others.terminate()
            others.waitUntilExit()
            let back = try await NetnsLab.eventually(within: .seconds(2)) {
                try await missing(fw, many + singles).isEmpty
            }
            let lost = try await missing(fw, many + singles)
            #expect(back, "\(lost.count) bans missing")
            // One repair per large own ban at most: a repair does not itself count as missed again.
            #expect(repairs <= 4, "\(repairs) repairs for 4 large bans")
        }
    }
}
