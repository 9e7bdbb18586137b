import Core

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// A client of the control socket, one connection per command. Speaks Portcullis's JSON lines by default, or
/// fail2ban's pickle framing (which also works against a real `fail2ban-server`).
///
/// ```swift
/// let client = ControlClient(socketPath: "/run/portcullis/portcullis.sock")
/// let reply = await client.send(["status", "sshd"])
/// print(StatusFormatter.render(reply, for: ["status", "sshd"]).text)
/// ```
public struct ControlClient: Sendable {
    /// Which protocol to speak.
    public enum Dialect: Sendable, Hashable {
        /// `{"command": […]}` lines.
        case json
        /// fail2ban's pickle + `<F2B_END_COMMAND>` framing.
        case pickle
    }

    /// The socket path.
    public var socketPath: String
    /// The protocol.
    public var dialect: Dialect
    /// Seconds to wait for the reply before failing; 0 waits forever.
    public var timeoutSeconds: Int
    /// Largest reply accepted.
    public var maxReplyBytes: Int

    /// A client for the socket at `socketPath`.
    public init(socketPath: String, dialect: Dialect = .json, timeoutSeconds: Int = 30, maxReplyBytes: Int = 64 << 20) {
        self.socketPath = socketPath
        self.dialect = dialect
        self.timeoutSeconds = timeoutSeconds
        self.maxReplyBytes = maxReplyBytes
    }

    /// Sends a command and returns the reply. Connection problems come back as a
    /// ``ControlError/Code/connection`` failure. The blocking I/O runs on its own thread, not on the caller's.
    public func send(_ command: [String]) async -> ControlResponse {
        await withCheckedContinuation { continuation in
            let started =
                (try? DedicatedThread.detached { [self] in continuation.resume(returning: sendBlocking(command)) })
                != nil
            if !started {
                continuation.resume(returning: .failure(ControlError(.connection, "cannot start a client thread")))
            }
        }
    }

    /// Sends a command from the current thread, blocking until the reply arrives.
    public func sendBlocking(_ command: [String]) -> ControlResponse {
        let fd: Int32
        do {
            fd = try Sys.connect(path: socketPath)
        } catch {
            return .failure(
                ControlError(.connection, "cannot reach the server at \(socketPath): \(error); is it running?"))
        }
        defer { close(fd) }
        Sys.setReceiveTimeout(fd, seconds: timeoutSeconds)
        Sys.setSendTimeout(fd, seconds: timeoutSeconds)
        let request: [UInt8]
        switch dialect {
        case .json: request = JSONWire.requestLine(command)
        case .pickle: request = PickleWire.encodeRequest(command) + PickleWire.endMarker
        }
        guard Sys.writeAll(fd, request) else {
            return .failure(ControlError(.connection, "the server closed the connection"))
        }
        var reply: [UInt8] = []
        let chunk = UnsafeMutableRawBufferPointer.allocate(byteCount: 65536, alignment: 1)
        defer { chunk.deallocate() }
        while true {
            if let end = complete(reply) {
                let response = decode(Array(reply[..<end]))
                if dialect == .pickle {
                    _ = Sys.writeAll(fd, PickleWire.closeMarker + PickleWire.endMarker)
                }
                return response
            }
            guard reply.count <= maxReplyBytes else {
                return .failure(ControlError(.connection, "reply larger than \(maxReplyBytes) bytes"))
            }
            guard let n = Sys.read(fd, into: chunk) else {
                return .failure(ControlError(.connection, "no reply from the server within \(timeoutSeconds) s"))
            }
            guard n > 0 else {
                return .failure(ControlError(.connection, "the server closed the connection without replying"))
            }
            reply += UnsafeRawBufferPointer(rebasing: chunk[0..<n])
        }
    }

    /// The length of the reply's body when it is complete.
    private func complete(_ bytes: [UInt8]) -> Int? {
        switch dialect {
        case .json: return bytes.firstIndex(of: 0x0A)
        case .pickle:
            let marker = PickleWire.endMarker
            guard bytes.count >= marker.count else { return nil }
            for i in 0...(bytes.count - marker.count) where bytes[i] == marker[0] {
                if Array(bytes[i..<(i + marker.count)]) == marker { return i }
            }
            return nil
        }
    }

    private func decode(_ body: [UInt8]) -> ControlResponse {
        switch dialect {
        case .json: return JSONWire.response(fromLine: body)
        case .pickle:
            do {
                return PickleWire.response(from: try PickleDecoder().decode(body))
            } catch {
                return .failure(ControlError(.connection, "unreadable reply: \(error)"))
            }
        }
    }
}
