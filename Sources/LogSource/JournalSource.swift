internal import CSystemd
import Core
import Synchronization

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// One journal entry as a line for the filters, valid only during the delivery call.
public struct JournalEntry {
    /// The entry formatted as fail2ban's systemd backend does (see `JournalSource`); copy what you keep.
    public let line: UnsafeBufferPointer<UInt8>
    /// The entry's own time in µs since the epoch: `_SOURCE_REALTIME_TIMESTAMP`, else the journal's realtime.
    public let realtime: UInt64
    let journal: OpaquePointer

    /// This entry's cursor (allocates; for persisting a single entry — `JournalSource.cursor` is cheaper).
    public func cursor() -> String? {
        var raw: UnsafeMutablePointer<CChar>?
        guard sd_journal_get_cursor(journal, &raw) >= 0, let raw else { return nil }
        defer { free(raw) }
        return String(cString: raw)
    }
}

/// Follows the systemd journal (or journal files) and delivers each matching entry as a text line.
///
/// Lines look like `2023-11-14T22:13:20+00:00 host1 sshd[100]: Failed password for root from 192.0.2.7 …`:
/// local ISO-8601 time of the entry, `_HOSTNAME`, `SYSLOG_IDENTIFIER` (or `_COMM`) with `[SYSLOG_PID or _PID]`,
/// `: ` and `MESSAGE` — what fail2ban's systemd backend feeds its filters. The journal is read and waited on
/// (`sd_journal_get_fd` + `poll`, then `sd_journal_process`) on one dedicated thread; `handler` runs there.
///
/// ```swift
/// let source = try JournalSource(
///     location: .system, match: try JournalMatch(parsing: "_SYSTEMD_UNIT=ssh.service + _COMM=sshd"),
///     start: stored.map { .cursor($0) } ?? .tail,
///     handler: { entry in jail.process(entry.line, time: entry.realtime) },
///     batchEnd: { cursor in store.saveCursor(cursor) })
/// try source.start()
/// ```
public final class JournalSource: Sendable {
    /// Which journal to read.
    public enum Location: Sendable, Hashable {
        /// The system journal (`SD_JOURNAL_SYSTEM`, fail2ban's default `journalflags = 4`: no user sessions).
        case system
        /// The journals `sd_journal_open` selects with these flags (fail2ban's `journalflags`, e.g. 1 for
        /// `SD_JOURNAL_LOCAL_ONLY`, which includes user session journals).
        case flags(Int32)
        /// The journal files in a directory (e.g. `/var/log/journal/<machine-id>`; fail2ban's `journalpath`).
        case directory(String)
        /// Exactly these journal files (fail2ban's `journalfiles`).
        case files([String])
    }

    /// Where to start reading.
    public enum Start: Sendable, Hashable {
        /// After the current last entry: only new entries.
        case tail
        /// The oldest entry.
        case head
        /// After the entry with this cursor (a stored `JournalSource.cursor`).
        case cursor(String)
        /// The first entry at or after this time (µs since the epoch).
        case realtime(UInt64)
    }

    let location: Location
    let match: JournalMatch
    let startAt: Start
    let maxLineLength: Int
    let core: JournalCore

    /// Creates a journal source; nothing is opened until `start()`.
    /// - Parameters:
    ///   - handler: called on the journal thread for each matching entry.
    ///   - batchEnd: called after each run of entries with the cursor of the last one (persist it); started at the
    ///     tail, first with the cursor of the journal's last entry, so that a restart resumes there.
    ///   - maxLineLength: the longest line delivered, as for files (`LineReader.defaultMaxLineLength`); a
    ///     longer entry is skipped whole and counted (`skippedLines`), never delivered cut.
    ///   - tooLong: called on the journal thread with the length of each skipped entry's line.
    public init(
        location: Location = .system,
        match: JournalMatch = .all,
        start: Start = .tail,
        maxLineLength: Int = LineReader.defaultMaxLineLength,
        handler: @escaping @Sendable (JournalEntry) -> Void,
        batchEnd: (@Sendable (String) -> Void)? = nil,
        tooLong: (@Sendable (_ length: Int) -> Void)? = nil
    ) {
        self.location = location
        self.match = match
        self.startAt = start
        self.maxLineLength = max(64, maxLineLength)
        core = JournalCore(handler: handler, batchEnd: batchEnd, tooLong: tooLong)
    }

