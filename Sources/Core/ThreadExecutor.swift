import Synchronization

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// A `SerialExecutor` that runs every job on one ``DedicatedThread``: the executor of the daemon's thread-confined
/// parts (the libnftables context, the SQLite writer). An actor that returns it as its `unownedExecutor` runs all
/// its isolated code on that thread, in the order the jobs arrive, so the compiler checks the confinement a
/// hand-rolled queue and `@unchecked Sendable` used to promise. Blocking on the thread (a kernel call, an fsync, a
/// back-off wait) is fine: nothing else runs there.
///
/// Besides jobs the thread can wait on one more file descriptor (``watch(_:onReadable:)``: called when it is
/// readable, after the jobs queued with it) and call a periodic ``tick(every:_:)`` between jobs. Both run on the
/// thread outside any job; the owner enters its isolation with `assumeIsolated`, which this executor confirms
/// (``checkIsolated()``).
///
/// ```swift
/// actor Writer {
///     nonisolated let executor: ThreadExecutor
///     nonisolated var unownedExecutor: UnownedSerialExecutor { executor.asUnownedSerialExecutor() }
///     init() throws { executor = ThreadExecutor(name: "writer"); try executor.start() }
///     func write() { /* runs on the executor's thread */ }
/// }
/// ```
///
/// ``shutdown()`` runs what is queued, ends the thread and joins it. A job that arrives after the thread ended runs
/// on a short-lived thread, one at a time (so an actor's code still never runs twice at once, and no caller waits
/// forever); code that needs the executor's own thread checks ``isOnThread`` and refuses.
public final class ThreadExecutor: SerialExecutor {
    private enum Work {
        case job(UnownedJob)
        case call(@Sendable () -> Void)

        func run(on executor: UnownedSerialExecutor) {
            switch self {
            case .job(let job): job.runSynchronously(on: executor)
            case .call(let body): body()
            }
        }
    }

    private struct Queue {
        var work: [Work] = []
        var started = false
        var stopping = false
        /// The thread has ended (or never started and was shut down): work runs on the enqueuing thread.
        var finished = false
        /// A thread is running late work (after `finished`).
        var drainingLate = false
    }

    private struct Hooks {
        var watched: Int32 = -1
        var onReadable: (@Sendable () -> Void)?
        var tickInterval: Duration?
        var tick: (@Sendable () -> Void)?
    }

    /// A name for messages.
    public let name: String
    private let queue = Mutex(Queue())
    private let hooks = Mutex(Hooks())
    private let thread = Mutex<DedicatedThread?>(nil)
    /// The running thread's id, nil before it started and after it ended.
    private let threadID = Mutex<pthread_t?>(nil)
    /// Read end and write end of the wake-up pipe.
    private let wakeFD: Int32
    private let wakeWriteFD: Int32

