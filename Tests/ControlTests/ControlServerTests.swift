import Core
import Foundation
import PortcullisTestKit
import Synchronization
import Testing

@testable import Control

/// A server on a fresh socket path, stopped when the test body ends. It runs on threads of its own
/// (``serve(_:)``) so that its replies never wait for the cooperative pool, which other suites may keep busy.
func withServer<T>(
    handler: some ControlHandler, configure: (inout ControlServer.Configuration) -> Void = { _ in },
    _ body: (String) async throws -> T
) async throws -> T {
    let path = "/tmp/pcl-ctl-\(getpid())-\(UInt32.random(in: 0...UInt32.max)).sock"
    var configuration = ControlServer.Configuration(path: path)
    // Tests other than the deadline's own (ControlJamTests sets it) must not depend on the test process being
    // scheduled within 5 s between two requests: the cooperative pool can be busy with other suites for that long.
    configuration.requestTimeoutSeconds = 300
    configure(&configuration)
    let server = try ControlServer(configuration: configuration, handler: handler)
    let task = serve(server)
    defer { task.cancel() }
    let result = try await body(path)
    task.cancel()
    await task.value
    return result
}

/// Runs `server` until the returned task is cancelled; its command handlers run on dedicated threads.
func serve(_ server: ControlServer) -> Task<Void, Never> {
    Task(executorPreference: ThreadPerJobExecutor.shared) { await server.run() }
}

/// How a test reaches the handler.
enum Transport: String, CaseIterable, CustomTestStringConvertible {
    case inProcess, socketJSON, socketPickle
    var testDescription: String { rawValue }

    func send(_ command: [String], handler: FakeJails, socket: String) async -> ControlResponse {
        switch self {
        case .inProcess:
            // The same session state machine the socket server drives, fed the bytes fail2ban-client would send.
            var session = ControlSession(maxRequestBytes: 1 << 20)
            session.feed(PickleWire.encodeRequest(command) + PickleWire.endMarker)
            guard case .request(let decoded)? = session.next() else {
                return .failure(ControlError(.malformedRequest, "session produced no request"))
            }
            let reply = session.encode(await handler.handle(decoded))
            guard reply.suffix(PickleWire.endMarker.count).elementsEqual(PickleWire.endMarker),
                let value = try? PickleDecoder().decode(reply.dropLast(PickleWire.endMarker.count))
            else { return .failure(ControlError(.connection, "bad reply framing")) }
            return PickleWire.response(from: value)
        case .socketJSON:
            return await ControlClient(socketPath: socket, dialect: .json).send(command)
        case .socketPickle:
            return await ControlClient(socketPath: socket, dialect: .pickle).send(command)
        }
    }
}

/// A raw connection for framing tests.
struct RawConnection {
    let fd: Int32
    init(_ path: String) throws { fd = try Sys.connect(path: path) }
    func send(_ bytes: [UInt8]) { _ = Sys.writeAll(fd, bytes) }
    func send(_ text: String) { send(Array(text.utf8)) }
    /// Reads until `terminator` has arrived, or the end of the stream (returns what came). Blocks a thread of
    /// its own, never the test's cooperative thread (the server's handler tasks need those).
    func read(until terminator: [UInt8]) async -> [UInt8] {
        await offPool { readBlocking(until: terminator) }
    }

    func isClosedByPeer() async -> Bool { await offPool { isClosedByPeerBlocking() } }

    private func readBlocking(until terminator: [UInt8]) -> [UInt8] {
        Sys.setReceiveTimeout(fd, seconds: 120)
        // One byte at a time: never past the terminator, so a reply the server sent right after stays in the
        // socket for the next read (the server may answer two pipelined requests in one segment).
        var data: [UInt8] = []
        var byte: UInt8 = 0
        while !(data.count >= terminator.count && data.suffix(terminator.count).elementsEqual(terminator)) {
            guard let n = withUnsafeMutableBytes(of: &byte, { Sys.read(fd, into: $0) }), n > 0 else { break }
            data.append(byte)
        }
        return data
    }
    /// True when the server closed the connection (read returns end of stream).
    private func isClosedByPeerBlocking() -> Bool {
        Sys.setReceiveTimeout(fd, seconds: 120)
        var byte: UInt8 = 0
        return withUnsafeMutableBytes(of: &byte) { Sys.read(fd, into: $0) } == 0
    }
    func close() { _ = Glibc.close(fd) }
}

