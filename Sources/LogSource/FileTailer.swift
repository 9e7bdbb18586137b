import Core
import Synchronization

/// Follows log files and hands each new line's bytes to every subscriber of the file.
///
/// Each file is opened and read once however many subscribers watch it. All reading and waiting happens on one
/// dedicated thread, woken by inotify (`IN_MODIFY`, `IN_MOVE_SELF`, `IN_DELETE_SELF`, `IN_ATTRIB` on files;
/// `IN_CREATE`, `IN_MOVED_TO` on their directories) or, with `backend: .polling` or when inotify is unavailable,
/// by a timer. Handlers run on that thread: keep them short and non-blocking.
///
/// Rotation: when the path names a new file (rename + create), the old file is read to its end first, then the
/// new one is read from its beginning; the old file keeps being read until it has been idle for
/// `rotationGrace` (a writer that has not reopened its log yet loses nothing), then its final line without
/// newline is delivered and it is closed. When the file shrinks
/// (copytruncate) it is read again from offset 0. A missing path is reported once and picked up (from its
/// beginning) when it appears; globs are expanded again when their directory changes.
///
/// ```swift
/// let tailer = FileTailer()
/// let sub = tailer.subscribe(["/var/log/auth.log", "/var/log/nginx/*.log"], resume: stored) { batch in
///     for line in batch { jail.process(line) }      // UnsafeBufferPointer<UInt8>, valid during the call
///     store.save(batch.position)
/// }
/// try tailer.start()
/// // …
/// tailer.stop()
/// ```
public final class FileTailer: Sendable {
    /// How the tailer learns that files changed.
    public enum Backend: String, Sendable, Hashable {
        /// inotify, falling back to polling when it cannot be initialised.
        case auto
        /// inotify; `start()` fails when it is unavailable.
        case inotify
        /// Check every file every `pollInterval`.
        case polling
    }

    /// Tuning knobs.
    public struct Options: Sendable {
        /// Wakeup mechanism.
        public var backend: Backend
        /// Period of the polling backend.
        public var pollInterval: Duration
        /// With inotify: period of the safety pass that re-expands globs and stats every file (catches events
        /// inotify cannot see, e.g. a missing directory that appears).
        public var rescanInterval: Duration
        /// Longest line delivered (without its newline); a longer line is skipped whole, never delivered in
        /// part, counted in `LineBatch.skippedLines` and reported once per file (`Event.lineTooLong`).
        public var maxLineLength: Int
        /// Bytes asked for per `read`.
        public var readChunkSize: Int
        /// After a rename rotation, the old file is still read until it has not grown for this long (its writer
        /// may keep writing to it until it reopens its log).
        public var rotationGrace: Duration

        /// Defaults: auto backend, 250 ms polling, 1 s rescan, 64 KiB lines (`LineReader.defaultMaxLineLength`),
        /// 64 KiB reads, 5 s rotation grace.
        public init(
            backend: Backend = .auto,
            pollInterval: Duration = .milliseconds(250),
            rescanInterval: Duration = .seconds(1),
            maxLineLength: Int = LineReader.defaultMaxLineLength,
            readChunkSize: Int = 64 * 1024,
            rotationGrace: Duration = .seconds(5)
        ) {
            self.rotationGrace = rotationGrace
            self.backend = backend
            self.pollInterval = pollInterval
            self.rescanInterval = rescanInterval
            self.maxLineLength = maxLineLength
            self.readChunkSize = readChunkSize
        }
    }

    /// Something that happened to a watched file (reported on the tailer thread, cold path).
    public enum Event: Sendable, Hashable {
        /// The file was opened; reading starts at `offset`.
        case opened(path: String, offset: UInt64)
        /// The path does not exist (reported once until it appears).
        case missing(path: String)
        /// The path now names a new file; the old one was read to its end.
        case rotated(path: String)
        /// The file shrank (copytruncate); it is read again from its beginning.
        case truncated(path: String)
        /// A glob match or deleted file was closed.
        case closed(path: String)
        /// A line longer than `limit` bytes (`length` bytes) was skipped, not matched; reported once per file,
        /// later ones are only counted (`LineBatch.skippedLines`).
        case lineTooLong(path: String, length: Int, limit: Int)
        /// Something failed; the tailer keeps going and retries on the next pass.
        case failed(LogSourceError)
    }

