import Core
import PortcullisTestKit
import Synchronization
import Testing

@testable import Control

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// The control socket cannot be jammed (issue 7): the server with the daemon's own settings (the defaults the
/// daemon passes: 256 connections, 5 s per request, mode 0600, peer-uid check), over a real Unix socket, speaking
/// the real protocols.
@Suite("Control socket under a connection flood", .blocking)
struct ControlJamTests {
    /// Raises this process's descriptor limit to at least `wanted` (root may raise the hard limit too).
    static func raiseDescriptorLimit(to wanted: rlim_t) -> Bool {
        var limit = rlimit()
        guard getrlimit(Int32(RLIMIT_NOFILE.rawValue), &limit) == 0 else { return false }
        if limit.rlim_cur >= wanted { return true }
        limit.rlim_cur = wanted
        if limit.rlim_max < wanted { limit.rlim_max = wanted }
        return setrlimit(Int32(RLIMIT_NOFILE.rawValue), &limit) == 0
    }

    @Test("2,000 held connections, 100 of them trickling bytes: status answers within a second throughout")
    func floodKeepsStatusFast() async throws {
        try #require(Self.raiseDescriptorLimit(to: 8192), "cannot raise RLIMIT_NOFILE to 8192")
        let defaults = ControlServer.Configuration(path: "/unused")
        let configure: (inout ControlServer.Configuration) -> Void = {
            $0.requestTimeoutSeconds = defaults.requestTimeoutSeconds
        }
        try await withServer(handler: FakeJails.reference(logDir: "/l"), configure: configure) { socket in
            let attack = Attack(socket: socket, held: 1900, tricklers: 100)
            attack.start()
            defer { attack.stop() }
            // Sample status all through the attack: while the connections pile up, and for longer than the
            // request deadline, so that trickling connections are dropped and come back.
            var latencies: [Double] = []
            var failures: [String] = []
            let clock = ContinuousClock()
            let end = clock.now + .seconds(12)
            var i = 0
            while clock.now < end {
                let dialect: ControlClient.Dialect = i % 2 == 0 ? .pickle : .json
                let started = clock.now
                let reply = await ControlClient(socketPath: socket, dialect: dialect, timeoutSeconds: 5).send(["status"]
                )
                let elapsed = clock.now - started
                let seconds = Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) / 1e18
                latencies.append(seconds)
                if case .failure(let error) = reply { failures.append("\(error)") }
                i += 1
                try await Task.sleep(for: .milliseconds(50))
            }
            let stats = attack.stop()
            latencies.sort()
            let p99 = latencies[min(latencies.count - 1, Int(Double(latencies.count) * 0.99))]
            let maximum = latencies.last ?? 0
            print(
                "control jam: \(latencies.count) status samples, max \(Int(maximum * 1000)) ms, p99 "
                    + "\(Int(p99 * 1000)) ms; \(stats.opened) attack connections opened, \(stats.dropped) dropped "
                    + "by the server")
            #expect(failures.isEmpty, "status failed during the attack: \(failures.prefix(3))")
            #expect(maximum < 1.0, "slowest status took \(maximum) s")
            #expect(latencies.count >= 50)
            // The server dropped trickling connections (5 s deadline) and evicted held ones to make room.
            #expect(stats.dropped >= 100)
            #expect(stats.opened >= 2000)
        }
    }

    @Test("a connection that trickles a request for longer than the deadline is dropped")
    func tricklerIsDropped() async throws {
        let configure: (inout ControlServer.Configuration) -> Void = { $0.requestTimeoutSeconds = 1 }
        try await withServer(handler: FakeJails.reference(logDir: "/l"), configure: configure) { socket in
            let slow = try RawConnection(socket)
            defer { slow.close() }
            let clock = ContinuousClock()
            let started = clock.now
            var closed = false
            // One byte every 200 ms of a request that never ends: each byte is accepted, none extends the deadline.
            for byte in Array(#"{"command": ["status"                                "#.utf8) {
                if send(slow.fd, [byte], 1, Int32(MSG_NOSIGNAL)) < 0 {
                    closed = true
                    break
                }
                try await Task.sleep(for: .milliseconds(200))
            }
            if !closed { closed = await slow.isClosedByPeer() }
            #expect(closed)
            #expect(clock.now - started < .seconds(4))
            #expect(await ControlClient(socketPath: socket, dialect: .json).send(["ping"]) == .success("pong"))
        }
    }

    @Test("300 clients that pipeline requests and never read their replies: status answers within a second")
    func nonReadersDoNotJam() async throws {
        try await withServer(handler: FakeJails.reference(logDir: "/l")) { socket in
            // Each sends four requests whose error replies name a 100 KB jail, and never reads: the replies outgrow
            // the socket buffer (about 200 KB), so the server's write blocks (up to its 30 s send timeout).
            let one =
                PickleWire.encodeRequest(["status", String(repeating: "j", count: 100_000)]) + PickleWire.endMarker
            let request = Array([[UInt8]](repeating: one, count: 4).joined())
            let fds = await offPool { () -> [Int32] in
                var fds: [Int32] = []
                for _ in 0..<300 {
                    guard let fd = try? Sys.connect(path: socket) else { continue }
                    fds.append(fd)
                    Sys.setSendTimeout(fd, seconds: 1)
                    _ = Sys.writeAll(fd, request)
                }
                return fds
            }
            defer { for fd in fds { close(fd) } }
            try await Task.sleep(for: .seconds(1))
            var latencies: [Double] = []
            var failures: [String] = []
            let clock = ContinuousClock()
            for i in 0..<20 {
                let started = clock.now
                let reply = await ControlClient(
                    socketPath: socket, dialect: i % 2 == 0 ? .pickle : .json, timeoutSeconds: 5
                )
                .send(["status"])
                let elapsed = clock.now - started
                latencies.append(Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) / 1e18)
                if case .failure(let error) = reply { failures.append("\(error)") }
                try await Task.sleep(for: .milliseconds(100))
            }
            print(
                "control jam, non-readers: 20 status samples, max \(Int((latencies.max() ?? 0) * 1000)) ms: \(latencies.map { Int($0 * 1000) })"
            )
            #expect(
                failures.isEmpty,
                "status failed \(failures.count) times of 20 while 300 clients did not read: \(failures.prefix(3))")
            #expect((latencies.max() ?? 0) < 1.0)
        }
    }

    @Test("a full server evicts the connection that waited longest, never one running a command")
    func evictsOldestIdle() async throws {
        let configure: (inout ControlServer.Configuration) -> Void = { $0.maxConnections = 3 }
        try await withServer(handler: FakeJails.reference(logDir: "/l"), configure: configure) { socket in
            let first = try RawConnection(socket)
            defer { first.close() }
            try await Task.sleep(for: .milliseconds(100))
            let others = try (0..<2).map { _ in try RawConnection(socket) }
            defer { for c in others { c.close() } }
            try await Task.sleep(for: .milliseconds(100))
            // The fourth client gets in; the first (oldest idle) is closed to make room.
            #expect(await ControlClient(socketPath: socket, dialect: .pickle).send(["ping"]) == .success("pong"))
            #expect(await first.isClosedByPeer())
            // The two others still work.
            for c in others {
                c.send(JSONWire.requestLine(["ping"]))
                let line = await c.read(until: [0x0A])
                #expect(JSONWire.response(fromLine: line.dropLast()) == .success("pong"))
            }
        }
    }
}

