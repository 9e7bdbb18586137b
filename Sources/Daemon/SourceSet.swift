import Core
import Filter
import Jail
import LogSource
import Logging
import Store
import Synchronization

/// A jail's lines that were not matched for a reason status shows (`status JAIL`, when not zero).
public struct LineCounts: Sendable, Equatable {
    /// Lines longer than the limit (`Bounds.maximumLineLength`), skipped whole: files and journal.
    public var tooLong = 0
    /// Lines on which a regex hit PCRE2's match limit and nothing matched.
    public var matchLimit = 0
    /// Lines handed to the filter (metrics).
    public var lines = 0
    /// Time the filter spent on them, in nanoseconds (metrics).
    public var filterNanoseconds: UInt64 = 0

    /// Zero counts.
    public init(tooLong: Int = 0, matchLimit: Int = 0, lines: Int = 0, filterNanoseconds: UInt64 = 0) {
        self.tooLong = tooLong
        self.matchLimit = matchLimit
        self.lines = lines
        self.filterNanoseconds = filterNanoseconds
    }

    /// The entries `status JAIL` adds to its Filter section.
    var statusEntries: [(String, Int)] { [("Lines too long", tooLong), ("Lines at match limit", matchLimit)] }
}

/// The counters behind `LineCounts`, written by a source thread, read by the control server; they survive
/// a reload (kept by jail name in `SourceSet`).
final class LineCounters: Sendable {
    let tooLong = Atomic<Int>(0)
    let matchLimit = Atomic<Int>(0)
    /// Lines read and the filter's time on them: added once per batch (or journal entry), never per line.
    let lines = Atomic<Int>(0)
    let filterNanoseconds = Atomic<UInt64>(0)
    /// Whether the first line at the match limit (or, from the journal, too long) was logged.
    let loggedMatchLimit = Atomic<Bool>(false)
    let loggedTooLong = Atomic<Bool>(false)

    var counts: LineCounts {
        LineCounts(
            tooLong: tooLong.load(ordering: .relaxed), matchLimit: matchLimit.load(ordering: .relaxed),
            lines: lines.load(ordering: .relaxed), filterNanoseconds: filterNanoseconds.load(ordering: .relaxed))
    }
}

/// The dates of one batch's lines, found once for every jail of a group (same file subscription, same date
/// settings: `CompiledFilter.dateSharingKey`) instead of once per jail. The tailer hands a batch to the group's
/// jails one after the other: the first one finds the dates, the others reuse them.
final class BatchDates: @unchecked Sendable {
    // SAFETY: used only by the file tailer's one thread, which delivers every batch of every subscription
    // (`FileTailer`), through the handlers `SourceSet.start` makes; never touched elsewhere.
    let finder: SharedDateFinder
    let maxLineLength: Int
    private var batch: LineBatch.Identity?
    private var dates: [FoundDate?] = []
    /// Batches whose dates were looked for (tests: once per batch, whatever the number of jails).
    private(set) var batchesDated = 0

    init(finder: SharedDateFinder, maxLineLength: Int) {
        self.finder = finder
        self.maxLineLength = maxLineLength
    }

    /// The date of each line of `batch` (looked for once per batch; nil for a line over the limit, which no
    /// processor looks at).
    func dates(of batch: LineBatch) -> [FoundDate?] {
        let id = batch.identity
        guard id != self.batch else { return dates }
        self.batch = id
        batchesDated += 1
        dates.removeAll(keepingCapacity: true)
        for line in batch { dates.append(line.count <= maxLineLength ? finder.find(line) : nil) }
        return dates
    }
}

/// Feeds one jail's filter from its source thread and collects the failures it finds for the batch's hand-over.
final class JailReader: @unchecked Sendable {
    // SAFETY: `processor` and `pending` are used only by the one source thread that delivers this jail's lines,
    // which calls `consume` and `take` serially.
    let jail: String
    let processor: LineProcessor
    let counters: LineCounters
    let logger: Logger?
    /// Notes sshd's accepted logins (set for jails with sshd's filter).
    let admin: AdminGuard?
    private var pending: [FailureEvent] = []

    init(
        jail: String, processor: LineProcessor, counters: LineCounters = LineCounters(), logger: Logger? = nil,
        admin: AdminGuard? = nil
    ) {
        self.admin = admin
        self.jail = jail
        self.processor = processor
        self.counters = counters
        self.logger = logger
    }

