import Core
import Synchronization
import Testing

#if canImport(Glibc)
import Glibc
#endif

/// Not Sendable: it may only be touched by the actor that owns it.
private final class Counter {
    var value = 0
}

/// An actor confined to a ``ThreadExecutor``: what it records shows where and in which order its code ran.
private actor Confined {
    nonisolated let executor: ThreadExecutor
    nonisolated var unownedExecutor: UnownedSerialExecutor { executor.asUnownedSerialExecutor() }
    private var busy = false
    private(set) var order: [Int] = []
    private(set) var overlaps = 0
    private(set) var offThread = 0
    let counter: Counter

    init(executor: ThreadExecutor, counter: sending Counter = Counter()) {
        self.executor = executor
        self.counter = counter
    }

    /// Records `i`; blocks the thread a little so an overlapping call would be seen.
    func record(_ i: Int) {
        if busy { overlaps += 1 }
        busy = true
        if !executor.isOnThread { offThread += 1 }
        usleep(200)
        order.append(i)
        counter.value += 1
        busy = false
    }

    func onThread() -> Bool { executor.isOnThread }

    var count: Int { counter.value }

    /// Synchronous work for the hooks, entered with `assumeIsolated`.
    func bump() { counter.value += 1 }
}

private struct Refused: Error, Equatable { var reason: String }

@Suite struct ThreadExecutorTests {
    @Test func actorCallsRunOneAtATimeOnTheThreadAndEachCallersInOrder() async throws {
        let executor = ThreadExecutor(name: "test")
        try executor.start()
        defer { executor.shutdown() }
        let actor = Confined(executor: executor)
        // Four tasks call at once; each one's calls must arrive in its own order.
        await withTaskGroup(of: Void.self) { group in
            for caller in 0..<4 {
                group.addTask {
                    for i in 0..<50 { await actor.record(caller * 1000 + i) }
                }
            }
        }
        let order = await actor.order
        #expect(order.count == 200)
        #expect(await actor.overlaps == 0)
        #expect(await actor.offThread == 0)
        for caller in 0..<4 {
            let mine = order.filter { $0 / 1000 == caller }
            #expect(mine == Array(caller * 1000..<caller * 1000 + 50))
        }
        #expect(await actor.onThread())
        #expect(executor.isOnThread == false)
    }

    @Test func closuresRunOnOneThreadInTheOrderTheyWereQueued() throws {
        let executor = ThreadExecutor(name: "test")
        let seen = Mutex<(order: [Int], threads: Set<UInt>)>(([], []))
        // Queued before the start: they wait, then run first and in order.
        for i in 0..<10 { executor.execute { seen.withLock { $0.order.append(i) } } }
        try executor.start()
        for i in 10..<100 {
            executor.execute {
                seen.withLock {
                    $0.order.append(i)
                    $0.threads.insert(UInt(pthread_self()))
                }
            }
        }
        executor.shutdown()
        let result = seen.withLock { $0 }
        #expect(result.order == Array(0..<100))
        #expect(result.threads.count == 1)
        #expect(result.threads.contains(UInt(pthread_self())) == false)
    }

    @Test func performReturnsWhatTheThreadMadeAndItsErrorReachesTheCaller() throws {
        let executor = ThreadExecutor(name: "test")
        try executor.start()
        defer { executor.shutdown() }
        // A set-up step that fails: the error is the caller's.
        #expect(throws: Refused(reason: "no namespace")) {
            try executor.perform { () throws(Refused) -> Int in throw Refused(reason: "no namespace") }
        }
        // A non-Sendable value made on the thread is handed to the actor that owns it.
        let made = executor.perform { () -> sending Counter in
            let c = Counter()
            c.value = executor.isOnThread ? 1 : -1
            return c
        }
        let actor = Confined(executor: executor, counter: made)
        // Off the thread the executor does not claim isolation; on it (outside any job) it does.
        #expect(executor.isIsolatingCurrentContext() == false)
        let value = executor.perform { actor.assumeIsolated { $0.counter.value } }
        #expect(value == 1)
    }

    @Test func shutdownRunsWhatIsQueuedAndJoinsLaterWorkRunsOffTheThread() async throws {
        let executor = ThreadExecutor(name: "test")
        try executor.start()
        let actor = Confined(executor: executor)
        let ran = Mutex(0)
        let gate = ConditionLock(false)
        // Hold the thread so the next closures are still queued when shutdown is called.
        executor.execute { gate.wait(until: { $0 }) { _, _ in } }
        for _ in 0..<20 {
            executor.execute {
                usleep(1000)
                ran.withLock { $0 += 1 }
            }
        }
        let stopper = try DedicatedThread { executor.shutdown() }
        while !executor.isStopping { usleep(1000) }
        gate.withLock { $0 = true }
        gate.broadcast()
        stopper.join()
        #expect(ran.withLock { $0 } == 20)
        #expect(executor.isStopping)
        // The thread is gone: a later call still runs (on a short-lived thread), one at a time.
        await actor.record(7)
        #expect(await actor.order == [7])
        #expect(await actor.onThread() == false)
        executor.shutdown()  // idempotent
    }

    @Test func theTickFiresOnTheThreadBetweenJobs() async throws {
        let executor = ThreadExecutor(name: "test")
        try executor.start()
        defer { executor.shutdown() }
        let actor = Confined(executor: executor)
        let ticks = Mutex(0)
        executor.tick(every: .milliseconds(5)) {
            actor.assumeIsolated { $0.bump() }
            ticks.withLock { $0 += 1 }
        }
        let deadline = ContinuousClock.now + .seconds(30)
        while ticks.withLock({ $0 }) < 3, ContinuousClock.now < deadline {
            try await Task.sleep(for: .milliseconds(5))
        }
        #expect(ticks.withLock { $0 } >= 3)
        #expect(await actor.count >= 3)
    }

    @Test func theWatchedDescriptorCallsItsHandlerOnTheThread() async throws {
        var fds: [Int32] = [-1, -1]
        #expect(pipe(&fds) == 0)
        defer {
            close(fds[0])
            close(fds[1])
        }
        // Stopped before the pipe is closed: the number may be reused by the next descriptor opened.
        let executor = ThreadExecutor(name: "test")
        try executor.start()
        defer { executor.shutdown() }
        _ = fcntl(fds[0], F_SETFL, fcntl(fds[0], F_GETFL) | O_NONBLOCK)
        let readFD = fds[0]
        let got = Mutex<[UInt8]>([])
        let onThread = Mutex(true)
        executor.watch(readFD) {
            var buffer = [UInt8](repeating: 0, count: 16)
            let n = read(readFD, &buffer, 16)
            if n > 0 { got.withLock { $0 += buffer[0..<n] } }
            if !executor.isOnThread { onThread.withLock { $0 = false } }
        }
        for byte: UInt8 in [1, 2, 3] {
            var b = byte
            #expect(write(fds[1], &b, 1) == 1)
            let deadline = ContinuousClock.now + .seconds(30)
            while got.withLock({ $0.last }) != byte, ContinuousClock.now < deadline {
                try await Task.sleep(for: .milliseconds(2))
            }
        }
        #expect(got.withLock { $0 } == [1, 2, 3])
        #expect(onThread.withLock { $0 })
    }
}