    /// Entries skipped because their line is longer than `maxLineLength` (never delivered, not even in part).
    public var skippedLines: Int { core.state.withLock { $0.skippedLines } }

    deinit {
        stop()
    }

    /// The cursor of the last entry delivered (nil before the first).
    public var cursor: String? { core.state.withLock { $0.cursor } }

    /// The last read error, if reading failed after `start()` (reading is retried).
    public var lastError: LogSourceError? { core.state.withLock { $0.error } }

    /// Opens the journal, applies the match, seeks, and starts the reading thread.
    /// - Throws: `LogSourceError` `.journalFailed` (cannot open), `.invalidMatch`, `.invalidCursor`,
    ///   `.invalidState` (already started).
    public func start() throws(LogSourceError) {
        guard core.wakeRead >= 0 else { throw LogSourceError(.waitFailed, "cannot create the journal's wake pipe") }
        let already = core.state.withLock { s -> Bool in
            defer { s.started = true }
            return s.started
        }
        if already { throw LogSourceError(.invalidState, "the journal source was already started") }
        let reader = try JournalReader(
            location: location,
            match: match,
            start: startAt,
            maxLineLength: maxLineLength
        )
        let core = self.core
        let thread = try DedicatedThread.logSource { reader.run(core: core) }
        core.state.withLock { $0.thread = thread }
    }

    /// Stops the thread and closes the journal. Idempotent.
    public func stop() {
        let (thread, syncs) = core.state.withLock { s -> (DedicatedThread?, [CheckedContinuation<Void, Never>]) in
            s.stopped = true
            let t = s.thread
            s.thread = nil
            let c = s.syncs
            s.syncs = []
            return (t, c)
        }
        for c in syncs { c.resume() }
        guard let thread else { return }
        core.wake()
        thread.join()
    }

    /// Returns once every entry in the journal when called was delivered.
    public func sync() async {
        await withCheckedContinuation { (c: CheckedContinuation<Void, Never>) in
            let run = core.state.withLock { s -> Bool in
                guard s.started && !s.stopped else { return false }
                s.syncs.append(c)
                return true
            }
            if run { core.wake() } else { c.resume() }
        }
    }

    /// Starts the source and runs until the task is cancelled, then stops it (for a service group).
    public func run() async throws {
        try start()
        let (stream, continuation) = AsyncStream<Never>.makeStream()
        await withTaskCancellationHandler {
            for await _ in stream {}
        } onCancel: {
            continuation.finish()
        }
        stop()
    }
}

/// What a `JournalSource` shares with its thread; the thread holds it strongly, so dropping the source
/// (whose `deinit` stops the thread) is safe.
final class JournalCore: Sendable {
    let handler: @Sendable (JournalEntry) -> Void
    let batchEnd: (@Sendable (String) -> Void)?
    let tooLong: (@Sendable (Int) -> Void)?
    let state: Mutex<Shared>
    let wakeRead: Int32
    let wakeWrite: Int32

    struct Shared: ~Copyable {
        var cursor: String?
        var thread: DedicatedThread?
        var started = false
        var stopped = false
        var syncs: [CheckedContinuation<Void, Never>] = []
        var error: LogSourceError?
        var skippedLines = 0
    }

    init(
        handler: @escaping @Sendable (JournalEntry) -> Void, batchEnd: (@Sendable (String) -> Void)?,
        tooLong: (@Sendable (Int) -> Void)?
    ) {
        self.handler = handler
        self.batchEnd = batchEnd
        self.tooLong = tooLong
        state = Mutex(Shared())
        switch Sys.pipe() {
        case .success(let (r, w)):
            wakeRead = r
            wakeWrite = w
        case .failure:
            wakeRead = -1
            wakeWrite = -1
        }
    }

    deinit {
        if wakeRead >= 0 { Sys.close(wakeRead) }
        if wakeWrite >= 0 { Sys.close(wakeWrite) }
    }

    func wake() {
        if wakeWrite >= 0 { Sys.write(wakeWrite, 1) }
    }
}

/// Owns the `sd_journal` handle; created by `start()`, then used only by the journal thread.
final class JournalReader: @unchecked Sendable {
    // SAFETY: handed from the starting thread to the dedicated thread before first use; never shared after.

