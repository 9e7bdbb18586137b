import Core
import Testing

@testable import Jail

/// The prefix escalation policy as a state machine with an injected clock: K different addresses of one prefix
/// banned within findtime ban the prefix.
@Suite struct PrefixEscalationTests {
    func jail(
        prefix: PrefixPolicy = PrefixPolicy(prefix4: 32, prefix6: 64, bans: 3), findTime: Double = 600
    ) throws
        -> JailState
    {
        var policy = BanPolicy(maxRetry: 1, findTime: findTime, banTime: 3600)
        policy.prefix = prefix
        return JailState(name: "sshd", policy: policy, ignore: try IgnoreList(entries: ["2001:db8:ffff::/48"]))
    }

    /// Records one failure (maxretry 1: a ban), notes it, and asks for escalation, as the coordinator does.
    func ban(_ j: inout JailState, _ text: String, at now: Double) -> PrefixBanDecision? {
        guard case .ban(let d) = j.record(FailureEvent(address: IPAddress(text)!, time: now), now: now) else {
            return nil
        }
        j.noteBanned(d.address, until: d.end)
        return j.escalation(after: d, now: now)
    }

    @Test func defaultsAreIPv6SlashSixtyFourAfterThreeAndNeverIPv4() {
        let p = PrefixPolicy.defaults
        #expect(p.prefix6 == 64 && p.prefix4 == 32 && p.bans == 3)
        #expect(p.prefix(of: IPAddress("2001:db8:1:2::7")!) == Subnet("2001:db8:1:2::/64"))
        #expect(p.prefix(of: IPAddress("192.0.2.7")!) == nil)
        #expect(PrefixPolicy(bans: 0).prefix(of: IPAddress("2001:db8::1")!) == nil)
    }

    @Test func thirdAddressInTheSlashSixtyFourBansThePrefix() throws {
        var j = try jail()
        #expect(ban(&j, "2001:db8:1:2::1", at: 1000) == nil)
        // Another /64 does not count towards this one.
        #expect(ban(&j, "2001:db8:1:3::1", at: 1001) == nil)
        #expect(ban(&j, "2001:db8:1:2::2", at: 1002) == nil)
        let p = try #require(ban(&j, "2001:db8:1:2:ffff::3", at: 1003))
        #expect(p.prefix == Subnet("2001:db8:1:2::/64"))
        #expect(p.duration == 3600 && p.start == 1003 && p.end == 4603)
        #expect(p.addresses.map(\.description) == ["2001:db8:1:2::1", "2001:db8:1:2::2", "2001:db8:1:2:ffff::3"])
        j.noteBanned(prefix: p.prefix, until: p.end)
        // Any address in it is now banned: its failures are not counted towards a ban of its own.
        let fresh = IPAddress("2001:db8:1:2:abcd::9")!
        #expect(j.isBanned(fresh, now: 1004))
        #expect(j.record(FailureEvent(address: fresh, time: 1004), now: 1004) == .alreadyBanned)
        #expect(j.bannedPrefix(covering: fresh, now: 1004) == p.prefix)
        #expect(j.bannedPrefix(covering: IPAddress("2001:db8:1:3::1")!, now: 1004) == nil)
        #expect(j.bannedPrefixes(now: 1004) == [p.prefix])
        // Its end is reported once by the purge.
        #expect(j.purgePrefixes(now: 4602).isEmpty)
        #expect(j.purgePrefixes(now: 4603) == [p.prefix])
        #expect(j.purgePrefixes(now: 4604).isEmpty)
        #expect(!j.isBanned(fresh, now: 4604))
    }

    @Test func bansOutsideFindTimeDoNotCount() throws {
        var j = try jail(findTime: 600)
        #expect(ban(&j, "2001:db8:1:2::1", at: 1000) == nil)
        #expect(ban(&j, "2001:db8:1:2::2", at: 1500) == nil)
        // 1000 is more than findtime before 1601: only two bans in the window.
        #expect(ban(&j, "2001:db8:1:2::3", at: 1601) == nil)
        #expect(ban(&j, "2001:db8:1:2::4", at: 1700) != nil)
    }