/// The attacker: `held` connections that never send a byte, and `tricklers` that send one byte of a request
/// that never ends every 100 ms, reconnecting whenever the server drops them. Runs on threads of its own.
final class Attack: Sendable {
    struct Stats: Sendable {
        var opened = 0
        var dropped = 0
    }

    let socket: String
    let held: Int
    let tricklers: Int
    private let state = Mutex<(stop: Bool, stats: Stats, fds: [Int32], running: Int)>((false, Stats(), [], 0))

    init(socket: String, held: Int, tricklers: Int) {
        self.socket = socket
        self.held = held
        self.tricklers = tricklers
    }

    func start() {
        startThread { [self] in
            for _ in 0..<held {
                if state.withLock({ $0.stop }) { break }
                guard let fd = try? Sys.connect(path: socket) else { continue }
                state.withLock {
                    $0.fds.append(fd)
                    $0.stats.opened += 1
                }
            }
        }
        for group in 0..<4 {
            startThread { [self] in trickle(count: tricklers / 4 + (group < tricklers % 4 ? 1 : 0)) }
        }
    }

    private func startThread(_ body: @escaping @Sendable () -> Void) {
        state.withLock { $0.running += 1 }
        try? DedicatedThread.detached { [self] in
            body()
            state.withLock { $0.running -= 1 }
        }
    }

    private func trickle(count: Int) {
        var fds: [Int32] = []
        var offsets: [Int] = []
        let request = Array(#"{"command": ["status", ""#.utf8)
        func open() -> Int32 {
            while !state.withLock({ $0.stop }) {
                if let fd = try? Sys.connect(path: socket) {
                    state.withLock { $0.stats.opened += 1 }
                    return fd
                }
                usleep(10_000)
            }
            return -1
        }
        for _ in 0..<count {
            fds.append(open())
            offsets.append(0)
        }
        while !state.withLock({ $0.stop }) {
            for i in fds.indices {
                // One byte of the request, then spaces forever (inside a string: the line never ends).
                var byte = offsets[i] < request.count ? request[offsets[i]] : UInt8(ascii: " ")
                offsets[i] += 1
                if fds[i] < 0 || send(fds[i], &byte, 1, Int32(MSG_NOSIGNAL)) < 0 {
                    if fds[i] >= 0 {
                        close(fds[i])
                        state.withLock { $0.stats.dropped += 1 }
                    }
                    fds[i] = open()
                    offsets[i] = 0
                }
            }
            usleep(100_000)
        }
        for fd in fds where fd >= 0 { close(fd) }
    }

    /// Stops the attack, closes every connection and returns the counts.
    @discardableResult
    func stop() -> Stats {
        state.withLock { $0.stop = true }
        while state.withLock({ $0.running }) > 0 { usleep(10_000) }
        return state.withLock { state in
            for fd in state.fds { close(fd) }
            state.fds = []
            return state.stats
        }
    }
}
