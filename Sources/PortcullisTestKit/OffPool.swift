import Core
import Dispatch
import Synchronization
import Testing

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// An executor of a few dedicated threads for tests that block (child processes such as the fail2ban oracle,
/// `ip netns`, the built binaries; sleeps; blocking socket reads).
///
/// `swift test` runs every suite in one process, in parallel, on Swift's cooperative pool, which has one thread
/// per core (2 on CI). A test that blocks one of those threads for seconds leaves the others' tasks — a control
/// server's command handlers, a tailer's deliveries — waiting, and they time out although nothing is wrong. Tests
/// that block run here instead (see ``Trait/blocking``), so the cooperative pool stays free.
///
/// ```swift
/// try await withTaskExecutorPreference(BlockingExecutor.shared) { try runPythonOracle() }
/// ```
public final class BlockingExecutor: TaskExecutor {
    /// The shared executor: at most `width` jobs at once, the rest wait their turn in order.
    public static let shared = BlockingExecutor(width: 6)

    private let queue = Mutex<[UnownedJob]>([])
    private let available = DispatchSemaphore(value: 0)

    /// Starts `width` threads that run the enqueued jobs.
    public init(width: Int) {
        for _ in 0..<width { spawnThread { [self] in work() } }
    }

    /// Queues a job; a free thread runs it.
    public func enqueue(_ job: consuming ExecutorJob) {
        let job = UnownedJob(job)
        queue.withLock { $0.append(job) }
        available.signal()
    }

    private func work() {
        while true {
            available.wait()
            let job = queue.withLock { $0.removeFirst() }
            job.runSynchronously(on: asUnownedTaskExecutor())
        }
    }
}

/// An executor that runs every job on a new thread of its own, so it never waits for a busy pool. For a test's
/// servers (a control server's command handlers) whose clients time out: their replies must not depend on what
/// other suites running in parallel do.
///
/// ```swift
/// let task = Task(executorPreference: ThreadPerJobExecutor.shared) { await server.run() }
/// ```
public final class ThreadPerJobExecutor: TaskExecutor {
    /// The shared instance (it has no state).
    public static let shared = ThreadPerJobExecutor()

    /// Runs `job` on a new thread.
    public func enqueue(_ job: consuming ExecutorJob) {
        let job = UnownedJob(job)
        let executor = asUnownedTaskExecutor()
        spawnThread { job.runSynchronously(on: executor) }
    }
}

/// Runs each test case on ``BlockingExecutor/shared`` rather than on the cooperative pool. Put it on suites and
/// tests that block a thread (run processes, sleep, read sockets); apply to a suite, it covers all its tests.
public struct BlockingTrait: SuiteTrait, TestTrait, TestScoping {
    /// Applies to every test in a suite it is attached to.
    public var isRecursive: Bool { true }

    /// Wraps each test case, not the suite as a whole.
    public func scopeProvider(for test: Test, testCase: Test.Case?) -> Self? { testCase == nil ? nil : self }

    /// Runs the test case on the blocking executor.
    public func provideScope(
        for test: Test, testCase: Test.Case?, performing function: @Sendable () async throws -> Void
    ) async throws {
        try await withTaskExecutorPreference(BlockingExecutor.shared) { try await function() }
    }
}

extension Trait where Self == BlockingTrait {
    /// The test blocks threads (child processes, sleeps, blocking reads): run it off the cooperative pool.
    ///
    /// ```swift
    /// @Suite("Jail oracle", .blocking) struct JailOracleTests { … }
    /// ```
    public static var blocking: Self { Self() }
}

/// Starts a detached thread running `body`; traps if the system refuses (tests cannot go on without it).
private func spawnThread(_ body: @escaping @Sendable () -> Void) {
    do {
        try DedicatedThread.detached(name: "pcl-test-exec", body)
    } catch {
        fatalError("\(error)")
    }
}