    /// One line; `time` is the entry's own timestamp for journal lines.
    @inline(__always)
    func consume(_ line: UnsafeBufferPointer<UInt8>, time: Double? = nil) {
        handle(line, outcome: time.map { processor.process(line, time: $0) } ?? processor.process(line))
    }

    @inline(__always)
    private func handle(_ line: UnsafeBufferPointer<UInt8>, outcome: LineOutcome) {
        guard outcome == .matched else {
            if let admin, outcome == .missed || outcome == .ignored { admin.scan(line) }
            if outcome == .tooLong { skippedTooLong(1, length: line.count, source: nil) }
            if outcome == .matchLimit { hitMatchLimit(line.count) }
            return
        }
        for f in processor.failures where !f.isNoFail {
            guard let a = f.address else { continue }
            pending.append(
                FailureEvent(address: a, time: f.time, matches: f.lines, fields: f.fields, attempts: f.countedAttempts))
        }
    }

    /// One batch of a file's lines (the tailer's handler): over-long lines the reader skipped are counted
    /// (the tailer logs the first of each file), then every line is processed; `take()` collects the failures.
    ///
    /// `dates`: the batch's dates, shared with the other jails of the same subscription and date settings.
    func consume(_ batch: LineBatch, dates sharedDates: BatchDates? = nil) {
        skippedTooLong(batch.skippedLines, length: batch.skippedLength, source: batch.path)
        let started = SourceChannel.monotonicNanoseconds()
        if let sharedDates {
            let dates = sharedDates.dates(of: batch)
            for i in batch.indices {
                let line = batch[i]
                handle(line, outcome: processor.process(line, date: dates[i]))
            }
        } else {
            for line in batch { consume(line) }
        }
        counters.lines.add(batch.count, ordering: .relaxed)
        counters.filterNanoseconds.add(SourceChannel.monotonicNanoseconds() &- started, ordering: .relaxed)
    }

    /// One journal entry (the journal source's handler). The journal line starts with the entry's date and a
    /// space; like fail2ban's systemd backend, the filters see the rest, and the time is the entry's own.
    func consume(entry: JournalEntry) {
        let line = entry.line
        let body = line.firstIndex(of: 0x20).map { UnsafeBufferPointer(rebasing: line[($0 + 1)...]) } ?? line
        let started = SourceChannel.monotonicNanoseconds()
        consume(body, time: Double(entry.realtime) / 1_000_000)
        counters.lines.add(1, ordering: .relaxed)
        counters.filterNanoseconds.add(SourceChannel.monotonicNanoseconds() &- started, ordering: .relaxed)
    }

    /// Lines skipped as longer than the limit (by the line reader, the journal source or the filter); the
    /// first is logged once per jail unless `source` (a file, whose tailer logs it) is given.
    func skippedTooLong(_ count: Int, length: Int, source: String?) {
        guard count > 0 else { return }
        counters.tooLong.add(count, ordering: .relaxed)
        if source == nil, !counters.loggedTooLong.exchange(true, ordering: .relaxed) {
            logger?.warning(
                "[\(jail)] skipped a line of \(length) bytes, longer than \(processor.filter.options.maxLineLength): not matched (later ones are only counted in status)"
            )
        }
    }

    private func hitMatchLimit(_ length: Int) {
        counters.matchLimit.add(1, ordering: .relaxed)
        if !counters.loggedMatchLimit.exchange(true, ordering: .relaxed) {
            logger?.warning(
                "[\(jail)] a line of \(length) bytes hit the regex match limit and was not matched (later ones are only counted in status)"
            )
        }
    }

    /// End of a batch: what was found since the last call.
    func take() -> [FailureEvent] {
        guard !pending.isEmpty else { return [] }
        defer { pending.removeAll(keepingCapacity: true) }
        return pending
    }
}

/// The failures the file tailer's jail handlers found in the batch being delivered, until the batch's end.
final class BatchStaging: @unchecked Sendable {
    // SAFETY: used only on the file tailer's thread (its handlers and its `batchEnd` run there, one at a time).
    var failures: [(jail: String, events: [FailureEvent])] = []

