import Core
import Logging
import Store

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// The store's one writer: an actor on its own thread (a ``Core/ThreadExecutor``) that commits the coordinator's
/// changes (bans, unbans, pending failures, log positions, journal cursors) in order, one transaction for everything
/// queued, so SQLite never holds the coordinator.
///
/// When a transaction fails (full disk, read-only file, a lock held by another process) nothing is lost: the
/// changes stay queued in memory, in order, and are retried (1 s, doubling up to 30 s) until the store takes them.
/// The failure is logged once when it starts (again only when the error changes, or every 10 minutes), its end
/// once, and `health` shows it for `status`. Positions are among the queued changes, so a position is never
/// stored ahead of the bans and failures read before it.
///
/// The coordinator hands changes over without waiting (``submit(_:afterCommit:)`` only queues them and schedules
/// one ``drain()`` on the thread); `status` reads ``health`` at any time. Both go through `lock`, which also lets
/// ``stop()`` cut a retry wait short.
actor StoreWriter {
    struct Work {
        var changes: [StoreChange]
        /// Runs right after the changes are committed (or when the first attempt fails): the `Ban` log lines.
        var afterCommit: (@Sendable () -> Void)?
    }

    /// The writer's state, for `status`.
    struct Health: Sendable, Hashable {
        /// The last write error while writing fails; nil when the store is writing.
        var error: String?
        /// Since when (epoch seconds) writes fail.
        var failingSince: Double?
        /// Changes waiting to be written.
        var queued: Int
        /// Transactions committed, and the time they took (milliseconds): total and longest.
        var transactions: Int
        var totalMilliseconds: Double
        var longestMilliseconds: Double
        /// Transactions that failed (each retry counts).
        var failures = 0
    }

    struct State {
        var queue: [Work] = []
        var queuedChanges = 0
        var stopping = false
        var busy = false
        /// A drain is queued on the thread or running: it runs until the queue is empty.
        var scheduled = false
        var error: String?
        var errorKind: String?
        var failingSince: Double?
        var lastReport: Double = 0
        var transactions = 0
        var totalNanoseconds: UInt64 = 0
        var longestNanoseconds: UInt64 = 0
        var failures = 0
        var idleWaiters: [CheckedContinuation<Void, Never>] = []
    }

    nonisolated let store: BanStore
    nonisolated let path: String
    nonisolated let log: Logger
    nonisolated let clock: @Sendable () -> Double
    /// The queue (filled by the coordinator), the figures for `status` and the stop flag.
    private nonisolated let lock = ConditionLock(State())
    /// The writer's thread: every isolated method runs there.
    private nonisolated let executor = ThreadExecutor(name: "store writer")
    nonisolated var unownedExecutor: UnownedSerialExecutor { executor.asUnownedSerialExecutor() }
    /// The wait before the next attempt while writing fails.
    private var retryMilliseconds = 1000

    init(store: BanStore, path: String, log: Logger, clock: @escaping @Sendable () -> Double) {
        self.store = store
        self.path = path
        self.log = log
        self.clock = clock
    }

    /// Starts the writer thread (idempotent).
    nonisolated func start() {
        do {
            try executor.start()
        } catch {
            log.critical("cannot start the database writer thread: \(error); bans are not stored")
        }
    }

    /// Queues `changes`; `afterCommit` runs on the writer thread once they are committed (or when the first
    /// attempt fails: bans are in the kernel by then, and their log lines are not held back by the store).
    nonisolated func submit(_ changes: [StoreChange], afterCommit: (@Sendable () -> Void)? = nil) {
        guard !changes.isEmpty || afterCommit != nil else { return }
        let schedule = lock.withLock { s -> Bool in
            s.queue.append(Work(changes: changes, afterCommit: afterCommit))
            s.queuedChanges += changes.count
            // After `stop` nothing more is written.
            guard !s.scheduled && !s.stopping else { return false }
            s.scheduled = true
            return true
        }
        if schedule { scheduleDrain() }
    }

    private nonisolated func scheduleDrain() {
        // Weak: a writer released without `stop` (never started, in tests) is not kept alive by its own queue.
        executor.execute { [weak self] in self?.assumeIsolated { $0.drain() } }
    }

    deinit {
        executor.shutdown()
    }

    /// Returns once everything queued before the call was written (or tried once more, when writing fails).
    nonisolated func waitUntilWritten() async {
        await withCheckedContinuation { (c: CheckedContinuation<Void, Never>) in
            let now = lock.withLock { s -> Bool in
                if s.queue.isEmpty && !s.busy { return true }
                s.idleWaiters.append(c)
                return false
            }
            if now { c.resume() }
        }
    }

    nonisolated var health: Health {
        lock.withLock { s in
            Health(
                error: s.error, failingSince: s.failingSince, queued: s.queuedChanges, transactions: s.transactions,
                totalMilliseconds: Double(s.totalNanoseconds) / 1e6,
                longestMilliseconds: Double(s.longestNanoseconds) / 1e6,
                failures: s.failures)
        }
    }

    /// Writes what is queued (one last attempt when writing fails) and ends the thread.
    nonisolated func stop() {
        lock.withLock { $0.stopping = true }
        lock.broadcast()
        executor.shutdown()
    }

    /// Writes everything queued, in order, one transaction per attempt; returns when the queue is empty (or, once
    /// stopping, after the last attempt). While writing fails it waits on the thread between attempts.
    private func drain() {
        while true {
            let (works, stopping) = lock.withLock { s -> ([Work], Bool) in
                s.busy = !s.queue.isEmpty
                if s.queue.isEmpty { s.scheduled = false }
                return (s.queue, s.stopping)
            }
            if works.isEmpty {
                finishIdle()
                return
            }
            let changes = works.flatMap(\.changes)
            let notes = works.compactMap(\.afterCommit)
            let started = SourceChannel.monotonicNanoseconds()
            do {
                let lastBan = try store.apply(changes)
                // The Ban lines, then the mark that they are written. A crash before the lines leaves bans past the
                // mark: the next start writes their lines. Only a crash between the lines and the mark (one small
                // transaction, committed without the disk wait) can write a line twice.
                for n in notes { n() }
                if let lastBan {
                    do {
                        try store.markBansLogged(upTo: lastBan)
                    } catch {
                        lock.withLock { s in
                            s.queue.insert(
                                Work(changes: [.banLogged(upTo: lastBan)], afterCommit: nil), at: works.count)
                            s.queuedChanges += 1
                        }
                    }
                }
                let took = SourceChannel.monotonicNanoseconds() - started
                let recovered = lock.withLock { s -> (String, Double?)? in
                    s.queue.removeFirst(works.count)
                    s.queuedChanges -= changes.count
                    s.transactions += 1
                    s.totalNanoseconds += took
                    s.longestNanoseconds = max(s.longestNanoseconds, took)
                    defer {
                        s.error = nil
                        s.errorKind = nil
                        s.failingSince = nil
                    }
                    return s.error.map { ($0, s.failingSince) }
                }
                if let (_, since) = recovered {
                    let held = since.map { " (failing since \(Int(clock() - $0)) s)" } ?? ""
                    log.notice("database \(path) is writable again\(held): \(changes.count) held changes written")
                }
                retryMilliseconds = 1000
                finishIdle(onlyWhenEmpty: true)
            } catch {
                for n in notes { n() }
                let merged = Self.coalesce(changes)
                let text = "\(error)"
                // The kind of failure decides whether it is news; the statement that hit it does not.
                let kind = "\(error.code)"
                let now = clock()
                let report = lock.withLock { s -> Bool in
                    s.queue.replaceSubrange(0..<works.count, with: [Work(changes: merged, afterCommit: nil)])
                    s.queuedChanges += merged.count - changes.count
                    let changed = s.errorKind != kind
                    s.failures += 1
                    if s.failingSince == nil { s.failingSince = now }
                    s.error = text
                    s.errorKind = kind
                    if changed || now - s.lastReport >= 600 {
                        s.lastReport = now
                        return true
                    }
                    return false
                }
                if report {
                    let what =
                        "cannot write the database \(path): \(text); bans still reach nftables, \(merged.count) changes "
                        + "are kept in memory and retried, log positions stay at what the database holds"
                    log.error("\(what)")
                }
                if stopping {
                    log.error("stopping with \(merged.count) changes not written to \(path): \(text)")
                    lock.withLock { s in
                        s.queue.removeAll()
                        s.queuedChanges = 0
                        s.scheduled = false
                    }
                    finishIdle()
                    return
                }
                finishIdle()
                // Wait before retrying, unless asked to stop (which makes one more attempt). The thread is the
                // writer's own: nothing else waits behind this.
                let stopping: (State) -> Bool = { $0.stopping }
                lock.wait(until: stopping, timeoutMilliseconds: retryMilliseconds) { _, _ in }
                retryMilliseconds = min(retryMilliseconds * 2, 30_000)
            }
        }
    }

    private nonisolated func finishIdle(onlyWhenEmpty: Bool = false) {
        let waiters = lock.withLock { s -> [CheckedContinuation<Void, Never>] in
            s.busy = false
            if onlyWhenEmpty && !s.queue.isEmpty { return [] }
            defer { s.idleWaiters = [] }
            return s.idleWaiters
        }
        for w in waiters { w.resume() }
    }

    /// Drops changes a later one replaces (the pending failures of one address, a file's position, a source's
    /// cursor), keeping the order of the rest: what is held while the store fails stays proportional to the
    /// addresses and files, not to the number of lines read.
    static func coalesce(_ changes: [StoreChange]) -> [StoreChange] {
        var seen = Set<String>()
        var kept: [StoreChange] = []
        kept.reserveCapacity(changes.count)
        for change in changes.reversed() {
            let key: String?
            switch change {
            case .pending(let p): key = "p\u{0}\(p.jail)\u{0}\(p.address)"
            case .logPosition(let p): key = "f\u{0}\(p.path)"
            case .journalCursor(let source, _): key = "j\u{0}\(source)"
            default: key = nil
            }
            if let key, !seen.insert(key).inserted { continue }
            kept.append(change)
        }
        return kept.reversed()
    }
}
