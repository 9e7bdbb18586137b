import Core
import Foundation
import PortcullisTestKit
import Store
import Testing

/// Issue 7 item 3: a store row may hold anything (edited by hand, written by another program). Nothing read
/// from it may trap later (`count + 1`, `Int(end)`): rows are range-checked where they are read.
@Suite("BanStore rows with absurd values", .blocking)
struct BanStoreBoundsTests {
    @Test("absurd times and counts are clamped or the row is skipped; nothing traps")
    func absurdRows() throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent(
            "pcl-lines-store-\(getpid())-\(UInt32.random(in: 0...UInt32.max))")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        let path = dir.appendingPathComponent("bans.sqlite3").path
        let store = try BanStore(path: path)
        for (i, _) in (0..<6).enumerated() {
            try store.addBan(
                BanRecord(jail: "sshd", address: IPAddress("192.0.2.\(i + 1)")!, timeOfBan: 1000, banTime: 600))
        }
        let db = try Database(path: path)
        try db.execute("UPDATE bans SET ban_time = 1e300, ban_count = 9223372036854775807 WHERE address = '192.0.2.1'")
        try db.execute("UPDATE bans SET ban_time = 9e999, failures = -9223372036854775808 WHERE address = '192.0.2.2'")
        try db.execute("UPDATE bans SET time_of_ban = 1e300 WHERE address = '192.0.2.3'")
        try db.execute("UPDATE bans SET time_of_ban = -9e999, ban_time = -1 WHERE address = '192.0.2.4'")
        try db.execute("UPDATE bans SET ban_time = -9e999, ban_count = -7 WHERE address = '192.0.2.5'")
        try db.execute("UPDATE bans SET ban_time = 'forever', time_of_ban = 'x' WHERE address = '192.0.2.6'")

        let active = try store.activeBans(now: 2000)
        let byAddress = Dictionary(uniqueKeysWithValues: active.map { ($0.address.description, $0) })
        let one = try #require(byAddress["192.0.2.1"])
        #expect(one.banTime == Bounds.maximumSeconds)
        #expect(one.banCount == Bounds.maximumBanCount)
        #expect(Int(saturating: one.end ?? 0) > 0)
        let two = try #require(byAddress["192.0.2.2"])
        #expect(two.banTime == Bounds.maximumSeconds)
        #expect(two.failures == 0)
        #expect(byAddress["192.0.2.3"] == nil)  // a time of ban 10^300: not a plausible row
        #expect(byAddress["192.0.2.4"] == nil)
        let five = try #require(byAddress["192.0.2.5"])
        #expect(five.isPermanent && five.banTime == -1 && five.banCount == 0)
        #expect(try store.banCount(address: IPAddress("192.0.2.1")!) == Bounds.maximumBanCount)
        #expect(try store.banCount(address: IPAddress("192.0.2.5")!) == 0)
        // The next ban count is computed as stored + 1: it must not overflow.
        #expect(try store.banCount(address: IPAddress("192.0.2.1")!) + 1 > 0)
    }
}
