import Core
import Synchronization
import Testing

#if canImport(Glibc)
import Glibc
#endif

@Suite struct DedicatedThreadTests {
    @Test func joinWaitsForTheBody() throws {
        let value = Mutex(0)
        let thread = try DedicatedThread {
            usleep(20_000)
            value.withLock { $0 = 42 }
        }
        thread.join()
        #expect(value.withLock { $0 } == 42)
    }

    @Test func runsOnAnotherThread() throws {
        let seen = Mutex<UInt64?>(nil)
        let thread = try DedicatedThread { seen.withLock { $0 = UInt64(pthread_self()) } }
        thread.join()
        let tid = try #require(seen.withLock { $0 })
        #expect(tid != UInt64(pthread_self()))
    }

    @Test func detachedThreadRuns() async throws {
        let value: Int = await withCheckedContinuation { continuation in
            do {
                try DedicatedThread.detached { continuation.resume(returning: 7) }
            } catch {
                continuation.resume(returning: -1)
            }
        }
        #expect(value == 7)
    }

    @Test func joinFromTheThreadItselfDoesNotDeadlock() throws {
        let box = Mutex<DedicatedThread?>(nil)
        let done = Mutex(false)
        let gate = Mutex(false)
        let thread = try DedicatedThread {
            while !gate.withLock({ $0 }) { usleep(1000) }
            box.withLock { $0 }?.join()  // detaches instead of joining itself
            done.withLock { $0 = true }
        }
        box.withLock { $0 = thread }
        gate.withLock { $0 = true }
        while !done.withLock({ $0 }) { usleep(1000) }
        #expect(done.withLock { $0 })
    }
}
