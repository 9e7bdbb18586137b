import Core
import Dispatch
import Logging
import Synchronization

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// Runs one jail's command actions, in the order they were asked for, on a thread of its own.
///
/// The coordinator only `enqueue`s (a lock and an append) and moves on: a slow `actionban` never delays counting
/// or a native ban, in this jail or any other. Jobs run one at a time, each action of the jail in turn, each
/// command with its action's timeout, so a jail's ban always runs before its unban. The queue holds at most
/// `capacity` jobs; more are dropped, counted (`dropped`) and logged.
///
/// ```swift
/// let runner = ActionRunner(jail: "sshd", actions: actions, log: log)
/// runner.enqueue(.init(phase: "actionban", subject: "192.0.2.1", values: values))
/// let abandoned = await runner.finish(timeout: 60)   // at stop
/// ```
public final class ActionRunner: Sendable {
    /// One phase to run for every action of the jail.
    public struct Job: Sendable {
        /// `actionban`, `actionunban`, `actionstart`, …
        public var phase: String
        /// What the job is about, for the log (`192.0.2.1`, or empty).
        public var subject: String
        /// The tag values.
        public var values: ActionValues
        /// Fills in values that take time to find (reverse DNS, merged matches), on the runner's thread, given
        /// the tags the commands use.
        public var enrich: (@Sendable (inout ActionValues, _ uses: (String) -> Bool) -> Void)?
        /// For `actionflush` (stop, a jail removed): the values of every ban, for the actions without an
        /// `actionflush`, which get `actionunban` for each instead (fail2ban's `__flushBan`).
        public var unbanEach: [ActionValues] = []

        /// A job.
        public init(
            phase: String, subject: String = "", values: ActionValues,
            enrich: (@Sendable (inout ActionValues, _ uses: (String) -> Bool) -> Void)? = nil
        ) {
            self.phase = phase
            self.subject = subject
            self.values = values
            self.enrich = enrich
        }
    }

    /// Counters, for `status`.
    public struct Counters: Sendable, Hashable {
        /// Jobs waiting.
        public var pending: Int
        /// Jobs finished.
        public var done: Int
        /// Jobs refused because the queue was full.
        public var dropped: Int
        /// Jobs left unrun at stop.
        public var abandoned: Int
    }

    /// Default queue bound per jail.
    public static let defaultCapacity = 10_000

    /// The jail.
    public let jail: String
    /// Its command actions, in configuration order.
    public let actions: [CommandAction]
    /// Most jobs waiting at once.
    public let capacity: Int
    private let log: Logger

    private struct State {
        var queue: [Job] = []
        var head = 0
        var running = false
        var closed = false
        var workerStarted = false
        var counters = Counters(pending: 0, done: 0, dropped: 0, abandoned: 0)
        var predecessor: ActionRunner?
    }
    private let state = Mutex(State())
    private let wake = DispatchSemaphore(value: 0)
    private let idle = DispatchSemaphore(value: 0)

    /// A runner for `jail`. `after`: a runner this one replaces (reload); its jobs finish before this one's start.
    public init(
        jail: String, actions: [CommandAction], capacity: Int = ActionRunner.defaultCapacity,
        after: ActionRunner? = nil,
        log: Logger
    ) {
        self.jail = jail
        self.actions = actions
        self.capacity = max(1, capacity)
        self.log = log
        state.withLock { $0.predecessor = after }
    }

    /// Queues `job`; false (counted and logged) when the queue is full or the runner is finished.
    @discardableResult
    public func enqueue(_ job: Job) -> Bool {
        enum Outcome {
            case queued(startWorker: Bool)
            case full(Int)
            case closed
        }
        let outcome: Outcome = state.withLock { s in
            if s.closed { return .closed }
            if s.queue.count - s.head >= capacity {
                s.counters.dropped += 1
                return .full(s.counters.dropped)
            }
            s.queue.append(job)
            s.counters.pending += 1
            let start = !s.workerStarted
            s.workerStarted = true
            return .queued(startWorker: start)
        }
        switch outcome {
        case .queued(let startWorker):
            if startWorker { startThread() }
            wake.signal()
            return true
        case .full(let dropped):
            // One line for the first drop and then one per thousand: an overload must not flood the log too.
            if dropped == 1 || dropped % 1000 == 0 {
                log.error(
                    "[\(jail)] action queue full (\(capacity) waiting): \(job.phase) \(job.subject) not run; \(dropped) dropped so far"
                )
            }
            return false
        case .closed:
            log.error("[\(jail)] actions stopped: \(job.phase) \(job.subject) not run")
            return false
        }
    }