    func add(_ jail: String, _ events: [FailureEvent]) {
        if !events.isEmpty { failures.append((jail, events)) }
    }

    func take() -> [(jail: String, events: [FailureEvent])] {
        defer { failures = [] }
        return failures
    }
}

/// The daemon's log sources: one file tailer shared by every jail (each file is opened and read once), and one
/// journal reader per journal jail. Each batch read goes to the coordinator through the bounded `channel` with
/// the position (or cursor) after it; the coordinator has it stored once the batch's work is durable, so a
/// restart resumes exactly after what was durable.
final class SourceSet: Sendable {
    let store: BanStore?
    let clock: @Sendable () -> Double
    let readExisting: Bool
    let logger: Logger
    let channel: SourceChannel
    let tailer: FileTailer
    /// Fed the lines of sshd jails (accepted logins).
    let admin: AdminGuard?
    let staging = BatchStaging()

    struct State: ~Copyable {
        var subscriptions: [FileTailer.Subscription] = []
        var journals: [JournalSource] = []
        var started = false
        /// Per jail, kept across reloads.
        var counters: [String: LineCounters] = [:]
    }

    private let state = Mutex(State())

    init(
        store: BanStore?, clock: @escaping @Sendable () -> Double, readExisting: Bool, logger: Logger,
        channel: SourceChannel, admin: AdminGuard? = nil
    ) {
        self.admin = admin
        self.store = store
        self.clock = clock
        self.readExisting = readExisting
        self.logger = logger
        self.channel = channel
        let log = logger
        let staging = self.staging
        tailer = FileTailer(
            options: FileTailer.Options(),
            events: { event in
                switch event {
                case .opened(let path, let offset): log.info("Added logfile: '\(path)' (pos = \(offset))")
                case .missing(let path): log.warning("Log file \(path) does not exist yet; watching for it")
                case .rotated(let path): log.info("Log rotation detected for \(path)")
                case .truncated(let path): log.info("Log truncation detected for \(path)")
                case .closed(let path): log.info("Removed logfile: '\(path)'")
                case .lineTooLong(let path, let length, let limit):
                    log.warning(
                        "\(path): skipped a line of \(length) bytes, longer than \(limit): not matched (later ones are only counted in status)"
                    )
                case .failed(let e): log.error("\(e)")
                }
            },
            batchEnd: { p in
                channel.send(
                    SourceBatch(
                        failures: staging.take(),
                        progress: .logPosition(
                            LogPosition(
                                path: p.path, position: Int64(clamping: p.offset),
                                firstLineHash: Self.hashText(p.firstLineHash),
                                inode: p.inode))))
            })
    }

    static func hashText(_ h: UInt64?) -> String { h.map { String($0, radix: 16) } ?? "" }

    func storedPositions(_ paths: [String]) -> [FilePosition] {
        guard let store else { return [] }
        var out: [FilePosition] = []
        for p in paths {
            let stored: LogPosition?
            do {
                stored = try store.logPosition(path: p)
            } catch {
                logger.error("cannot read the stored position of \(p): \(error); reading it as a new file")
                continue
            }
            guard let lp = stored else { continue }
            out.append(
                FilePosition(
                    path: lp.path, inode: lp.inode, offset: UInt64(max(0, lp.position)),
                    firstLineHash: UInt64(lp.firstLineHash, radix: 16)))
        }
        return out
    }