    private let journal: OpaquePointer
    private var skipCursor: String?
    /// Started at the tail: the cursor of the entry it stands on, reported before anything else so that it is
    /// stored. Otherwise a restart before the first entry's batch started at the tail again, and every entry written
    /// in between (while the daemon ran, or after it was killed) was never read.
    private var startCursor: String?
    private var formatter: JournalLineFormatter

    init(
        location: JournalSource.Location, match: JournalMatch, start: JournalSource.Start, maxLineLength: Int
    )
        throws(LogSourceError)
    {
        var j: OpaquePointer?
        let rc: Int32
        let what: String
        switch location {
        case .system:
            rc = sd_journal_open(&j, Int32(SD_JOURNAL_SYSTEM))
            what = "the system journal"
        case .flags(let flags):
            rc = sd_journal_open(&j, flags)
            what = "the journal (flags \(flags))"
        case .directory(let dir):
            rc = sd_journal_open_directory(&j, dir, 0)
            what = "the journal directory \(dir)"
        case .files(let paths):
            var cStrings = paths.map { strdup($0) }
            cStrings.append(nil)
            defer { for p in cStrings { free(p) } }
            var constStrings = cStrings.map { $0.map { UnsafePointer<CChar>($0) } }
            rc = constStrings.withUnsafeMutableBufferPointer { sd_journal_open_files(&j, $0.baseAddress, 0) }
            what = "the journal files \(paths.joined(separator: ", "))"
        }
        guard rc >= 0, let j else {
            throw LogSourceError(
                .journalFailed,
                "cannot open \(what); check it exists and is readable (root or group systemd-journal)",
                errno: -rc
            )
        }
        journal = j
        formatter = JournalLineFormatter(maxLineLength: maxLineLength)
        // sd-journal hands out at most 64 KiB of a field by default, silently cut: ask for more than a line
        // may hold, so a longer MESSAGE shows as too long instead of as its prefix.
        let threshold = sd_journal_set_data_threshold(j, maxLineLength + 4096)
        if threshold < 0 {
            throw LogSourceError(.journalFailed, "cannot set the journal's data threshold", errno: -threshold)
        }
        // On a throw below, `deinit` runs (every property is set) and closes the journal.
        try match.validate()
        try applyMatch(match)
        try seek(start)
    }

    deinit {
        sd_journal_close(journal)
    }

    private func applyMatch(_ match: JournalMatch) throws(LogSourceError) {
        for (i, alternative) in match.alternatives.enumerated() {
            if i > 0 {
                let rc = sd_journal_add_disjunction(journal)
                if rc < 0 { throw LogSourceError(.invalidMatch, "journalmatch '\(match)' rejected", errno: -rc) }
            }
            for term in alternative {
                let rc = term.utf8CString.withUnsafeBufferPointer { buf in
                    sd_journal_add_match(journal, buf.baseAddress, buf.count - 1)
                }
                if rc < 0 {
                    throw LogSourceError(
                        .invalidMatch,
                        "journalmatch term '\(term)' rejected by sd-journal; write it as FIELD=value",
                        errno: -rc
                    )
                }
            }
        }
    }

    private func seek(_ start: JournalSource.Start) throws(LogSourceError) {
        let rc: Int32
        switch start {
        case .head:
            rc = sd_journal_seek_head(journal)
        case .tail:
            rc = sd_journal_seek_tail(journal)
            // Step onto the last entry so that `next` yields only entries written from now on.
            if rc >= 0, sd_journal_previous(journal) > 0 {
                var raw: UnsafeMutablePointer<CChar>?
                if sd_journal_get_cursor(journal, &raw) >= 0, let raw {
                    startCursor = String(cString: raw)
                    free(raw)
                }
            }
        case .realtime(let usec):
            rc = sd_journal_seek_realtime_usec(journal, usec)
        case .cursor(let cursor):
            rc = sd_journal_seek_cursor(journal, cursor)
            if rc < 0 {
                throw LogSourceError(
                    .invalidCursor,
                    "the stored journal cursor '\(cursor)' is malformed; delete it to start at the tail",
                    errno: -rc
                )
            }
            skipCursor = cursor
        }
        if rc < 0 { throw LogSourceError(.journalFailed, "cannot seek in the journal", errno: -rc) }
    }

