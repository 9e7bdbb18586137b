import Core
import Dispatch
import Synchronization

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// Why the metrics endpoint cannot serve.
public struct MetricsServerError: Error, Sendable, CustomStringConvertible {
    /// What failed, for a person.
    public var message: String
    public var description: String { message }
}

/// A minimal HTTP/1.1 responder for `GET /metrics` on a TCP socket, and nothing else.
///
/// One thread accepts and serves connections one at a time: each request head must arrive whole within
/// `deadline` (2 s) and within `maxRequestBytes` (8 KiB), or the connection is answered 408/431 or dropped; every
/// response closes the connection. Only `GET`/`HEAD` of `/metrics` are answered with the metrics (405, 404, 400,
/// 505 otherwise). The body is produced by `render` on the task running ``run()``, so it may read actors.
///
/// ```swift
/// let server = try MetricsServer(address: IPAddress("127.0.0.1")!, port: 9191) { await metrics.exposition() }
/// await server.run()          // until the task is cancelled or stop() is called
/// ```
public final class MetricsServer: Sendable {
    /// The address it listens on.
    public let address: IPAddress
    /// The port it listens on (the one the kernel picked when 0 was asked for).
    public let port: UInt16
    /// Largest request head accepted.
    public let maxRequestBytes: Int
    /// Time allowed to send a whole request head, and to take the response.
    public let deadline: Duration

    private let listenFD: Int32
    private let render: @Sendable () async -> [UInt8]
    private let jobs: AsyncStream<RenderSlot>
    private let state: Mutex<State>

    private struct State: ~Copyable {
        var jobs: AsyncStream<RenderSlot>.Continuation?
        /// The slot a connection waits on (connections are served one at a time).
        var pending: RenderSlot?
        var running = false
        var stopped = false
    }

    /// The `Content-Type` of the text exposition format.
    public static let contentType = "text/plain; version=0.0.4; charset=utf-8"

    /// Binds `address`:`port` now (so a port in use stops the start with a clear error); serves from ``run()``.
    public init(
        address: IPAddress, port: UInt16, maxRequestBytes: Int = 8192, deadline: Duration = .seconds(2),
        render: @escaping @Sendable () async -> [UInt8]
    ) throws(MetricsServerError) {
        let endpoint = address.family == .v6 ? "[\(address)]:\(port)" : "\(address):\(port)"
        do {
            listenFD = try TCP.listen(address: address, port: port, backlog: 16)
        } catch {
            throw MetricsServerError(
                message: "cannot serve metrics on \(endpoint): \(error) (choose another metrics = ADDR:PORT)")
        }
        self.address = address
        self.port = TCP.localPort(listenFD)
        self.maxRequestBytes = maxRequestBytes
        self.deadline = deadline
        self.render = render
        let (stream, continuation) = AsyncStream<RenderSlot>.makeStream()
        jobs = stream
        state = Mutex(State(jobs: continuation))
    }

    deinit {
        close(listenFD)
    }

    /// Serves until the calling task is cancelled or ``stop()`` is called.
    public func run() async {
        let first = state.withLock { s -> Bool in
            defer { s.running = true }
            return !s.running && !s.stopped
        }
        guard first else { return }
        if (try? DedicatedThread.detached({ [self] in acceptLoop() })) == nil { stop() }
        await withTaskCancellationHandler {
            for await slot in jobs { slot.complete(await render()) }
        } onCancel: {
            self.stop()
        }
        stop()
    }

    /// Stops accepting; a connection being served is finished (or answered 503 if its body was not rendered).
    public func stop() {
        let (jobs, pending) = state.withLock { s -> (AsyncStream<RenderSlot>.Continuation?, RenderSlot?) in
            s.stopped = true
            defer {
                s.jobs = nil
                s.pending = nil
            }
            return (s.jobs, s.pending)
        }
        jobs?.finish()
        // A connection waiting for a body that will never be rendered gets 503 (completing twice is harmless).
        pending?.complete(nil)
        shutdown(listenFD, Int32(SHUT_RDWR))
    }

    private func acceptLoop() {
        while let fd = TCP.accept(listenFD) {
            if state.withLock({ $0.stopped }) {
                close(fd)
                break
            }
            serve(fd)
            TCP.lingeringClose(fd)
        }
    }

    private func serve(_ fd: Int32) {
        let limit =
            UInt64(deadline.components.seconds) * 1_000_000_000
            + UInt64(deadline.components.attoseconds / 1_000_000_000)
        let until = TCP.monotonicNanoseconds() + limit
        var buffer: [UInt8] = []
        var end: Int? = nil
        while end == nil {
            guard buffer.count < maxRequestBytes else {
                _ = TCP.writeAll(fd, Self.plain(431, "Request Header Fields Too Large"), until: until)
                return
            }
            guard TCP.read(fd, into: &buffer, room: maxRequestBytes - buffer.count, until: until) != nil else {
                // Too slow or gone: a late client gets 408, a closed one nothing.
                if TCP.monotonicNanoseconds() >= until {
                    _ = TCP.writeAll(fd, Self.plain(408, "Request Timeout"), until: until + limit)
                }
                return
            }
            end = MetricsHTTP.headEnd(buffer)
        }
        let head = Array(buffer[..<min(end!, buffer.count)])
        switch MetricsHTTP.answer(toHead: head, path: "/metrics") {
        case .error(let status, let reason):
            _ = TCP.writeAll(fd, Self.plain(status, reason), until: until + limit)
        case .metrics(let headOnly):
            guard let body = dispatch() else {
                _ = TCP.writeAll(fd, Self.plain(503, "Service Unavailable"), until: until + limit)
                return
            }
            let response = MetricsHTTP.response(
                status: 200, reason: "OK", contentType: Self.contentType, body: body, head: headOnly)
            // The response gets its own deadline: a scraper that reads slowly is cut off, never waited for.
            _ = TCP.writeAll(fd, response, until: TCP.monotonicNanoseconds() + 2 * limit)
        }
    }

    /// Asks ``run()`` to render and waits for the body; nil when the server is stopping.
    private func dispatch() -> [UInt8]? {
        let slot = RenderSlot()
        let queued = state.withLock { s -> Bool in
            guard let jobs = s.jobs, !s.stopped else { return false }
            guard case .enqueued = jobs.yield(slot) else { return false }
            s.pending = slot
            return true
        }
        guard queued else { return nil }
        let body = slot.wait()
        state.withLock { s in if s.pending === slot { s.pending = nil } }
        return body
    }

    private static func plain(_ status: Int, _ reason: String) -> [UInt8] {
        MetricsHTTP.response(
            status: status, reason: reason, contentType: "text/plain; charset=utf-8", body: Array("\(reason)\n".utf8))
    }
}

/// A one-shot body handed from ``MetricsServer/run()`` to the waiting connection thread; a slot dropped unrendered
/// (the server stopped) answers nil.
private final class RenderSlot: @unchecked Sendable {
    // SAFETY: `body` and `done` are guarded by `lock`; the semaphore is thread-safe.
    private let lock = Mutex(())
    private var body: [UInt8]?
    private var done = false
    private let semaphore = DispatchSemaphore(value: 0)

    func complete(_ value: [UInt8]?) {
        let first = lock.withLock { _ -> Bool in
            guard !done else { return false }
            done = true
            body = value
            return true
        }
        if first { semaphore.signal() }
    }

    func wait() -> [UInt8]? {
        semaphore.wait()
        return lock.withLock { _ in body }
    }
}
