import Core
import Testing

@testable import Jail

@Suite struct JailStateTests {
    let a = IPAddress("192.0.2.10")!
    let b = IPAddress("2001:db8::7")!

    func jail(_ policy: BanPolicy = BanPolicy(maxRetry: 3, findTime: 600, banTime: 3600)) throws -> JailState {
        JailState(
            name: "sshd", policy: policy, ignore: try IgnoreList(entries: ["127.0.0.1/8 ::1", "198.51.100.0/24"]))
    }

    @Test func bansAtMaxRetryWithinFindTime() throws {
        var j = try jail()
        #expect(j.record(FailureEvent(address: a, time: 1000), now: 1000) == .counted(failures: 1))
        #expect(j.record(FailureEvent(address: b, time: 1001), now: 1001) == .counted(failures: 1))
        #expect(j.record(FailureEvent(address: a, time: 1100), now: 1100) == .counted(failures: 2))
        #expect(j.currentlyFailed == 2)
        guard case .ban(let d) = j.record(FailureEvent(address: a, time: 1200, matches: ["x"]), now: 1200) else {
            Issue.record("expected a ban")
            return
        }
        #expect(d.address == a)
        #expect(d.duration == 3600)
        #expect(d.start == 1200)
        #expect(d.failures == 3)
        #expect(d.matches == ["x"])
        #expect(j.currentlyFailed == 1)
        j.noteBanned(a, until: d.end)
        #expect(j.isBanned(a, now: 1300))
        #expect(!j.isBanned(a, now: 4800))
        #expect(j.record(FailureEvent(address: a, time: 1300), now: 1300) == .alreadyBanned)
        #expect(j.totalFailed == 5)
        #expect(j.totalBanned == 1)
    }

    @Test("a failure standing for N attempts counts N (totals and maxretry)")
    func attemptsCountEach() throws {
        var j = try jail()
        #expect(j.record(FailureEvent(address: a, time: 1000, attempts: 2), now: 1000) == .counted(failures: 2))
        #expect(j.totalFailed == 2)
        guard case .ban(let d) = j.record(FailureEvent(address: a, time: 1001, attempts: 1), now: 1001) else {
            Issue.record("3 attempts reach maxretry 3")
            return
        }
        #expect(d.failures == 3)
        #expect(j.totalFailed == 3)
        // One line with more attempts than maxretry bans at once; the total counts them all.
        guard case .ban = j.record(FailureEvent(address: b, time: 1002, attempts: 5), now: 1002) else {
            Issue.record("5 attempts reach maxretry 3")
            return
        }
        #expect(j.totalFailed == 8)
        // Fewer than one is one.
        #expect(FailureEvent(address: a, time: 0, attempts: 0).attempts == 1)
    }

    @Test func failuresOutsideWindowSlideOut() throws {
        var j = try jail()
        _ = j.record(FailureEvent(address: a, time: 0), now: 0)
        _ = j.record(FailureEvent(address: a, time: 500), now: 500)
        // The first failure is now more than findtime before the third.
        #expect(j.record(FailureEvent(address: a, time: 700), now: 700) == .counted(failures: 2))
        if case .ban = j.record(FailureEvent(address: a, time: 710), now: 710) {} else { Issue.record("expected ban") }
    }

    @Test func oldLinesDoNotCount() throws {
        var j = try jail()
        #expect(j.record(FailureEvent(address: a, time: 100), now: 10_000) == .tooOld)
        #expect(j.totalFailed == 0)
    }