    /// Identifies a subscription, for `unsubscribe`.
    public struct Subscription: Sendable, Hashable {
        let id: UInt64
    }

    let core: TailerCore

    /// Creates a tailer; nothing is opened until `start()`.
    /// - Parameters:
    ///   - events: receives file events (opened, missing, rotated …) on the tailer thread.
    ///   - batchEnd: called on the tailer thread after every subscriber of a file received a batch, with the
    ///     position after it, and when a file is opened, with the position reading starts at. A position handed
    ///     here covers every line delivered before it: persist it once the work those lines caused is durable.
    public init(
        options: Options = Options(), events: (@Sendable (Event) -> Void)? = nil,
        batchEnd: (@Sendable (FilePosition) -> Void)? = nil
    ) {
        core = TailerCore(options: options, events: events, batchEnd: batchEnd)
    }

    deinit {
        stop()
    }

    /// Registers `handler` for the files `paths` name (each may be a glob such as `/var/log/*.log`).
    ///
    /// Files already open for another subscriber are shared: the new subscriber receives lines from now on.
    /// - Parameters:
    ///   - startAt: where to start a file for which `resume` holds no position (`.end` skips old content).
    ///   - resume: stored positions, matched by path.
    ///   - handler: called on the tailer thread with each batch of complete lines.
    @discardableResult
    public func subscribe(
        _ paths: [String],
        startAt: StartPosition = .end,
        resume: [FilePosition] = [],
        handler: @escaping @Sendable (LineBatch) -> Void
    ) -> Subscription {
        var byPath: [String: FilePosition] = [:]
        for p in resume { byPath[p.path] = p }
        let sub = TailerCore.Subscriber(patterns: paths, startAt: startAt, resume: byPath, handler: handler)
        let id = core.state.withLock { s in
            let id = s.nextID
            s.nextID += 1
            s.commands.append(.subscribe(id, sub))
            return id
        }
        core.wake()
        return Subscription(id: id)
    }

    /// What `replace(_:with:)` subscribes: the arguments of `subscribe`.
    public struct Request: Sendable {
        /// Paths or globs.
        public var paths: [String]
        /// Where to start a file without stored position.
        public var startAt: StartPosition
        /// Stored positions, matched by path.
        public var resume: [FilePosition]
        /// Called on the tailer thread with each batch.
        public var handler: @Sendable (LineBatch) -> Void

        /// A request; see `subscribe(_:startAt:resume:handler:)`.
        public init(
            _ paths: [String],
            startAt: StartPosition = .end,
            resume: [FilePosition] = [],
            handler: @escaping @Sendable (LineBatch) -> Void
        ) {
            self.paths = paths
            self.startAt = startAt
            self.resume = resume
            self.handler = handler
        }
    }

    /// Atomically removes `old` and adds `new` (configuration reload): a file still watched after the change
    /// stays open at its position, so no line is lost or delivered twice; the new subscribers receive its lines
    /// from there on. Files nobody watches any more are closed; newly named files open as `subscribe` would.
    public func replace(_ old: [Subscription], with new: [Request]) -> [Subscription] {
        let ids = core.state.withLock { s -> [UInt64] in
            for o in old { s.commands.append(.unsubscribe(o.id)) }
            return new.map { r in
                let id = s.nextID
                s.nextID += 1
                var byPath: [String: FilePosition] = [:]
                for p in r.resume { byPath[p.path] = p }
                s.commands.append(
                    .subscribe(
                        id,
                        TailerCore.Subscriber(
                            patterns: r.paths,
                            startAt: r.startAt,
                            resume: byPath,
                            handler: r.handler
                        )
                    )
                )
                return id
            }
        }
        core.wake()
        return ids.map { Subscription(id: $0) }
    }

    /// Removes a subscription; files nobody watches any more are closed.
    public func unsubscribe(_ subscription: Subscription) {
        core.state.withLock { $0.commands.append(.unsubscribe(subscription.id)) }
        core.wake()
    }

    /// The current position of every open file (persist these to resume after a restart).
    public func positions() -> [FilePosition] {
        core.state.withLock { Array($0.positions.values) }.sorted { $0.path < $1.path }
    }

