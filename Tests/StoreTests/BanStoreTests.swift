import Core
import Foundation
import PortcullisTestKit
import Store
import Testing

private func ip(_ s: String) -> IPAddress { IPAddress(s)! }

@Suite("BanStore", .blocking)
struct BanStoreTests {
    @Test("a recorded ban is listed as active until it expires; permanent bans stay")
    func activeBans() throws {
        let store = try BanStore(path: ":memory:")
        try store.addBan(
            BanRecord(
                jail: "sshd", address: ip("192.0.2.1"), timeOfBan: 1000, banTime: 600, banCount: 1, failures: 5,
                matches: ["line \"one\"", "two\nlines\t\u{1}"]))
        try store.addBan(BanRecord(jail: "web", address: ip("2001:db8::1"), timeOfBan: 1100, banTime: -1))
        let at1500 = try store.activeBans(now: 1500)
        #expect(at1500.map(\.address) == [ip("192.0.2.1"), ip("2001:db8::1")])
        #expect(at1500[0].matches == ["line \"one\"", "two\nlines\t\u{1}"])
        #expect(at1500[0].failures == 5)
        #expect(at1500[0].end == 1600)
        #expect(at1500[1].isPermanent)
        #expect(try store.activeBans(now: 1600).map(\.address) == [ip("2001:db8::1")])
        #expect(try store.activeBans(now: 1_000_000_000).map(\.jail) == ["web"])
        #expect(try store.activeBans(now: 1500, jail: "sshd").map(\.jail) == ["sshd"])
        #expect(try store.activeBans(now: 1500, jail: "nope").isEmpty)
    }

    @Test("a new ban of the same address in the same jail replaces the old one")
    func rebanReplaces() throws {
        let store = try BanStore(path: ":memory:")
        try store.addBan(BanRecord(jail: "sshd", address: ip("192.0.2.1"), timeOfBan: 1000, banTime: 600))
        try store.addBan(
            BanRecord(jail: "sshd", address: ip("192.0.2.1"), timeOfBan: 2000, banTime: 1200, banCount: 2))
        let active = try store.activeBans(now: 2100)
        #expect(active.count == 1)
        #expect(active.first?.banCount == 2)
        #expect(try store.history(address: ip("192.0.2.1")).count == 2)
    }

    @Test("addBans records a burst in one transaction")
    func addBansBatch() throws {
        let store = try BanStore(path: ":memory:")
        let burst = (0..<50).map {
            BanRecord(jail: "sshd", address: IPAddress(v4: 0xC633_6400 + UInt32($0)), timeOfBan: 10, banTime: 60)
        }
        try store.addBans(burst)
        #expect(try store.activeBans(now: 20).map(\.address) == burst.map(\.address))
        try store.addBans([])
        try store.addBans([BanRecord(jail: "sshd", address: burst[0].address, timeOfBan: 15, banTime: 60, banCount: 2)])
        #expect(try store.activeBans(now: 20).count == 50)
        #expect(try store.banCount(address: burst[0].address, jail: "sshd") == 2)
    }

    @Test("banCount returns the highest count overall or per jail, 0 when unknown")
    func banCount() throws {
        let store = try BanStore(path: ":memory:")
        let a = ip("198.51.100.7")
        #expect(try store.banCount(address: a) == 0)
        try store.addBan(BanRecord(jail: "sshd", address: a, timeOfBan: 10, banTime: 60, banCount: 1))
        try store.addBan(BanRecord(jail: "sshd", address: a, timeOfBan: 100, banTime: 120, banCount: 2))
        try store.addBan(BanRecord(jail: "web", address: a, timeOfBan: 200, banTime: 60, banCount: 1))
        #expect(try store.banCount(address: a) == 2)
        #expect(try store.banCount(address: a, jail: "sshd") == 2)
        #expect(try store.banCount(address: a, jail: "web") == 1)
        #expect(try store.banCount(address: a, jail: "other") == 0)
        #expect(try store.banCount(address: ip("198.51.100.8")) == 0)
    }