    @Test func ignoredAddressesAreNeverBanned() throws {
        var j = try jail(BanPolicy(maxRetry: 1))
        #expect(
            j.record(FailureEvent(address: IPAddress("127.0.0.5")!, time: 1), now: 1)
                == .ignored("ignoreip 127.0.0.1/8"))
        #expect(j.record(FailureEvent(address: IPAddress("::1")!, time: 1), now: 1) == .ignored("ignoreip ::1"))
        #expect(
            j.record(FailureEvent(address: IPAddress("198.51.100.200")!, time: 1), now: 1)
                == .ignored("ignoreip 198.51.100.0/24"))
        if case .ban = j.record(FailureEvent(address: a, time: 1), now: 1) {} else { Issue.record("expected ban") }
    }

    @Test func ignoreListHostNamesAndSelf() throws {
        let list = try IgnoreList(
            entries: ["gateway.example, 198.18.0.0/15"], selfAddresses: [IPAddress("203.0.113.5")!],
            resolve: { $0 == "gateway.example" ? [IPAddress("192.0.2.1")!] : [] })
        #expect(list.reason(for: IPAddress("192.0.2.1")!) == "ignoreip gateway.example")
        #expect(list.reason(for: IPAddress("198.19.9.9")!) == "ignoreip 198.18.0.0/15")
        #expect(list.reason(for: IPAddress("203.0.113.5")!) == "ignoreself (own address)")
        #expect(list.reason(for: IPAddress("192.0.2.2")!) == nil)
        #expect(throws: IgnoreList.InvalidEntry.self) { try IgnoreList(entries: ["no.such.host"]) }
    }

    @Test func incrementUsesPreviousBans() throws {
        let inc = BanTimeIncrement(maxTime: 5000)
        var j = try jail(BanPolicy(maxRetry: 1, banTime: 600, increment: inc))
        guard case .ban(let d) = j.record(FailureEvent(address: a, time: 1), now: 1, previousBans: { _ in 2 }) else {
            Issue.record("expected ban")
            return
        }
        #expect(d.duration == 2400)
        #expect(d.previousBans == 2)
        guard case .ban(let e) = j.record(FailureEvent(address: b, time: 1), now: 1, previousBans: { _ in 5 }) else {
            Issue.record("expected ban")
            return
        }
        #expect(e.duration == 5000)
    }

    @Test func multipliersAndRandomTime() {
        let p = BanPolicy(
            maxRetry: 1, banTime: 60,
            increment: BanTimeIncrement(factor: 2, multipliers: [1, 5, 30], randomTime: 10))
        #expect(p.duration(previousBans: 0, random: { 0 }) == 120)
        #expect(p.duration(previousBans: 1, random: { 0.5 }) == 605)
        #expect(p.duration(previousBans: 9, random: { 0 }) == 3600)
        #expect(BanPolicy(banTime: -1).duration(previousBans: 3) == nil)
    }

    @Test func permanentBansAndPurge() throws {
        var j = try jail(BanPolicy(maxRetry: 1, banTime: -1))
        guard case .ban(let d) = j.record(FailureEvent(address: a, time: 1), now: 1) else {
            Issue.record("expected ban")
            return
        }
        #expect(d.duration == nil)
        j.noteBanned(a, until: d.end)
        j.noteBanned(b, until: 50)
        #expect(j.purge(now: 100) == [b])
        #expect(j.isBanned(a, now: 1e12))
        #expect(j.unbanAll() == [a])
        #expect(j.currentlyBanned == 0)
    }
}

@Suite struct JailStateBoundsTests {
    func jail(maxTracked: Int?) throws -> JailState {
        var j = JailState(
            name: "sshd", policy: BanPolicy(maxRetry: 3, findTime: 600, banTime: 60),
            ignore: try IgnoreList(entries: []))
        j.maxTracked = maxTracked
        return j
    }

    func address(_ i: Int) -> IPAddress { IPAddress(v4: 0xC612_0000 + UInt32(i)) }  // 198.18.x.x

    @Test func trackedAddressesStayUnderTheCapOldestDroppedFirst() throws {
        var j = try jail(maxTracked: 1000)
        for i in 0..<5000 {
            _ = j.record(FailureEvent(address: address(i), time: 1000 + Double(i) / 100), now: 1000 + Double(i) / 100)
            #expect(j.currentlyFailed <= 1000)
        }
        // Room is made a sixteenth of the cap (62) at a time.
        #expect(j.droppedTracked >= 4000 && j.droppedTracked < 4000 + 62)
        #expect(j.currentlyFailed + j.droppedTracked == 5000)
        // The newest addresses are the ones kept: the last one counts its second failure.
        #expect(j.record(FailureEvent(address: address(4999), time: 1050), now: 1050) == .counted(failures: 2))
        #expect(j.record(FailureEvent(address: address(0), time: 1050), now: 1050) == .counted(failures: 1))
    }

    @Test func aCapWithEqualTimesDropsOnlyWhatIsNeeded() throws {
        var j = try jail(maxTracked: 100)
        for i in 0..<101 { _ = j.record(FailureEvent(address: address(i), time: 1000), now: 1000) }
        // One sixteenth of the cap made room, not the whole table (every failure has the same time).
        #expect(j.currentlyFailed == 101 - 6)
        #expect(j.droppedTracked == 6)
    }

    @Test func noCapKeepsEverything() throws {
        var j = try jail(maxTracked: nil)
        for i in 0..<3000 { _ = j.record(FailureEvent(address: address(i), time: 1000), now: 1000) }
        #expect(j.currentlyFailed == 3000)
        #expect(j.droppedTracked == 0)
    }

    @Test func endedBansAreReportedOnceEvenWhenRecordRemovedThem() throws {
        var j = try jail(maxTracked: nil)
        j.noteBanned(address(1), until: 1060)
        j.noteBanned(address(2), until: 1060)
        // After the end: a new failure of address 1 and more than 1024 events before the next purge.
        _ = j.record(FailureEvent(address: address(1), time: 1100), now: 1100)
        for i in 10..<2100 { _ = j.record(FailureEvent(address: address(i), time: 1100), now: 1100) }
        #expect(j.purge(now: 1100) == [address(1), address(2)])
        #expect(j.purge(now: 1101) == [])
        #expect(j.currentlyBanned == 0)
    }
}