    /// The backend in use once started (`.inotify` or `.polling`).
    public var activeBackend: Backend? { core.state.withLock { $0.backend } }

    /// Starts the tailer thread.
    /// - Throws: `LogSourceError` `.waitFailed` when the thread, the wake pipe or (with `.inotify`) inotify
    ///   cannot be set up; `.invalidState` when already started.
    public func start() throws(LogSourceError) {
        guard core.wakeRead >= 0 else { throw LogSourceError(.waitFailed, "cannot create the tailer's wake pipe") }
        var inotifyFD: Int32 = -1
        if core.options.backend != .polling {
            switch Sys.inotifyInit() {
            case .success(let fd): inotifyFD = fd
            case .failure(let e):
                if core.options.backend == .inotify {
                    throw LogSourceError(
                        .waitFailed,
                        "inotify is unavailable; use backend = polling",
                        errno: e.rawValue
                    )
                }
            }
        }
        let backend: Backend = inotifyFD >= 0 ? .inotify : .polling
        let already = core.state.withLock { s -> Bool in
            if s.started { return true }
            s.started = true
            s.backend = backend
            return false
        }
        if already {
            if inotifyFD >= 0 { Sys.close(inotifyFD) }
            throw LogSourceError(.invalidState, "the tailer was already started")
        }
        let engine = TailEngine(core: core, inotifyFD: inotifyFD)
        do {
            let thread = try DedicatedThread.logSource { engine.run() }
            core.state.withLock { $0.thread = thread }
        } catch {
            if inotifyFD >= 0 { Sys.close(inotifyFD) }
            throw error
        }
    }

    /// Stops the thread and closes every file; waits for a delivery in progress to finish. Idempotent.
    public func stop() {
        let thread = core.state.withLock { s -> DedicatedThread? in
            guard !s.stopped else { return nil }
            s.stopped = true
            s.commands.append(.stop)
            let t = s.thread
            s.thread = nil
            return t
        }
        guard let thread else { return }
        core.wake()
        thread.join()
    }

    /// Checks every file now and returns when all lines written before the call were delivered.
    /// (Useful with the polling backend and in tests; with inotify, delivery does not need it.)
    public func sync() async {
        await withCheckedContinuation { (c: CheckedContinuation<Void, Never>) in
            let queued = core.state.withLock { s -> Bool in
                guard s.started && !s.stopped else { return false }
                s.commands.append(.sync(c))
                return true
            }
            if queued { core.wake() } else { c.resume() }
        }
    }

    /// Starts the tailer and runs until the task is cancelled, then stops it (for a service group).
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

/// The state a `FileTailer` shares with its thread; the thread holds it strongly, so dropping the
/// `FileTailer` (whose `deinit` stops the thread) is safe.
final class TailerCore: Sendable {
    let options: FileTailer.Options
    let events: (@Sendable (FileTailer.Event) -> Void)?
    let batchEnd: (@Sendable (FilePosition) -> Void)?
    let state: Mutex<Shared>
    let wakeRead: Int32
    let wakeWrite: Int32

    struct Shared: ~Copyable {
        var nextID: UInt64 = 1
        var commands: [Command] = []
        var positions: [String: FilePosition] = [:]
        var thread: DedicatedThread?
        var started = false
        var stopped = false
        var backend: FileTailer.Backend?
    }

    enum Command {
        case subscribe(UInt64, Subscriber)
        case unsubscribe(UInt64)
        case sync(CheckedContinuation<Void, Never>)
        case stop
    }

    struct Subscriber {
        var patterns: [String]
        var startAt: StartPosition
        var resume: [String: FilePosition]
        var handler: @Sendable (LineBatch) -> Void
    }

    init(
        options: FileTailer.Options, events: (@Sendable (FileTailer.Event) -> Void)?,
        batchEnd: (@Sendable (FilePosition) -> Void)?
    ) {
        self.options = options
        self.events = events
        self.batchEnd = batchEnd
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

    func takeCommands() -> [Command] {
        state.withLock { s in
            let c = s.commands
            s.commands.removeAll(keepingCapacity: true)
            return c
        }
    }

    func publish(_ position: FilePosition) {
        state.withLock { $0.positions[position.path] = position }
    }

    func forget(_ path: String) {
        _ = state.withLock { $0.positions.removeValue(forKey: path) }
    }
}