    @Test("removeBan ends one ban (or the address everywhere) but keeps the history")
    func removeBan() throws {
        let store = try BanStore(path: ":memory:")
        let a = ip("192.0.2.5")
        try store.addBan(BanRecord(jail: "sshd", address: a, timeOfBan: 10, banTime: -1, banCount: 3))
        try store.addBan(BanRecord(jail: "web", address: a, timeOfBan: 10, banTime: -1))
        #expect(try store.removeBan(address: a, jail: "sshd") == 1)
        #expect(try store.removeBan(address: a, jail: "sshd") == 0)
        #expect(try store.activeBans(now: 20).map(\.jail) == ["web"])
        #expect(try store.banCount(address: a, jail: "sshd") == 3)
        #expect(try store.removeBan(address: a) == 1)
        #expect(try store.activeBans(now: 20).isEmpty)
    }

    @Test("removeAll ends the bans of one jail or of every jail")
    func removeAll() throws {
        let store = try BanStore(path: ":memory:")
        for (n, jail) in ["sshd", "sshd", "web"].enumerated() {
            try store.addBan(
                BanRecord(jail: jail, address: IPAddress(v4: 0xC000_0200 + UInt32(n)), timeOfBan: 1, banTime: -1))
        }
        #expect(try store.removeAll(jail: "sshd") == 2)
        #expect(try store.activeBans(now: 5).map(\.jail) == ["web"])
        #expect(try store.removeAll() == 1)
        #expect(try store.activeBans(now: 5).isEmpty)
    }

    @Test("purge deletes old history but never a ban still in force")
    func purge() throws {
        let store = try BanStore(path: ":memory:")
        try store.addBan(BanRecord(jail: "j", address: ip("192.0.2.1"), timeOfBan: 100, banTime: 10))  // expired
        try store.addBan(BanRecord(jail: "j", address: ip("192.0.2.2"), timeOfBan: 100, banTime: -1))  // permanent
        try store.addBan(BanRecord(jail: "j", address: ip("192.0.2.3"), timeOfBan: 100, banTime: 1_000_000))  // long
        try store.addBan(BanRecord(jail: "j", address: ip("192.0.2.4"), timeOfBan: 100, banTime: -1))
        try store.removeBan(address: ip("192.0.2.4"))  // unbanned permanent: only history now
        try store.addBan(BanRecord(jail: "j", address: ip("192.0.2.5"), timeOfBan: 5000, banTime: 10))  // recent
        #expect(try store.purge(olderThan: 1000, now: 6000) == 2)
        #expect(try store.banCount(address: ip("192.0.2.1")) == 0)
        #expect(try store.banCount(address: ip("192.0.2.4")) == 0)
        #expect(try store.history(address: ip("192.0.2.5")).count == 1)
        #expect(try store.activeBans(now: 6000).map(\.address) == [ip("192.0.2.2"), ip("192.0.2.3")])
    }

    @Test("log positions and journal cursors are saved, replaced and removed")
    func positionsAndCursors() throws {
        let store = try BanStore(path: ":memory:")
        #expect(try store.logPosition(path: "/var/log/auth.log") == nil)
        let p = LogPosition(path: "/var/log/auth.log", position: 1234, firstLineHash: "abc", inode: UInt64.max - 1)
        try store.setLogPosition(p)
        #expect(try store.logPosition(path: "/var/log/auth.log") == p)
        let q = LogPosition(path: "/var/log/auth.log", position: 99, firstLineHash: "def", inode: 7)
        try store.setLogPosition(q)
        #expect(try store.logPosition(path: "/var/log/auth.log") == q)
        #expect(try store.removeLogPosition(path: "/var/log/auth.log"))
        #expect(try store.logPosition(path: "/var/log/auth.log") == nil)

        #expect(try store.journalCursor(source: "sshd") == nil)
        try store.setJournalCursor("s=1;i=2", source: "sshd")
        try store.setJournalCursor("s=1;i=3", source: "sshd")
        #expect(try store.journalCursor(source: "sshd") == "s=1;i=3")
    }

