import Core
import Synchronization
import Testing

#if canImport(Glibc)
    import Glibc
#endif

@Suite struct DedicatedThreadTests {
    @Test func joinWaitsForTheBody() throws {
        let value = Mutex(0)
        let thread = try DedicatedThread(name: "pcl-test") {
            usleep(20_000)
            value.withLock { $0 = 42 }
        }
        thread.join()
        #expect(value.withLock { $0 } == 42)
    }

    @Test func runsOnAnotherNamedThread() throws {
        let seen = Mutex<(UInt64, String)?>(nil)
        let thread = try DedicatedThread(name: "pcl-named-thread-long") {
            var comm = [UInt8](repeating: 0, count: 32)
            let fd = open("/proc/thread-self/comm", O_RDONLY)
            let n = comm.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
            close(fd)
            let name = String(decoding: comm[0..<max(0, n)], as: UTF8.self)
            seen.withLock { $0 = (UInt64(pthread_self()), name) }
        }
        thread.join()
        let (tid, name) = try #require(seen.withLock { $0 })
        #expect(tid != UInt64(pthread_self()))
        #expect(name == "pcl-named-threa\n")  // the kernel keeps 15 bytes
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