    @Test func theSameAddressBannedAgainCountsOnce() throws {
        var j = try jail(findTime: 100_000)
        var policy = j.policy
        policy.banTime = 10
        j.policy = policy
        #expect(ban(&j, "2001:db8:1:2::1", at: 1000) == nil)
        #expect(ban(&j, "2001:db8:1:2::1", at: 1020) == nil)  // its first ban ended at 1010
        #expect(ban(&j, "2001:db8:1:2::1", at: 1040) == nil)
        #expect(ban(&j, "2001:db8:1:2::2", at: 1060) == nil)
        #expect(ban(&j, "2001:db8:1:2::3", at: 1080) != nil)
    }

    @Test func ipv4BlocksEscalateWhenConfigured() throws {
        var j = try jail(prefix: PrefixPolicy(prefix4: 24, prefix6: 64, bans: 2))
        #expect(ban(&j, "198.51.100.7", at: 1000) == nil)
        #expect(ban(&j, "203.0.113.7", at: 1001) == nil)
        #expect(ban(&j, "198.51.100.200", at: 1002)?.prefix == Subnet("198.51.100.0/24"))
    }

    @Test func offMeansNeverAndIgnoredAddressesAreNeverCounted() throws {
        var off = try jail(prefix: PrefixPolicy(bans: 0))
        for i in 1...10 { #expect(ban(&off, "2001:db8:1:2::\(i)", at: 1000 + Double(i)) == nil) }
        var j = try jail()
        for i in 1...5 {
            // ignoreip 2001:db8:ffff::/48: never banned, so never counted.
            #expect(
                j.record(FailureEvent(address: IPAddress("2001:db8:ffff:1::\(i)")!, time: 1000), now: 1000)
                    != .ban(
                        BanDecision(
                            address: IPAddress("2001:db8:ffff:1::\(i)")!, start: 1000, duration: 3600, failures: 1,
                            matches: [], previousBans: 0)))
        }
        #expect(j.bannedPrefixes(now: 1001).isEmpty)
    }

    @Test func noEscalationOverAnOverlappingBannedNetwork() throws {
        var j = try jail()
        // A /48 banned earlier (say with prefix6 = 48 before a reload) covers this /64.
        j.noteBanned(prefix: Subnet("2001:db8:1::/48")!, until: 5000)
        var decision = BanDecision(
            address: IPAddress("2001:db8:1:2::1")!, start: 1000, duration: 600, failures: 1, matches: [],
            previousBans: 0)
        #expect(j.escalation(after: decision, now: 1000) == nil)
        decision.address = IPAddress("2001:db8:1:2::2")!
        #expect(j.escalation(after: decision, now: 1001) == nil)
        decision.address = IPAddress("2001:db8:1:2::3")!
        #expect(j.escalation(after: decision, now: 1002) == nil)
        #expect(j.bannedPrefixes(now: 1003) == [Subnet("2001:db8:1::/48")!])
    }

    @Test func unbanAndUnbanAllAndTotals() throws {
        var j = try jail()
        let p = Subnet("2001:db8:1:2::/64")!
        j.noteBanned(prefix: p, until: nil)
        #expect(j.totalBanned == 1)
        #expect(j.isBanned(IPAddress("2001:db8:1:2::5")!, now: 1e9))  // permanent
        let first = j.noteUnbanned(prefix: p)
        let second = j.noteUnbanned(prefix: p)
        #expect(first && !second)
        #expect(!j.isBanned(IPAddress("2001:db8:1:2::5")!, now: 0))
        j.noteBanned(prefix: p, until: 100)
        j.noteBanned(prefix: Subnet("2001:db8:9:9::/64")!, until: 100)
        #expect(Set(j.unbanAllPrefixes()) == [p, Subnet("2001:db8:9:9::/64")!])
        #expect(j.bannedPrefixes(now: 0).isEmpty)
    }
}