    @Test("everything survives closing and reopening the file; the schema version is 1")
    func reopen() throws {
        let dir = try TemporaryDirectory()
        let path = dir.path + "/bans.sqlite3"
        do {
            let store = try BanStore(path: path)
            try store.addBan(BanRecord(jail: "sshd", address: ip("192.0.2.9"), timeOfBan: 1, banTime: -1))
            try store.setJournalCursor("c", source: "sshd")
        }
        let store = try BanStore(path: path)
        #expect(try store.activeBans(now: 2).map(\.address) == [ip("192.0.2.9")])
        #expect(try store.journalCursor(source: "sshd") == "c")
        #expect(try Database(path: path).userVersion == BanStore.schemaVersion)
    }

    @Test("a file from a newer schema is refused with a clear message")
    func newerSchemaRefused() throws {
        let dir = try TemporaryDirectory()
        let path = dir.path + "/future.sqlite3"
        try Database(path: path).setUserVersion(BanStore.schemaVersion + 1)
        do {
            _ = try BanStore(path: path)
            Issue.record("expected a schema version error")
        } catch {
            #expect(error.message.contains("schema version \(BanStore.schemaVersion + 1)"))
        }
    }

    @Test("a ban reported by a child process survives SIGKILL of that child")
    func survivesSigkill() throws {
        let dir = try TemporaryDirectory()
        let path = dir.path + "/kill.sqlite3"
        let exe = try #require(try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/exe"))
        let probe = URL(fileURLWithPath: exe).deletingLastPathComponent().appendingPathComponent(
            "portcullis-store-probe")
        #expect(FileManager.default.isExecutableFile(atPath: probe.path), "probe missing at \(probe.path)")

        let process = Process()
        process.executableURL = probe
        process.arguments = [path, "sshd", "192.0.2.77", "2001:db8::77"]
        let pipe = Pipe()
        process.standardOutput = pipe
        try process.run()
        // Read until the child says every ban was recorded, then kill it without any chance to clean up.
        var output = ""
        let handle = pipe.fileHandleForReading
        while !output.contains("ready\n") {
            let chunk = handle.availableData
            if chunk.isEmpty { break }
            output += String(decoding: chunk, as: UTF8.self)
        }
        kill(process.processIdentifier, SIGKILL)
        process.waitUntilExit()
        #expect(output == "banned 192.0.2.77\nbanned 2001:db8::77\nready\n")
        #expect(process.terminationReason == .uncaughtSignal)
        #expect(process.terminationStatus == SIGKILL)

        let store = try BanStore(path: path)
        let bans = try store.activeBans(now: 2000)
        #expect(bans.map(\.address) == [ip("192.0.2.77"), ip("2001:db8::77")])
        #expect(bans.allSatisfy { $0.jail == "sshd" && $0.isPermanent && $0.failures == 3 })
    }

    @Test("readers on other connections read consistently while a writer adds bans")
    func concurrentReaders() async throws {
        let dir = try TemporaryDirectory()
        let path = dir.path + "/concurrent.sqlite3"
        let writer = try BanStore(path: path)
        let readers = try (0..<3).map { _ in try BanStore(path: path) }
        let total = 200
        try await withThrowingTaskGroup(of: Int.self) { group in
            group.addTask {
                for n in 0..<total {
                    try writer.addBan(
                        BanRecord(
                            jail: "sshd", address: IPAddress(v4: 0xC612_0000 + UInt32(n)), timeOfBan: 1, banTime: -1))
                }
                return total
            }
            for reader in readers {
                group.addTask {
                    var last = 0
                    var reads = 0
                    while last < total {
                        let count = try reader.activeBans(now: 2).count
                        // Each read sees a committed prefix: never fewer bans than before.
                        #expect(count >= last)
                        last = count
                        reads += 1
                        try Task.checkCancellation()
                        await Task.yield()
                    }
                    return reads
                }
            }
            for try await _ in group {}
        }
        for reader in readers { #expect(try reader.activeBans(now: 2).count == total) }
    }
}
