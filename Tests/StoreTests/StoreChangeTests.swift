import Core
import PortcullisTestKit
import Store
import Testing

private func ip(_ s: String) -> IPAddress { IPAddress(s)! }

/// `BanStore.apply`: the one change list the daemon's writer commits per transaction.
@Suite("Store changes", .blocking)
struct StoreChangeTests {
    @Test("bans, pending failures and a position are written together; a later pending row replaces or deletes")
    func oneTransaction() throws {
        let store = try BanStore(path: ":memory:")
        let last = try store.apply([
            .banCountingHistory(
                BanRecord(jail: "sshd", address: ip("192.0.2.1"), timeOfBan: 100, banTime: 600), acrossJails: false),
            .pending(
                PendingFailureRecord(jail: "sshd", address: ip("192.0.2.2"), times: [90, 95], matches: ["a", "b"])),
            .logPosition(LogPosition(path: "/var/log/auth.log", position: 4096, firstLineHash: "ab", inode: 7)),
        ])
        #expect(last != nil)
        #expect(try store.activeBans(now: 200).map(\.address) == [ip("192.0.2.1")])
        #expect(
            try store.pendingFailures() == [
                PendingFailureRecord(jail: "sshd", address: ip("192.0.2.2"), times: [90, 95], matches: ["a", "b"])
            ])
        #expect(try store.logPosition(path: "/var/log/auth.log")?.position == 4096)
        try store.apply([.pending(PendingFailureRecord(jail: "sshd", address: ip("192.0.2.2"), times: []))])
        #expect(try store.pendingFailures().isEmpty)
    }

    @Test("the ban count comes from the history: one more than the highest, per jail or across jails")
    func banCountFromHistory() throws {
        let store = try BanStore(path: ":memory:")
        let a = ip("198.51.100.9")
        try store.apply([
            .banCountingHistory(BanRecord(jail: "sshd", address: a, timeOfBan: 1, banTime: 1), acrossJails: false)
        ])
        try store.apply([
            .banCountingHistory(BanRecord(jail: "sshd", address: a, timeOfBan: 5, banTime: 1), acrossJails: false)
        ])
        try store.apply([
            .banCountingHistory(BanRecord(jail: "web", address: a, timeOfBan: 9, banTime: 1), acrossJails: true)
        ])
        #expect(try store.history(address: a).map(\.banCount) == [1, 2, 3])
    }

    @Test("bans past the logged mark are reported unlogged until marked")
    func loggedMark() throws {
        let store = try BanStore(path: ":memory:")
        let first = try store.apply([.ban(BanRecord(jail: "sshd", address: ip("192.0.2.1"), timeOfBan: 1, banTime: -1))]
        )
        try store.apply([.banLogged(upTo: first)])
        try store.apply([.ban(BanRecord(jail: "sshd", address: ip("192.0.2.2"), timeOfBan: 2, banTime: -1))])
        #expect(try store.unloggedBans() == [BanKeyText(jail: "sshd", address: "192.0.2.2")])
        try store.apply([.banLogged(upTo: nil)])
        #expect(try store.unloggedBans().isEmpty)
    }

    @Test("pending rows whose latest failure is out of findtime are pruned, others stay")
    func prune() throws {
        let store = try BanStore(path: ":memory:")
        try store.apply([
            .pending(PendingFailureRecord(jail: "sshd", address: ip("192.0.2.3"), times: [10])),
            .pending(PendingFailureRecord(jail: "sshd", address: ip("192.0.2.4"), times: [5, 20])),
        ])
        try store.apply([.prunePending(jail: "sshd", before: 11)])
        #expect(try store.pendingFailures().map(\.address) == [ip("192.0.2.4")])
    }
}