    /// The counters now.
    public var counters: Counters { state.withLock { $0.counters } }

    /// Waits until every queued job has run (or `timeout` seconds passed); true when idle.
    @discardableResult
    public func waitUntilIdle(timeout: Double) async -> Bool {
        let deadline = DispatchTime.now().uptimeNanoseconds &+ UInt64(max(0, min(timeout, 86_400)) * 1e9)
        while true {
            if state.withLock({ $0.queue.count - $0.head == 0 && !$0.running }) { return true }
            if DispatchTime.now().uptimeNanoseconds >= deadline { return false }
            try? await Task.sleep(for: .milliseconds(5))
        }
    }

    /// Stops taking jobs and waits up to `timeout` seconds for the queued ones; those still waiting then are not run,
    /// and each is logged. Returns them. The one running then is waited for (its own timeout bounds it).
    @discardableResult
    public func finish(timeout: Double) async -> [Job] {
        let wasStarted = state.withLock { s -> Bool in
            s.closed = true
            return s.workerStarted
        }
        wake.signal()
        if wasStarted {
            await waitUntilIdle(timeout: timeout)
        }
        let abandoned: [Job] = state.withLock { s in
            let rest = Array(s.queue[s.head...])
            s.queue = []
            s.head = 0
            s.counters.pending = 0
            s.counters.abandoned += rest.count
            return rest
        }
        wake.signal()
        for job in abandoned {
            log.error("[\(jail)] not run at stop (still waiting after \(timeout) s): \(job.phase) \(job.subject)")
        }
        // The command running now ends within its own timeout (then it is killed and reported): wait for it, so
        // no action outlives the stop unreported.
        let longest = actions.map(\.timeout).max() ?? 0
        await waitUntilIdle(timeout: longest + 1)
        return abandoned
    }

    /// Stops taking jobs; the queued ones still run (a reload replaced this runner by one created `after:` it).
    public func retire() {
        state.withLock { $0.closed = true }
        wake.signal()
    }

    /// Waits (blocking) until the worker thread ended; for a successor runner after a reload.
    private func joinWorker() {
        let (started, closed) = state.withLock { ($0.workerStarted, $0.closed) }
        guard started, closed else { return }
        idle.wait()
        idle.signal()
    }

    private func startThread() {
        do {
            try DedicatedThread.detached { [self] in workerLoop() }
        } catch {
            log.error("[\(jail)] cannot start the action thread (\(error)); actions run on a shared thread")
            DispatchQueue.global().async { [self] in workerLoop() }
        }
    }

    private func workerLoop() {
        if let before = state.withLock({ s -> ActionRunner? in
            defer { s.predecessor = nil }
            return s.predecessor
        }) {
            before.joinWorker()
        }
        while true {
            wake.wait()
            while let job = next() {
                run(job)
                state.withLock { s in
                    s.running = false
                    s.counters.done += 1
                }
            }
            if state.withLock({ $0.closed && $0.queue.count - $0.head == 0 }) { break }
        }
        idle.signal()
    }

    private func next() -> Job? {
        state.withLock { s in
            guard s.head < s.queue.count else { return nil }
            let job = s.queue[s.head]
            s.head += 1
            s.counters.pending -= 1
            s.running = true
            if s.head > 1024, s.head * 2 > s.queue.count {
                s.queue.removeFirst(s.head)
                s.head = 0
            }
            return job
        }
    }

    private func run(_ job: Job) {
        var values = job.values
        if let enrich = job.enrich {
            let actions = self.actions
            enrich(&values) { tag in actions.contains { $0.uses(tag, in: job.phase) } }
        }
        // fail2ban: a restored ban skips the actions marked `norestored` (mail, abuse reports).
        let restored = job.phase == "actionban" && values.trusted["restored"] == "1"
        for action in actions where !(restored && action.noRestored) {
            if job.phase == "actionflush", !action.has("actionflush") {
                for each in job.unbanEach {
                    guard let result = action.runBlocking("actionunban", values: each), result.status != 0 else {
                        continue
                    }
                    log.error(
                        "[\(jail)] \(action.name) actionunban \(each.trusted["ip"] ?? "") failed with status \(result.status)\(result.timedOut ? " (timed out after \(action.timeout) s)" : ""): \(result.command)"
                    )
                }
                continue
            }
            guard let result = action.runBlocking(job.phase, values: values) else { continue }
            if result.status != 0 {
                log.error(
                    "[\(jail)] \(action.name) \(job.phase) \(job.subject) failed with status \(result.status)\(result.timedOut ? " (timed out after \(action.timeout) s)" : ""): \(result.command)"
                )
            }
        }
    }
}