/// Runs blocking work on a dedicated thread.
func offPool<T: Sendable>(_ body: @escaping @Sendable () -> T) async -> T {
    await withCheckedContinuation { continuation in
        do {
            try DedicatedThread.detached { continuation.resume(returning: body()) }
        } catch {
            fatalError("cannot start a test thread: \(error)")
        }
    }
}

func pickleReply(_ bytes: [UInt8]) -> ControlResponse? {
    guard bytes.suffix(PickleWire.endMarker.count).elementsEqual(PickleWire.endMarker),
        let value = try? PickleDecoder().decode(bytes.dropLast(PickleWire.endMarker.count))
    else { return nil }
    return PickleWire.response(from: value)
}

extension ControlValue {
    var tuplesAsLists: ControlValue {
        switch self {
        case .list(let items), .tuple(let items): return .list(items.map(\.tuplesAsLists))
        case .dict(let pairs): return .dict(pairs.map { Pair($0.key.tuplesAsLists, $0.value.tuplesAsLists) })
        default: return self
        }
    }
}

@Suite("ControlServer")
struct ControlServerTests {
    @Test("one conversation gives the same answers in-process and over the socket", arguments: Transport.allCases)
    func conversation(_ transport: Transport) async throws {
        let jails = FakeJails.reference(logDir: "/var/log")
        try await withServer(handler: jails) { socket in
            // JSON has no tuples: compare with tuples read as lists.
            func send(_ c: [String]) async -> ControlResponse {
                let reply = await transport.send(c, handler: jails, socket: socket)
                guard case .success(let value) = reply else { return reply }
                return .success(value.tuplesAsLists)
            }
            #expect(await send(["ping"]) == .success("pong"))
            #expect(await send(["status"]) == .success([["Number of jail", 2], ["Jail list", "sshd, web"]]))
            #expect(await send(["set", "sshd", "banip", "192.0.2.1", "192.0.2.2"]) == .success(2))
            #expect(await send(["set", "web", "banip", "2001:db8::1"]) == .success(1))
            let status = await send(["status", "sshd"])
            guard case .success(let value) = status else {
                Issue.record("status failed: \(status)")
                return
            }
            #expect(
                StatusFormatter.format(value, for: ["status", "sshd"]).hasSuffix(
                    "`- Banned IP list:\t192.0.2.1 192.0.2.2"))
            #expect(
                await send(["banned"]) == .success([["sshd": ["192.0.2.1", "192.0.2.2"]], ["web": ["2001:db8::1"]]]))
            #expect(await send(["banned", "192.0.2.1", "198.51.100.1"]) == .success([["sshd"], []]))
            #expect(await send(["get", "web", "bantime"]) == .success(-1))
            #expect(await send(["status", "nosuch"]) == .failure(.unknownJail("nosuch")))
            #expect(await send(["unban", "--all"]) == .success(3))
            #expect(
                await send(["set", "sshd", "maxretry", "abc"])
                    == .failure(ControlError(.invalidArgument, "invalid literal for int() with base 10: 'abc'")))
            #expect(await send(["reload", "--all"]) == .success("OK"))
        }
        if transport != .inProcess {
            #expect(jails.received.withLock { $0.count } == 12)
        }
    }

    @Test("serves many concurrent clients of both dialects")
    func concurrentClients() async throws {
        let jails = FakeJails.reference(logDir: "/var/log")
        try await withServer(handler: jails) { socket in
            let replies = await withTaskGroup(of: ControlResponse.self) { group in
                for n in 0..<40 {
                    group.addTask {
                        let client = ControlClient(socketPath: socket, dialect: n % 2 == 0 ? .json : .pickle)
                        return await client.send(["set", "sshd", "banip", "198.18.0.\(n)"])
                    }
                }
                var all: [ControlResponse] = []
                for await reply in group { all.append(reply) }
                return all
            }
            #expect(replies.count == 40)
            #expect(replies.allSatisfy { $0 == .success(1) })
            let banned = await ControlClient(socketPath: socket).send(["get", "sshd", "banip"])
            guard case .success(.list(let ips)) = banned else {
                Issue.record("unexpected \(banned)")
                return
            }
            #expect(Set(ips.compactMap(\.stringValue)) == Set((0..<40).map { "198.18.0.\($0)" }))
        }
    }

    @Test("an idle connection does not hold up other clients")
    func idleConnection() async throws {
        try await withServer(handler: FakeJails.reference(logDir: "/l")) { socket in
            let idle = try RawConnection(socket)
            defer { idle.close() }
            idle.send([0x80, 0x05])  // half a request, never finished
            #expect(await ControlClient(socketPath: socket, dialect: .pickle).send(["ping"]) == .success("pong"))
        }
    }

    @Test("a malformed pickle gets an error reply and the same connection keeps working")
    func malformedPickle() async throws {
        try await withServer(handler: FakeJails.reference(logDir: "/l")) { socket in
            let c = try RawConnection(socket)
            defer { c.close() }
            c.send([0x80, 0x05, 0x8C, 0x10, 0x41] + PickleWire.endMarker)  // truncated string
            let first = pickleReply(await c.read(until: PickleWire.endMarker))
            guard case .failure(let error)? = first else {
                Issue.record("expected an error reply, got \(String(describing: first))")
                return
            }
            #expect(error.message.contains("malformed request"))
            c.send(PickleWire.encodeRequest(["status", "web"]) + PickleWire.endMarker)
            guard case .success? = pickleReply(await c.read(until: PickleWire.endMarker)) else {
                Issue.record("expected status after the bad request")
                return
            }
            c.send(PickleWire.encodeRequest([]) + PickleWire.endMarker)  // empty command
            // fail2ban's pickle replies carry a plain Exception: the client sees the message.
            #expect(
                pickleReply(await c.read(until: PickleWire.endMarker))
                    == .failure(ControlError(.failed, "empty command")))
            c.send(PickleWire.closeMarker + PickleWire.endMarker)
            #expect(await c.isClosedByPeer())
        }
    }

    @Test(
        "replies use the pickle protocol of the request, so older Pythons can read them",
        .enabled(if: Python.available), .blocking)
    func replyProtocol() async throws {
        try await withServer(handler: FakeJails.reference(logDir: "/l")) { socket in
            for version in 2...5 {
                let request = try Python.run(
                    "import sys, pickle; sys.stdout.buffer.write(pickle.dumps(['status'], \(version)))")
                let c = try RawConnection(socket)
                defer { c.close() }
                c.send(request + PickleWire.endMarker)
                let reply = await c.read(until: PickleWire.endMarker)
                #expect(Array(reply.prefix(2)) == [0x80, UInt8(version)])
                #expect(
                    pickleReply(reply)
                        == .success([.tuple(["Number of jail", 2]), .tuple(["Jail list", "sshd, web"])]))
            }
        }
    }

    @Test("a malformed JSON line gets an error line and the next line is served")
    func malformedJSON() async throws {
        try await withServer(handler: FakeJails.reference(logDir: "/l")) { socket in
            let c = try RawConnection(socket)
            defer { c.close() }
            c.send("{\"command\": [\"status\"\n")
            let bad = JSONWire.response(fromLine: await c.read(until: [0x0A]).dropLast())
            #expect({ if case .failure(let e) = bad { return e.code == .malformedRequest } else { return false } }())
            c.send("{\"command\": {\"not\": \"a list\"}}\n\n{\"command\": [\"ping\"]}\n")
            let notList = JSONWire.response(fromLine: await c.read(until: [0x0A]).dropLast())
            #expect(
                { if case .failure(let e) = notList { return e.code == .malformedRequest } else { return false } }())
            #expect(JSONWire.response(fromLine: await c.read(until: [0x0A]).dropLast()) == .success("pong"))
        }
    }

    @Test("an oversized request is refused, the connection closed, and the server keeps serving")
    func oversized() async throws {
        let configure: (inout ControlServer.Configuration) -> Void = { $0.maxRequestBytes = 1024 }
        try await withServer(handler: FakeJails.reference(logDir: "/l"), configure: configure) { socket in
            let c = try RawConnection(socket)
            defer { c.close() }
            c.send([0x80, 0x05] + [UInt8](repeating: 0x41, count: 4096))
            let reply = pickleReply(await c.read(until: PickleWire.endMarker))
            #expect(reply == .failure(ControlError(.failed, "request larger than 1024 bytes")))
            #expect(await c.isClosedByPeer())

            let j = try RawConnection(socket)
            defer { j.close() }
            j.send("{\"command\": [\"" + String(repeating: "x", count: 4096))
            let line = JSONWire.response(fromLine: await j.read(until: [0x0A]).dropLast())
            #expect(line == .failure(ControlError(.requestTooLarge, "request larger than 1024 bytes")))
            #expect(await j.isClosedByPeer())

            #expect(await ControlClient(socketPath: socket).send(["ping"]) == .success("pong"))
        }
    }

    @Test("garbage bytes before any request never crash the server")
    func garbage() async throws {
        try await withServer(handler: FakeJails.reference(logDir: "/l")) { socket in
            var rng = SplitMix(seed: 42)
            for _ in 0..<20 {
                let c = try RawConnection(socket)
                c.send((0..<512).map { _ in UInt8(truncatingIfNeeded: rng.next()) } + PickleWire.endMarker)
                c.close()
            }
            #expect(await ControlClient(socketPath: socket, dialect: .pickle).send(["ping"]) == .success("pong"))
        }
    }

    @Test("the socket is mode 0600, refuses a second server, and is removed on shutdown")
    func socketLifecycle() async throws {
        let path = try await withServer(handler: FakeJails.reference(logDir: "/l")) { socket in
            var st = stat()
            #expect(lstat(socket, &st) == 0)
            #expect(st.st_mode & 0o777 == 0o600)
            #expect(st.st_mode & S_IFMT == S_IFSOCK)
            do {
                _ = try ControlServer(configuration: .init(path: socket), handler: FakeJails([]))
                Issue.record("a second server must not take over a live socket")
            } catch let error as ControlServerError {
                #expect(error.code == EADDRINUSE)
            }
            return socket
        }
        #expect(access(path, F_OK) != 0)
        let reply = await ControlClient(socketPath: path).send(["ping"])
        #expect({ if case .failure(let e) = reply { return e.code == .connection } else { return false } }())
    }

    @Test("a stale socket file is replaced; a regular file is not")
    func staleSocket() async throws {
        let path = "/tmp/pcl-ctl-stale-\(getpid()).sock"
        // Leave a socket file behind with nobody listening.
        let fd = try Sys.socketFD()
        _ = Sys.withAddress(path) { bind(fd, $0, $1) }
        close(fd)
        #expect(Sys.isSocket(path) == true)
        do {
            let server = try ControlServer(configuration: .init(path: path), handler: FakeJails([]))
            let task = serve(server)
            #expect(await ControlClient(socketPath: path).send(["ping"]) == .success("pong"))
            task.cancel()
            await task.value
        }
        let file = "/tmp/pcl-ctl-file-\(getpid())"
        _ = FileManager.default.createFile(atPath: file, contents: Data("x".utf8))
        defer { unlink(file) }
        #expect(throws: ControlServerError.self) {
            _ = try ControlServer(configuration: .init(path: file), handler: FakeJails([]))
        }
        #expect(FileManager.default.contents(atPath: file) == Data("x".utf8))
    }

    @Test("users outside the allowed set are disconnected")
    func peerCredentials() async throws {
        let configure: (inout ControlServer.Configuration) -> Void = { $0.allowedUserIDs = [4_000_000] }
        try await withServer(handler: FakeJails.reference(logDir: "/l"), configure: configure) { socket in
            let reply = await ControlClient(socketPath: socket, dialect: .pickle).send(["ping"])
            #expect({ if case .failure(let e) = reply { return e.code == .connection } else { return false } }())
        }
    }

    @Test("ping is answered on the connection's thread while every handled command is stuck")
    func pingWhileStuck() async throws {
        /// Holds every command in `handle` until released; answers ping itself.
        final class Stuck: ControlHandler {
            let release = DispatchSemaphore(value: 0)
            let entered = DispatchSemaphore(value: 0)
            func handle(_ command: [String]) async -> ControlResponse {
                await offPool {
                    self.entered.signal()
                    self.release.wait()
                }
                return .success("handled")
            }
            func immediateReply(to command: [String]) -> ControlResponse? {
                command == ["ping"] ? .success("pong") : nil
            }
        }
        let stuck = Stuck()
        try await withServer(handler: stuck) { socket in
            async let status = ControlClient(socketPath: socket, dialect: .pickle).send(["status"])
            await offPool { stuck.entered.wait() }
            let started = ContinuousClock.now
            // fail2ban-client start's own check: a ping answered within 0.1 s means a server is running.
            let ping = await ControlClient(socketPath: socket, dialect: .pickle, timeoutSeconds: 5).send(["ping"])
            let took = ContinuousClock.now - started
            #expect(ping == .success("pong"))
            #expect(took < .seconds(2), "ping took \(took) while a command was stuck")
            // A command without an immediate reply still goes to the (stuck) handler.
            async let other = ControlClient(socketPath: socket, dialect: .json).send(["version"])
            await offPool { stuck.entered.wait() }
            stuck.release.signal()
            stuck.release.signal()
            #expect(await status == .success("handled"))
            #expect(await other == .success("handled"))
        }
    }

    @Test("a stop command that shuts the server down still gets its reply")
    func stopReplies() async throws {
        /// Cancels the server's task from inside the handler, as the daemon does for `stop`.
        final class Stopper: ControlHandler {
            let task = Mutex<Task<Void, Never>?>(nil)
            func handle(_ command: [String]) async -> ControlResponse {
                guard command == ["stop"] else { return .success("pong") }
                task.withLock { $0?.cancel() }
                try? await Task.sleep(for: .milliseconds(50))  // still working after the cancellation
                return .success(.null)
            }
        }
        let stopper = Stopper()
        let path = "/tmp/pcl-ctl-stop-\(getpid()).sock"
        let server = try ControlServer(configuration: .init(path: path), handler: stopper)
        let task = serve(server)
        stopper.task.withLock { $0 = task }
        #expect(await ControlClient(socketPath: path, dialect: .pickle).send(["ping"]) == .success("pong"))
        #expect(await ControlClient(socketPath: path, dialect: .pickle).send(["stop"]) == .success(.null))
        await task.value
        #expect(access(path, F_OK) != 0)
    }

    @Test("the client reports a missing server as a connection error")
    func noServer() async {
        let reply = await ControlClient(socketPath: "/tmp/pcl-ctl-nobody-here.sock").send(["ping"])
        guard case .failure(let error) = reply else {
            Issue.record("expected failure")
            return
        }
        #expect(error.code == .connection)
        #expect(error.message.contains("/tmp/pcl-ctl-nobody-here.sock"))
    }
}
