import Core
import Testing

@testable import Jail

/// What fail2ban-client's runtime commands rely on in the jail's state: ban order, ban times, prolonged bans,
/// failures of banned addresses, and the ignore list's edits and listing.
@Suite struct RuntimeStateTests {
    let a = IPAddress("192.0.2.10")!
    let b = IPAddress("192.0.2.2")!
    let c = IPAddress("2001:db8::7")!

    func jail(_ policy: BanPolicy = BanPolicy(maxRetry: 3, findTime: 600, banTime: 3600)) -> JailState {
        JailState(name: "sshd", policy: policy, ignore: IgnoreList())
    }

    @Test("bans are listed in the order they were made; by end for `get JAIL banip`")
    func banOrder() {
        var j = jail()
        j.noteBanned(a, until: 5000, since: 1000)
        j.noteBanned(c, until: nil, since: 1001)
        j.noteBanned(b, until: 4000, since: 1002)
        #expect(j.bannedAddresses == [a, c, b])
        #expect(j.bansByEnd.map(\.address) == [b, a, c])
        // Noting a ban again keeps its place and its start.
        j.noteBanned(a, until: 6000)
        #expect(j.bannedAddresses == [a, c, b])
        #expect(j.ban(of: a)?.start == 1000)
        #expect(j.ban(of: a)?.duration == 5000)
        #expect(j.ban(of: c)?.duration == -1)
        #expect(j.totalBanned == 3)
    }

    @Test("a repeated ban prolongs the ban in force (never a permanent one), which then keeps its own length")
    func prolong() {
        var j = jail()
        j.noteBanned(a, until: 4600, since: 1000)
        let earlier = j.prolong(a, at: 900)  // would end earlier
        #expect(earlier == nil)
        let p = j.prolong(a, at: 1500)
        #expect(p?.end == 5100)
        #expect(p?.start == 1000)
        #expect(p?.hasOwnLength == true)
        j.noteBanned(c, until: nil, since: 1000)
        let permanent = j.prolong(c, at: 9000)
        let notBanned = j.prolong(b, at: 1000)
        #expect(permanent == nil && notBanned == nil)
    }

    @Test("failures of a banned address count in Currently failed; maxretry again prolongs the ban")
    func bannedAddressFailures() {
        var j = jail()
        j.noteBanned(a, until: 4600, since: 1000)
        let first = j.record(FailureEvent(address: a, time: 1100), now: 1100)
        #expect(first == .alreadyBanned)
        #expect(j.currentlyFailed == 1)
        let second = j.record(FailureEvent(address: a, time: 1200), now: 1200)
        let third = j.record(FailureEvent(address: a, time: 1300), now: 1300)
        #expect(second == .alreadyBanned && third == .prolonged(a, end: 4900))
        #expect(j.currentlyFailed == 0)
        #expect(j.totalFailed == 3)
        #expect(j.totalBanned == 1)
    }

    @Test("a failure reported by hand (`attempt`) counts its matches toward maxretry and once in the total")
    func attemptCountsOnce() {
        var j = jail()
        var e = FailureEvent(address: a, time: 1000, attempts: 3)
        e.countsOnce = true
        guard case .ban = j.record(e, now: 1000) else {
            Issue.record("three attempts reach maxretry 3")
            return
        }
        #expect(j.totalFailed == 1)
    }

    @Test("ignoreip edits: fail2ban's text and order, duplicates left out, removal by the same network")
    func ignoreListEdits() throws {
        var list = try IgnoreList(entries: ["127.0.0.1/8 ::1", "198.51.100.0/255.255.255.0"])
        #expect(list.entries == ["127.0.0.0/8", "198.51.100.0/24", "::1"])
        let added = list.add("203.0.113.0/24")
        let duplicate = list.add("203.0.113.9/24")  // the same network
        let name = list.add("no.such.host.example", resolved: [])
        #expect(added && !duplicate && name)
        #expect(list.entries == ["127.0.0.0/8", "198.51.100.0/24", "203.0.113.0/24", "no.such.host.example", "::1"])
        #expect(list.reason(for: IPAddress("203.0.113.200")!) == "ignoreip 203.0.113.0/24")
        let removed = list.remove("203.0.113.0/255.255.255.0")
        let again = list.remove("203.0.113.0/24")
        #expect(removed && !again)
        #expect(list.reason(for: IPAddress("203.0.113.200")!) == nil)
        let bracketed = list.add("[2001:db8::1]")
        #expect(bracketed)
        #expect(list.entries.last == "2001:db8::1")
        list.setIgnoreSelf(true, addresses: [IPAddress("192.0.2.77")!])
        #expect(list.reason(for: IPAddress("192.0.2.77")!) == "ignoreself (own address)")
        list.setIgnoreSelf(false, addresses: [])
        #expect(list.reason(for: IPAddress("192.0.2.77")!) == nil)
    }
}