    /// Subscribes `setups`, replacing any previous set (reload).
    func start(_ setups: [JailSetup]) {
        let (oldSubscriptions, oldJournals, needsStart) = state.withLock { s in
            defer {
                s.subscriptions = []
                s.journals = []
                s.started = true
            }
            return (s.subscriptions, s.journals, !s.started)
        }
        for j in oldJournals { j.stop() }

        var requests: [FileTailer.Request] = []
        var journals: [JournalSource] = []
        // Jails reading the same files from the same start with the same date settings find each date once.
        var groups: [String: BatchDates] = [:]
        func sharedDates(_ filter: CompiledFilter, paths: [String], start: StartPosition) -> BatchDates? {
            guard let key = filter.dateSharingKey else { return nil }
            let group = "\(key)\u{1}\(start)\u{1}\(paths.joined(separator: "\u{0}"))"
            if let dates = groups[group] { return dates }
            guard let finder = try? filter.makeSharedDateFinder() else { return nil }
            let dates = BatchDates(finder: finder, maxLineLength: filter.options.maxLineLength)
            groups[group] = dates
            return dates
        }
        for setup in setups {
            let processor: LineProcessor
            do {
                processor = try setup.filter.makeProcessor()
            } catch {
                logger.error("[\(setup.name)] cannot start its filter: \(error)")
                continue
            }
            let counters = state.withLock { s in
                if let c = s.counters[setup.name] { return c }
                let c = LineCounters()
                s.counters[setup.name] = c
                return c
            }
            let reader = JailReader(
                jail: setup.name, processor: processor, counters: counters, logger: logger,
                admin: setup.configuration.filterSpec.hasPrefix("sshd") ? admin : nil)
            var journalLocation: JournalSource.Location? = nil
            switch setup.source {
            case .journal(let location): journalLocation = location
            case .files(.auto) where Self.noneExist(setup.logPaths): journalLocation = .system
            case .files: break
            }
            if let journalLocation {
                if !setup.source.isJournal {
                    logger.notice(
                        "[\(setup.name)] none of its log files exist (\(setup.logPaths.joined(separator: ", "))); reading the systemd journal instead"
                    )
                }
                let cursorKey = "jail:\(setup.name)"
                var stored: String? = nil
                do {
                    stored = try store?.journalCursor(source: cursorKey)
                } catch {
                    logger.error(
                        "[\(setup.name)] cannot read the stored journal cursor: \(error); starting at the tail")
                }
                let channel = self.channel
                let jail = setup.name
                let source = JournalSource(
                    location: journalLocation, match: JournalMatch(alternatives: setup.journalMatch),
                    start: stored.map { .cursor($0) } ?? .tail,
                    handler: { entry in reader.consume(entry: entry) },
                    batchEnd: { cursor in
                        channel.send(
                            SourceBatch(
                                failures: [(jail, reader.take())],
                                progress: .journalCursor(source: cursorKey, cursor: cursor)))
                    },
                    tooLong: { length in reader.skippedTooLong(1, length: length, source: nil) })
                do {
                    try source.start()
                    journals.append(source)
                    logger.info(
                        "[\(setup.name)] reading the systemd journal (\(JournalMatch(alternatives: setup.journalMatch)))"
                    )
                } catch {
                    logger.error("[\(setup.name)] cannot read the systemd journal: \(error)")
                }
                continue
            }
            // Files added at run time with `head` start at their beginning; the others at their end (or at the
            // stored position), unless the daemon was told to read existing content.
            let head = setup.logPaths.filter { readExisting || setup.headPaths.contains($0) }
            let tail = setup.logPaths.filter { !head.contains($0) }
            for (paths, start) in [(head, StartPosition.beginning), (tail, .end)] where !paths.isEmpty || start == .end
            {
                let dates = sharedDates(setup.filter, paths: paths, start: start)
                requests.append(
                    FileTailer.Request(
                        paths, startAt: start, resume: storedPositions(paths),
                        handler: { [staging] batch in
                            reader.consume(batch, dates: dates)
                            // Handed over with the position at the batch's end (the tailer's `batchEnd`).
                            staging.add(reader.jail, reader.take())
                        }))
            }
        }
        // One step, so a file watched before and after a reload is neither closed nor read twice.
        let subscriptions = tailer.replace(oldSubscriptions, with: requests)
        state.withLock { s in
            s.subscriptions = subscriptions
            s.journals = journals
        }
        if needsStart {
            do {
                try tailer.start()
            } catch {
                logger.error("cannot start watching log files: \(error)")
            }
        }
    }

    /// A jail's skipped-line counters (zero for a jail never started).
    func lineCounts(jail: String) -> LineCounts {
        state.withLock { $0.counters[jail]?.counts } ?? LineCounts()
    }

    static func noneExist(_ paths: [String]) -> Bool {
        guard !paths.isEmpty else { return true }
        for p in paths {
            if p.contains("*") || p.contains("?") || p.contains("[") { return false }
            if access(p, F_OK) == 0 { return false }
        }
        return true
    }

    func stop() {
        tailer.stop()
        let journals = state.withLock { s in
            defer { s.journals = [] }
            return s.journals
        }
        for j in journals { j.stop() }
    }
}

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif
