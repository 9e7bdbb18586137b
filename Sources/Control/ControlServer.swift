import Core
import Dispatch
import Synchronization

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// Why the control server could not start.
public struct ControlServerError: Error, Sendable, CustomStringConvertible {
    /// The errno of the failing call.
    public var code: Int32
    /// What failed and what to do.
    public var message: String

    /// One line for a person.
    public var description: String { message }
}

/// The control socket: a Unix stream socket answering `fail2ban-client` (pickle framing) and `portcullis` (JSON
/// lines) on the same path, for many clients at once. Each command goes to the ``ControlHandler``; malformed
/// requests get an error reply and the server keeps serving.
///
/// Creating the server binds the socket (mode 0600 by default, replacing a stale socket file); ``run()`` serves
/// until its task is cancelled, then closes the socket and removes the file.
///
/// ```swift
/// let server = try ControlServer(configuration: .init(path: "/run/portcullis/portcullis.sock"), handler: daemon)
/// try await server.run()
/// ```
///
/// Blocking socket reads happen on one thread per connection (at most `maxConnections`, each short-lived);
/// commands run as child tasks of ``run()``, except those the handler answers at once
/// (``ControlHandler/immediateReply(to:)``, e.g. `ping`), which are answered on the connection's thread. The socket cannot be jammed: a connection must send each whole
/// request within `requestTimeoutSeconds` (5 s), and when all `maxConnections` (256) are taken the one that has
/// waited longest for its request (or for the client to read its reply) is evicted to make room for the newcomer.
public final class ControlServer: Sendable {
    /// Server settings.
    public struct Configuration: Sendable {
        /// Socket path (at most 107 bytes).
        public var path: String
        /// File mode of the socket; 0600 lets only the owner (root) connect.
        public var mode: mode_t
        /// Largest accepted request; a larger one gets an error reply and the connection is closed.
        public var maxRequestBytes: Int
        /// Connections served at once. When all are taken, a new client evicts the connection that has waited
        /// longest for its request or for its reply to be read (a stuck, trickling or non-reading client), so there
        /// is always room for `status`; only when every connection is running a command is the new one closed.
        public var maxConnections: Int
        /// Seconds a connection has to send one whole request, counted from when it connected or got its last
        /// reply; bytes trickling in do not extend it. A connection that misses it is closed. 0 disables it.
        public var requestTimeoutSeconds: Double
        /// User ids allowed to connect (checked with SO_PEERCRED); nil allows anyone the file mode lets in.
        public var allowedUserIDs: Set<uid_t>?

        /// Defaults: mode 0600, 8 MiB requests, 256 connections, 5 s per request, root and this process's user.
        public init(
            path: String, mode: mode_t = 0o600, maxRequestBytes: Int = 8 << 20, maxConnections: Int = 256,
            requestTimeoutSeconds: Double = 5, allowedUserIDs: Set<uid_t>? = [0, geteuid()]
        ) {
            self.path = path
            self.mode = mode
            self.maxRequestBytes = maxRequestBytes
            self.maxConnections = max(1, maxConnections)
            self.requestTimeoutSeconds = requestTimeoutSeconds
            self.allowedUserIDs = allowedUserIDs
        }
    }

    /// The settings.
    public let configuration: Configuration
    private let handler: any ControlHandler
    private let listenFD: Int32
    private let socketInode: UInt64?
    private let state: Mutex<State>
    private let jobs: AsyncStream<Job>

    /// One open connection, for the limit and eviction.
    private struct Connection {
        /// When it started waiting for its current request (monotonic ns); nil while its command runs.
        var waitingSince: UInt64?
        /// Shut down to make room; no longer counted against the limit.
        var evicted = false
    }

    private struct State {
        var connections: [Int32: Connection] = [:]
        var pending: [Int: ReplySlot] = [:]
        var nextID = 0
        var jobs: AsyncStream<Job>.Continuation?
        var stopped = false
        var running = false
    }

    private struct Job: Sendable {
        var command: [String]
        var slot: ReplySlot
        var peerPID: Int32?
    }

    /// Binds the socket. Throws when the path is taken by a live server or a non-socket file, or binding fails.
    public init(configuration: Configuration, handler: some ControlHandler) throws(ControlServerError) {
        self.configuration = configuration
        self.handler = handler
        // Commands queue here from the moment the socket exists, until run() consumes them.
        let (jobs, continuation) = AsyncStream<Job>.makeStream()
        self.jobs = jobs
        state = Mutex(State(jobs: continuation))
        do {
            listenFD = try Sys.listen(path: configuration.path, mode: configuration.mode, backlog: 64)
            socketInode = Sys.inode(configuration.path)
        } catch {
            throw ControlServerError(
                code: error.errno,
                message: "cannot open the control socket: \(error); check the directory exists and no other "
                    + "Portcullis or fail2ban is running")
        }
    }

    deinit {
        close(listenFD)
        removeSocketFile()
    }

    /// Removes the socket file, unless another server has replaced it since.
    private func removeSocketFile() {
        if let inode = socketInode, Sys.inode(configuration.path) == inode { unlink(configuration.path) }
    }

    /// Serves until the calling task is cancelled; then stops accepting, lets running commands finish (their
    /// replies are sent, so a `stop` command can trigger the cancellation), answers commands still queued with a
    /// ``ControlError/Code/shuttingDown`` error, closes connections and removes the socket file.
    public func run() async {
        let alreadyRunning = state.withLock { state -> Bool in
            if state.running || state.stopped { return true }
            state.running = true
            return false
        }
        if alreadyRunning { return }
        let acceptStarted = (try? DedicatedThread.detached { [self] in acceptLoop() }) != nil
        if !acceptStarted { stop() }
        await withTaskCancellationHandler {
            await withDiscardingTaskGroup { group in
                for await job in jobs {
                    let handler = self.handler
                    group.addTask {
                        let reply = await ControlPeer.$processID.withValue(job.peerPID) {
                            await handler.handle(job.command)
                        }
                        job.slot.complete(reply)
                    }
                }
            }
        } onCancel: {
            self.stop()
        }
        stop()
        // Commands that started have finished (the group waited for them); fail those never started.
        let leftovers = state.withLock { state -> [ReplySlot] in
            defer { state.pending = [:] }
            return Array(state.pending.values)
        }
        for slot in leftovers { slot.fail(ControlError(.shuttingDown, "the server is shutting down")) }
    }

    /// Stops serving: closes the listener and the command queue, and wakes connection threads waiting for a
    /// request. Commands already running finish and their replies are still sent.
    private func stop() {
        let jobs = state.withLock { state -> AsyncStream<Job>.Continuation? in
            state.stopped = true
            let jobs = state.jobs
            state.jobs = nil
            // Under the lock: a connection's descriptor is only closed after it left `connections`.
            for fd in state.connections.keys { shutdown(fd, Int32(SHUT_RD)) }
            return jobs
        }
        jobs?.finish()
        shutdown(listenFD, Int32(SHUT_RDWR))
        removeSocketFile()
    }

    private func acceptLoop() {
        var spare = Sys.spareDescriptor()
        while let fd = Sys.accept(listenFD, spare: &spare) {
            let accepted = state.withLock { state -> Bool in
                guard !state.stopped else { return false }
                return Self.makeRoom(&state, limit: configuration.maxConnections, for: fd)
            }
            if !accepted {
                close(fd)
                if state.withLock({ $0.stopped }) { break }
                continue
            }
            if let allowed = configuration.allowedUserIDs, !(Sys.peerUID(fd).map(allowed.contains) ?? false) {
                finish(fd)
                continue
            }
            Sys.setSendTimeout(fd, seconds: 30)
            if (try? DedicatedThread.detached({ [self] in serve(fd) })) == nil { finish(fd) }
        }
        if spare >= 0 { close(spare) }
    }

    /// Registers `fd`, first evicting the connection that has waited longest for a request when the limit is
    /// reached. False when every connection is running a command (the newcomer is then closed).
    private static func makeRoom(_ state: inout State, limit: Int, for fd: Int32) -> Bool {
        let now = Sys.monotonicNanoseconds()
        var live = 0
        var oldest: (fd: Int32, since: UInt64)?
        for (other, connection) in state.connections where !connection.evicted {
            live += 1
            if let since = connection.waitingSince, since < (oldest?.since ?? .max) { oldest = (other, since) }
        }
        if live >= limit {
            guard let victim = oldest else { return false }
            state.connections[victim.fd]?.evicted = true
            // Wakes its thread, which closes it; the descriptor is still open here (it is in `connections`).
            shutdown(victim.fd, Int32(SHUT_RDWR))
        }
        state.connections[fd] = Connection(waitingSince: now)
        return true
    }