    /// An executor whose thread is not started yet: jobs wait in order until ``start()``.
    public init(name: String) {
        self.name = name
        var fds: [Int32] = [-1, -1]
        // Without a pipe there is no way to wake the thread: nothing can run then.
        precondition(pipe(&fds) == 0, "cannot create the wake-up pipe of executor \(name) (errno \(errno))")
        for fd in fds {
            _ = fcntl(fd, F_SETFD, FD_CLOEXEC)
            _ = fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK)
        }
        wakeFD = fds[0]
        wakeWriteFD = fds[1]
    }

    deinit {
        close(wakeFD)
        close(wakeWriteFD)
    }

    /// Starts the thread; queued jobs run at once. Idempotent.
    public func start() throws(DedicatedThread.StartError) {
        let first = queue.withLock { q -> Bool in
            defer { q.started = true }
            return !q.started && !q.stopping
        }
        guard first else { return }
        do {
            let t = try DedicatedThread { [self] in loop() }
            thread.withLock { $0 = t }
            // For the work queued before the start (its enqueues did not wake anyone).
            wake()
        } catch {
            queue.withLock { $0.started = false }
            throw error
        }
    }

    /// Runs `body` on the thread, after the work queued before it, and returns its result: the way to set the
    /// thread up (enter a network namespace, create a context that must live there) and to hand what it made to
    /// an actor (`sending`). Blocks the calling thread until then; call it from synchronous code (an
    /// initialiser), never from the executor's own thread.
    public func perform<T, E: Error>(_ body: @escaping @Sendable () throws(E) -> sending T) throws(E) -> sending T {
        precondition(!isOnThread, "ThreadExecutor.perform called on its own thread \(name)")
        let done = ConditionLock<Result<T, E>?>(nil)
        enqueue(
            work: .call {
                let result: Result<T, E>
                do throws(E) { result = .success(try body()) } catch { result = .failure(error) }
                done.withLock { $0 = result }
                done.broadcast()
            })
        let finished: (Result<T, E>?) -> Bool = { $0 != nil }
        let result = done.wait(until: finished) { state, _ in
            let result = state!
            state = nil
            return result
        }
        return try result.get()
    }

    /// Runs `body` on the thread after the work queued before it, without waiting for it.
    public func execute(_ body: @escaping @Sendable () -> Void) {
        enqueue(work: .call(body))
    }

    /// Calls `onReadable` on the thread, between jobs, whenever `fd` is readable (after the jobs queued when it
    /// became readable; not once shutting down). One descriptor at a time; a second call replaces the first.
    public func watch(_ fd: Int32, onReadable: @escaping @Sendable () -> Void) {
        hooks.withLock {
            $0.watched = fd
            $0.onReadable = onReadable
        }
        wake()
    }

    /// Calls `body` on the thread, between jobs, every `interval` (measured from the end of the last call; not once
    /// shutting down).
    public func tick(every interval: Duration, _ body: @escaping @Sendable () -> Void) {
        hooks.withLock {
            $0.tickInterval = interval
            $0.tick = body
        }
        wake()
    }

    /// Whether the caller runs on the executor's thread.
    public var isOnThread: Bool {
        threadID.withLock { id in id.map { pthread_equal($0, pthread_self()) != 0 } ?? false }
    }

    /// Whether ``shutdown()`` was called.
    public var isStopping: Bool { queue.withLock { $0.stopping } }

    /// Runs the work queued so far, ends the thread and waits for it (on the thread itself it returns at once and
    /// the thread ends after the current job). Later work runs on a short-lived thread. Idempotent.
    public func shutdown() {
        let (already, started) = queue.withLock { q -> (Bool, Bool) in
            defer { q.stopping = true }
            return (q.stopping, q.started)
        }
        guard !already else { return }
        if started {
            wake()
            thread.withLock { $0 }?.join()
        } else {
            // Never started: what waits runs here, so no caller waits forever.
            queue.withLock { $0.finished = true }
            drainLate()
        }
    }

    // MARK: SerialExecutor

    public func enqueue(_ job: consuming ExecutorJob) {
        enqueue(work: .job(UnownedJob(job)))
    }

    public func asUnownedSerialExecutor() -> UnownedSerialExecutor {
        UnownedSerialExecutor(ordinary: self)
    }

    /// Confirms isolation for `assumeIsolated` in the hooks, which run on the thread outside any job.
    public func checkIsolated() {
        precondition(isOnThread, "not on the thread of executor \(name)")
    }

    public func isIsolatingCurrentContext() -> Bool? {
        isOnThread
    }

    // MARK: The thread

    private func enqueue(work: Work) {
        enum Next { case wake, nothing, late }
        let next = queue.withLock { q -> Next in
            if q.finished {
                q.work.append(work)
                return .late
            }
            q.work.append(work)
            // The thread takes everything at once and then waits on the pipe: one byte per empty→non-empty change.
            return q.work.count == 1 && q.started ? .wake : .nothing
        }
        switch next {
        case .wake: wake()
        case .nothing: break
        case .late: drainLateElsewhere()
        }
    }

    /// Runs late work on a short-lived thread of its own. Not inline: the work may be the continuation of a task
    /// that drops the last reference to this executor, and the enqueuing thread (inside the runtime's task switch)
    /// must not run it. Inline only when no thread can be started, holding a reference meanwhile.
    private func drainLateElsewhere() {
        do {
            try DedicatedThread.detached { [self] in drainLate() }
        } catch {
            withExtendedLifetime(self) { drainLate() }
        }
    }

    /// Runs late work on the calling thread, unless another thread already does.
    private func drainLate() {
        let executor = asUnownedSerialExecutor()
        let go = queue.withLock { q -> Bool in
            guard !q.drainingLate else { return false }
            q.drainingLate = true
            return true
        }
        guard go else { return }
        while true {
            let next = queue.withLock { q -> Work? in
                guard !q.work.isEmpty else {
                    q.drainingLate = false
                    return nil
                }
                return q.work.removeFirst()
            }
            guard let next else { return }
            next.run(on: executor)
        }
    }

    private func wake() {
        var one: UInt8 = 1
        _ = write(wakeWriteFD, &one, 1)
    }

    private func loop() {
        threadID.withLock { $0 = pthread_self() }
        let executor = asUnownedSerialExecutor()
        let clock = ContinuousClock()
        var nextTick: ContinuousClock.Instant?
        while true {
            let h = hooks.withLock { $0 }
            var timeout: Int32 = -1
            if let interval = h.tickInterval {
                let due = nextTick ?? clock.now.advanced(by: interval)
                nextTick = due
                timeout = Self.milliseconds(max(clock.now.duration(to: due), .zero))
            } else {
                nextTick = nil
            }
            // Once stopping, the wake-up of `shutdown` may have been read already (with the last jobs): no waiting.
            if queue.withLock({ $0.stopping }) { timeout = 0 }
            let watchedReadable = Self.waitReadable(wakeFD, or: h.watched, timeoutMilliseconds: timeout)
            let (work, stopping) = queue.withLock { q -> ([Work], Bool) in
                let work = q.work
                q.work = []
                if q.stopping && work.isEmpty { q.finished = true }
                return (work, q.stopping)
            }
            for w in work { w.run(on: executor) }
            if stopping && work.isEmpty { break }
            // After the jobs: what they caused (notifications of their own transactions) is already queued there.
            if watchedReadable && !stopping { h.onReadable?() }
            if !stopping, let interval = h.tickInterval, let due = nextTick, clock.now >= due {
                h.tick?()
                nextTick = clock.now.advanced(by: interval)
            }
        }
        threadID.withLock { $0 = nil }
        // The hooks may hold the owner; let it go.
        hooks.withLock { $0 = Hooks() }
        // Work that arrived while the flag was set but before `finished` was seen runs here, in order.
        drainLate()
    }

    /// `d` in whole milliseconds, rounded up, at most `Int32.max` (a poll timeout).
    private static func milliseconds(_ d: Duration) -> Int32 {
        let (seconds, attoseconds) = d.components
        guard seconds < Int64(Int32.max) / 1000 else { return Int32.max }
        return Int32(clamping: seconds * 1000 + (attoseconds + 999_999_999_999_999) / 1_000_000_000_000_000)
    }

    /// Waits until the wake pipe `fd` or `watched` (ignored when negative) is readable or the timeout passes;
    /// drains the pipe and returns whether `watched` is readable. EINTR retried.
    private static func waitReadable(_ fd: Int32, or watched: Int32, timeoutMilliseconds: Int32) -> Bool {
        var p = [
            pollfd(fd: fd, events: Int16(POLLIN), revents: 0),
            pollfd(fd: watched, events: Int16(POLLIN), revents: 0),
        ]
        var rc: Int32
        repeat { rc = poll(&p, watched >= 0 ? 2 : 1, timeoutMilliseconds) } while rc < 0 && errno == EINTR
        guard rc > 0 else { return false }
        if p[0].revents != 0 {
            var buffer = [UInt8](repeating: 0, count: 64)
            while read(fd, &buffer, 64) > 0 {}
        }
        return watched >= 0 && p[1].revents != 0
    }
}
