import Core
import Jail
import Logging
import Store

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// What a log source hands the coordinator after one read: the failures each jail's filter found in it, and how
/// far the source has read. `progress` covers every line before it, so it is stored only once the failures of
/// this batch (and of every batch before it) are durable.
public struct SourceBatch: Sendable {
    /// Failures per jail, in reading order.
    public var failures: [(jail: String, events: [FailureEvent])]
    /// The file position (`.logPosition`) or journal cursor (`.journalCursor`) after this batch.
    public var progress: StoreChange?

    /// A batch.
    public init(failures: [(jail: String, events: [FailureEvent])], progress: StoreChange? = nil) {
        self.failures = failures
        self.progress = progress
    }

    var eventCount: Int { failures.reduce(0) { $0 + $1.events.count } }
}

/// The bounded hand-over from the reader threads to the coordinator. A reader that finds it full waits
/// (back-pressure): its position is stored only once its failures are durable, so waiting loses nothing, and
/// memory stays bounded however fast the logs grow. Waits are counted for `status`.
final class SourceChannel: Sendable {
    struct State {
        var queue: [SourceBatch] = []
        var queuedUnits = 0
        var finished = false
        var consumer: CheckedContinuation<[SourceBatch]?, Never>?
        var waits = 0
        var waitedNanoseconds: UInt64 = 0
        var lastReport: UInt64 = 0
    }

    /// How many failures (a batch without failures counts as one) may wait before readers block.
    let capacity: Int
    private let lock: ConditionLock<State>

    /// Logs (at most once a minute) that readers wait.
    let log: Logger?

    init(capacity: Int = 50_000, log: Logger? = nil) {
        self.capacity = max(1, capacity)
        self.log = log
        lock = ConditionLock(State())
    }

    /// Hands `batch` over; blocks the calling (reader) thread while the channel is full. Returns false when the
    /// channel was finished (the daemon is stopping): the batch is dropped, and its position is not stored.
    @discardableResult
    func send(_ batch: SourceBatch) -> Bool {
        let units = max(1, batch.eventCount)
        let capacity = self.capacity
        let fits: (State) -> Bool = { s in s.finished || s.queue.isEmpty || s.queuedUnits + units <= capacity }
        var started: UInt64 = 0
        if !lock.withLock({ fits($0) }) { started = Self.monotonicNanoseconds() }
        var report: (Int, UInt64)? = nil
        let (accepted, consumer) = lock.wait(until: fits) {
            s, _ -> (Bool, CheckedContinuation<[SourceBatch]?, Never>?) in
            if started != 0 {
                let now = Self.monotonicNanoseconds()
                s.waits += 1
                s.waitedNanoseconds += now - started
                if s.lastReport == 0 || now - s.lastReport >= 60_000_000_000 {
                    s.lastReport = now
                    report = (s.waits, s.waitedNanoseconds / 1_000_000)
                }
            }
            guard !s.finished else { return (false, nil) }
            if let c = s.consumer {
                s.consumer = nil
                return (true, c)
            }
            s.queue.append(batch)
            s.queuedUnits += units
            return (true, nil)
        }
        consumer?.resume(returning: [batch])
        if let (waits, ms) = report {
            log?.warning(
                "log readers wait for the ban coordinator (more than \(capacity) failures queued): \(waits) waits, \(ms) ms so far; nothing is lost, positions follow what is stored"
            )
        }
        return accepted
    }

    /// Everything queued (waiting until something is), or nil once finished and empty.
    func next() async -> [SourceBatch]? {
        await withCheckedContinuation { (c: CheckedContinuation<[SourceBatch]?, Never>) in
            let ready: [SourceBatch]?? = lock.withLock { s in
                if !s.queue.isEmpty {
                    let all = s.queue
                    s.queue.removeAll(keepingCapacity: true)
                    s.queuedUnits = 0
                    return .some(all)
                }
                if s.finished { return .some(nil) }
                s.consumer = c
                return .none
            }
            if let ready {
                lock.broadcast()
                c.resume(returning: ready)
            }
        }
    }

    /// Ends the channel: blocked readers return, `next()` returns what is left and then nil.
    func finish() {
        let consumer = lock.withLock { s -> CheckedContinuation<[SourceBatch]?, Never>? in
            s.finished = true
            defer { s.consumer = nil }
            return s.queue.isEmpty ? s.consumer : nil
        }
        lock.broadcast()
        consumer?.resume(returning: nil)
    }

    /// How often readers waited for room, and for how long in total (milliseconds).
    var backPressure: (waits: Int, milliseconds: Int) {
        lock.withLock { ($0.waits, Int($0.waitedNanoseconds / 1_000_000)) }
    }

    static func monotonicNanoseconds() -> UInt64 {
        var ts = timespec()
        clock_gettime(CLOCK_MONOTONIC, &ts)
        return UInt64(ts.tv_sec) * 1_000_000_000 + UInt64(ts.tv_nsec)
    }
}