    private func finish(_ fd: Int32) {
        state.withLock { _ = $0.connections.removeValue(forKey: fd) }
        close(fd)
    }

    /// Marks `fd` as waiting for a request (evictable) or running one.
    private func setWaiting(_ fd: Int32, _ waiting: Bool) {
        state.withLock { state in
            guard state.connections[fd] != nil else { return }
            state.connections[fd]?.waitingSince = waiting ? Sys.monotonicNanoseconds() : nil
        }
    }

    private func serve(_ fd: Int32) {
        defer { finish(fd) }
        var session = ControlSession(maxRequestBytes: configuration.maxRequestBytes)
        let chunk = UnsafeMutableRawBufferPointer.allocate(byteCount: 65536, alignment: 1)
        defer { chunk.deallocate() }
        let timeout = configuration.requestTimeoutSeconds
        let limit = timeout > 0 ? UInt64(timeout * 1e9) : nil
        var deadline = limit.map { Sys.monotonicNanoseconds() + $0 }
        let peerPID = Sys.peerPID(fd)
        while true {
            if let deadline {
                let now = Sys.monotonicNanoseconds()
                guard now < deadline else { return }  // no whole request in time: drop the connection
                Sys.setReceiveTimeout(fd, nanoseconds: deadline - now)
            }
            guard let n = Sys.read(fd, into: chunk), n > 0 else { return }
            session.feed(UnsafeRawBufferPointer(rebasing: chunk[0..<n]))
            while let event = session.next() {
                switch event {
                case .close:
                    return
                case .error(let error, let close):
                    guard Sys.writeAll(fd, session.encode(.failure(error))), !close else { return }
                case .request(let command):
                    setWaiting(fd, false)
                    let response = handler.immediateReply(to: command) ?? dispatch(command, peerPID: peerPID)
                    let reply = session.encode(response)
                    // Evictable again while the reply is written: a client that does not read blocks this write
                    // (up to the send timeout) and must not hold its slot against newcomers.
                    setWaiting(fd, true)
                    guard Sys.writeAll(fd, reply) else { return }
                    setWaiting(fd, true)
                }
                deadline = limit.map { Sys.monotonicNanoseconds() + $0 }
            }
        }
    }

    /// Hands a command to `run()`'s task group and waits (on this connection thread) for the reply.
    private func dispatch(_ command: [String], peerPID: Int32? = nil) -> ControlResponse {
        let slot = ReplySlot()
        let queued = state.withLock { state -> Bool in
            guard let jobs = state.jobs, !state.stopped else { return false }
            let id = state.nextID
            state.nextID += 1
            state.pending[id] = slot
            slot.id = id
            if case .enqueued = jobs.yield(Job(command: command, slot: slot, peerPID: peerPID)) { return true }
            state.pending[id] = nil
            return false
        }
        guard queued else { return .failure(ControlError(.shuttingDown, "the server is not serving commands")) }
        let response = slot.wait()
        state.withLock { _ = $0.pending.removeValue(forKey: slot.id) }
        return response
    }
}

/// A one-shot reply handed from a handler task to the waiting connection thread.
private final class ReplySlot: @unchecked Sendable {
    // SAFETY: `response` and `id` are guarded by `lock`; the semaphore is thread-safe.
    private let lock = Mutex(())
    private var response: ControlResponse?
    private var _id = 0
    private let semaphore = DispatchSemaphore(value: 0)

    var id: Int {
        get { lock.withLock { _ in _id } }
        set { lock.withLock { _ in _id = newValue } }
    }

    func complete(_ value: ControlResponse) { set(value) }

    func fail(_ error: ControlError) { set(.failure(error)) }

    private func set(_ value: ControlResponse) {
        let first = lock.withLock { _ -> Bool in
            guard response == nil else { return false }
            response = value
            return true
        }
        if first { semaphore.signal() }
    }

    func wait() -> ControlResponse {
        semaphore.wait()
        return lock.withLock { _ in response! }
    }
}
