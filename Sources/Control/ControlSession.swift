/// The server side of one connection as a state machine over bytes, shared by the socket server and in-process
/// tests: feed it what the client sent, take events out, encode replies in the client's dialect.
///
/// The dialect is detected from the first byte: `{` is Portcullis's JSON lines, anything else fail2ban's pickle
/// framing (`0x80` for protocol 2+, `<` for a bare close command).
struct ControlSession {
    /// The protocol a client speaks.
    enum Dialect: Sendable, Hashable {
        case pickle
        case json
    }

    /// What the connection should do next.
    enum Event: Sendable, Hashable {
        /// Run this command and send the encoded reply.
        case request([String])
        /// Send this error reply; then close the connection when `close` is true.
        case error(ControlError, close: Bool)
        /// The client said goodbye (or the stream cannot continue): close without replying.
        case close
    }

    let maxRequestBytes: Int
    private(set) var dialect: Dialect?
    /// The pickle protocol of the client's last request; replies use it (so an older Python can read them).
    private(set) var pickleVersion: UInt8 = 5
    private var buffer: [UInt8] = []
    private var scanned = 0
    private var failed = false

    init(maxRequestBytes: Int) {
        self.maxRequestBytes = maxRequestBytes
    }

    /// Appends bytes received from the client.
    mutating func feed(_ bytes: some Collection<UInt8>) {
        guard !failed else { return }
        buffer.append(contentsOf: bytes)
    }

    /// The next complete event, or nil when more bytes are needed.
    mutating func next() -> Event? {
        guard !failed else { return nil }
        if dialect == nil {
            guard let first = buffer.first(where: { !($0 == 0x20 || $0 == 0x0A || $0 == 0x0D || $0 == 0x09) }) else {
                if buffer.count > maxRequestBytes {
                    return fail(.requestTooLarge, "request larger than \(maxRequestBytes) bytes")
                }
                return nil
            }
            dialect = first == UInt8(ascii: "{") ? .json : .pickle
        }
        switch dialect! {
        case .pickle: return nextPickle()
        case .json: return nextJSON()
        }
    }

    private mutating func fail(_ code: ControlError.Code, _ message: String) -> Event {
        failed = true
        buffer = []
        return .error(ControlError(code, message), close: true)
    }

    private mutating func nextPickle() -> Event? {
        let marker = PickleWire.endMarker
        guard let end = find(marker, from: max(0, scanned - marker.count + 1)) else {
            scanned = buffer.count
            if buffer.count > maxRequestBytes {
                return fail(.requestTooLarge, "request larger than \(maxRequestBytes) bytes")
            }
            return nil
        }
        let message = Array(buffer[..<end])
        buffer.removeSubrange(..<(end + marker.count))
        scanned = 0
        guard message.count <= maxRequestBytes else {
            return fail(.requestTooLarge, "request larger than \(maxRequestBytes) bytes")
        }
        if message == PickleWire.closeMarker { return .close }
        if message.count >= 2, message[0] == 0x80 { pickleVersion = min(max(message[1], 2), 5) }
        do {
            let value = try PickleDecoder().decode(message)
            return .request(try PickleWire.command(from: value))
        } catch let error as PickleError {
            return .error(ControlError(.malformedRequest, "malformed request: \(error)"), close: false)
        } catch let error as ControlError {
            return .error(error, close: false)
        } catch {
            return .error(ControlError(.malformedRequest, "malformed request"), close: false)
        }
    }

    private mutating func nextJSON() -> Event? {
        while true {
            guard let newline = buffer[scanned...].firstIndex(of: 0x0A) else {
                scanned = buffer.count
                if buffer.count > maxRequestBytes {
                    return fail(.requestTooLarge, "request larger than \(maxRequestBytes) bytes")
                }
                return nil
            }
            let line = buffer[..<newline]
            let isBlank = line.allSatisfy { $0 == 0x20 || $0 == 0x0D || $0 == 0x09 }
            defer {
                buffer.removeSubrange(...newline)
                scanned = 0
            }
            if isBlank { continue }
            guard line.count <= maxRequestBytes else {
                return .error(
                    ControlError(.requestTooLarge, "request larger than \(maxRequestBytes) bytes"), close: false)
            }
            do {
                return .request(try JSONWire.command(fromLine: line))
            } catch {
                return .error(error, close: false)
            }
        }
    }

    private func find(_ marker: [UInt8], from start: Int) -> Int? {
        guard buffer.count >= marker.count else { return nil }
        var i = start
        let last = buffer.count - marker.count
        while i <= last {
            if buffer[i] == marker[0] {
                var match = true
                for j in 1..<marker.count where buffer[i + j] != marker[j] {
                    match = false
                    break
                }
                if match { return i }
            }
            i += 1
        }
        return nil
    }

    /// The bytes to send for a response, in this connection's dialect (JSON when none was detected yet).
    func encode(_ response: ControlResponse) -> [UInt8] {
        switch dialect ?? .json {
        case .pickle:
            return PickleEncoder(protocol: pickleVersion).encode(PickleWire.reply(response)) + PickleWire.endMarker
        case .json: return JSONWire.replyLine(response)
        }
    }
}