    func run(core source: JournalCore) {
        let wakeFD = source.wakeRead
        let journalFD = sd_journal_get_fd(journal)
        var fds = [pollfd(fd: wakeFD, events: Int16(POLLIN), revents: 0)]
        if journalFD >= 0 {
            fds.append(pollfd(fd: journalFD, events: Int16(sd_journal_get_events(journal)), revents: 0))
        }
        var scratch = (UInt64(0), UInt64(0), UInt64(0), UInt64(0))
        if let cursor = startCursor {
            startCursor = nil
            source.state.withLock { $0.cursor = cursor }
            source.batchEnd?(cursor)
        }
        while true {
            // Take the syncs before reading: they were requested before this drain started.
            let (stopped, syncs) = source.state.withLock { s in
                let c = s.syncs
                s.syncs = []
                return (s.stopped, c)
            }
            if stopped {
                for c in syncs { c.resume() }
                return
            }
            drain(source)
            for c in syncs { c.resume() }
            for i in fds.indices { fds[i].revents = 0 }
            var timeout: Int32 = 250  // polling fallback when the journal offers no fd
            if journalFD >= 0 {
                var usec: UInt64 = 0
                timeout = 1000
                if sd_journal_get_timeout(journal, &usec) >= 0 && usec != UInt64.max {
                    var ts = timespec()
                    clock_gettime(CLOCK_MONOTONIC, &ts)
                    let now = UInt64(ts.tv_sec) * 1_000_000 + UInt64(ts.tv_nsec) / 1000
                    timeout = usec > now ? Int32(min(1000, (usec - now + 999) / 1000)) : 0
                }
            }
            _ = Sys.poll(&fds, timeoutMilliseconds: timeout)
            if fds[0].revents != 0 {
                while case .success(let n) = withUnsafeMutableBytes(
                    of: &scratch,
                    { Sys.read(wakeFD, $0.baseAddress!, 32) }
                ), n > 0 {}
            }
            if journalFD >= 0 { _ = sd_journal_process(journal) }
        }
    }

    /// Delivers every entry available now; records the cursor of the last one.
    private func drain(_ source: JournalCore) {
        var delivered = 0
        while true {
            let rc = sd_journal_next(journal)
            if rc < 0 {
                source.state.withLock {
                    $0.error = LogSourceError(.journalFailed, "reading the journal failed", errno: -rc)
                }
                break
            }
            if rc == 0 { break }
            if let skip = skipCursor {
                skipCursor = nil
                if sd_journal_test_cursor(journal, skip) > 0 { continue }  // already processed before
            }
            deliver(source)
            delivered += 1
            if delivered % 4096 == 0 {
                // A long backlog is handed over in runs, each with its cursor, so what is held in memory stays small.
                endBatch(source)
                if source.state.withLock({ $0.stopped }) { return }
            }
        }
        if delivered % 4096 != 0 { endBatch(source) }
    }

    /// Reports the cursor of the last entry delivered (`batchEnd`).
    private func endBatch(_ source: JournalCore) {
        var raw: UnsafeMutablePointer<CChar>?
        guard sd_journal_get_cursor(journal, &raw) >= 0, let raw else { return }
        let cursor = String(cString: raw)
        free(raw)
        source.state.withLock { $0.cursor = cursor }
        source.batchEnd?(cursor)
    }

    private func deliver(_ source: JournalCore) {
        formatter.reset()
        sd_journal_restart_data(journal)
        var data: UnsafeRawPointer?
        var length = 0
        while sd_journal_enumerate_available_data(journal, &data, &length) > 0 {
            guard let data else { continue }
            formatter.take(field: UnsafeRawBufferPointer(start: data, count: length))
        }
        var realtime: UInt64 = 0
        _ = sd_journal_get_realtime_usec(journal, &realtime)
        var monotonic: UInt64 = 0
        var boot = sd_id128_t()
        _ = sd_journal_get_monotonic_usec(journal, &monotonic, &boot)
        let time = formatter.compose(entryRealtime: realtime, entryMonotonic: monotonic)
        if let length = formatter.tooLongLength {
            source.state.withLock { $0.skippedLines += 1 }
            source.tooLong?(length)
            return
        }
        formatter.line.withUnsafeBufferPointer { line in
            source.handler(JournalEntry(line: line, realtime: time, journal: journal))
        }
    }
}
