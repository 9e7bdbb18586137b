import Core
import Jail
import Logging
import PortcullisTestKit
import Store
import Synchronization
import Testing

@testable import Daemon

#if canImport(Glibc)
import Glibc
#endif

private func ip(_ s: String) -> IPAddress { IPAddress(s)! }

@Suite("StoreWriter and SourceChannel", .blocking)
struct StoreWriterTests {
    @Test("coalescing keeps the last pending row per address and the last position per file, in order")
    func coalesce() {
        let p1 = StoreChange.pending(PendingFailureRecord(jail: "j", address: ip("192.0.2.1"), times: [1]))
        let p2 = StoreChange.pending(PendingFailureRecord(jail: "j", address: ip("192.0.2.1"), times: [1, 2]))
        let ban = StoreChange.ban(BanRecord(jail: "j", address: ip("192.0.2.9"), timeOfBan: 1, banTime: -1))
        let f1 = StoreChange.logPosition(LogPosition(path: "/l", position: 10, firstLineHash: "", inode: 1))
        let f2 = StoreChange.logPosition(LogPosition(path: "/l", position: 20, firstLineHash: "", inode: 1))
        #expect(StoreWriter.coalesce([p1, f1, ban, p2, f2]) == [ban, p2, f2])
    }

    @Test("a locked store keeps the changes and writes them once the lock is gone; the error shows meanwhile")
    func retriesUntilWritten() async throws {
        var template = Array("/tmp/pcl-writer-XXXXXX".utf8CString)
        let dir = String(cString: mkdtemp(&template)!)
        defer { _ = system("rm -rf '\(dir)'") }
        let path = dir + "/db.sqlite3"
        let store = try BanStore(path: path, options: Database.Options(busyTimeoutMilliseconds: 50))
        let locker = try Database(path: path)
        try locker.execute("BEGIN EXCLUSIVE")
        let writer = StoreWriter(store: store, path: path, log: Logger(label: "test"), clock: { 1000 })
        writer.start()
        writer.submit([.ban(BanRecord(jail: "j", address: ip("192.0.2.5"), timeOfBan: 1000, banTime: -1))])
        await writer.waitUntilWritten()
        #expect(writer.health.error != nil)
        #expect(writer.health.queued == 1)
        try locker.execute("ROLLBACK")
        // Retries back off 1, 2, 4 … 30 s; on a loaded machine the lock may be gone only after a few of them.
        let deadline = ContinuousClock.now + .seconds(70)
        while writer.health.queued > 0, ContinuousClock.now < deadline { try await Task.sleep(for: .milliseconds(50)) }
        #expect(writer.health.error == nil)
        #expect(try store.activeBans(now: 1000).map(\.address) == [ip("192.0.2.5")])
        writer.stop()
    }

    @Test("a full channel makes the sender wait until the consumer takes the queue; waits are counted")
    func backPressure() async throws {
        let channel = SourceChannel(capacity: 2)
        let events = [FailureEvent(address: ip("192.0.2.1"), time: 1), FailureEvent(address: ip("192.0.2.2"), time: 1)]
        channel.send(SourceBatch(failures: [("j", events)]))
        let sent = Mutex(false)
        let thread = try DedicatedThread {
            channel.send(SourceBatch(failures: [("j", events)]))
            sent.withLock { $0 = true }
        }
        try await Task.sleep(for: .milliseconds(200))
        #expect(sent.withLock { $0 } == false)
        let first = await channel.next()
        #expect(first?.count == 1)
        thread.join()
        #expect(sent.withLock { $0 })
        #expect(channel.backPressure.waits == 1)
        #expect(await channel.next()?.count == 1)
        channel.finish()
        #expect(await channel.next() == nil)
    }
}
