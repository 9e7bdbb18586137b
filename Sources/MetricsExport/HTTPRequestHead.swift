/// The part of an HTTP/1.x request the metrics endpoint looks at: the request line of a complete head. Pure, so
/// every answer to hostile input is unit-tested without a socket.
///
/// ```swift
/// MetricsHTTP.answer(toHead: Array("GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n".utf8), path: "/metrics")  // .metrics(head: false)
/// MetricsHTTP.answer(toHead: Array("POST /metrics HTTP/1.1\r\n\r\n".utf8), path: "/metrics")             // .error(405, …)
/// ```
public enum MetricsHTTP {
    /// What to send back.
    public enum Answer: Sendable, Equatable {
        /// The metrics (`head`: headers only, for HEAD).
        case metrics(head: Bool)
        /// An error status with its reason phrase.
        case error(Int, String)
    }

    /// Where the head ends in `buffer` (the index after `\r\n\r\n`, or after `\n\n` from sloppy clients), nil
    /// while incomplete.
    public static func headEnd(_ buffer: [UInt8]) -> Int? {
        var i = 0
        while i < buffer.count {
            if buffer[i] == 0x0A {
                if i + 1 < buffer.count, buffer[i + 1] == 0x0A { return i + 2 }
                if i + 2 < buffer.count, buffer[i + 1] == 0x0D, buffer[i + 2] == 0x0A { return i + 3 }
            }
            i += 1
        }
        return nil
    }

    /// The answer to a complete head: only `GET`/`HEAD` of `path` (a query string is ignored) over HTTP/1.0 or
    /// 1.1 gets the metrics; a request with a body (`Content-Length` other than 0, `Transfer-Encoding`) is refused.
    public static func answer(toHead head: [UInt8], path: String) -> Answer {
        let lines = head.split(separator: 0x0A, omittingEmptySubsequences: false).map { line -> Substring in
            var l = Substring(decoding: line, as: UTF8.self)
            if l.hasSuffix("\r") { l = l.dropLast() }
            return l
        }
        guard let requestLine = lines.first else { return .error(400, "Bad Request") }
        let parts = requestLine.split(separator: " ", omittingEmptySubsequences: false)
        guard parts.count == 3, parts.allSatisfy({ !$0.isEmpty }) else { return .error(400, "Bad Request") }
        let (method, target, version) = (parts[0], parts[1], parts[2])
        guard version == "HTTP/1.1" || version == "HTTP/1.0" else { return .error(505, "HTTP Version Not Supported") }
        for line in lines.dropFirst() where !line.isEmpty {
            guard let colon = line.firstIndex(of: ":") else { return .error(400, "Bad Request") }
            let name = line[..<colon].lowercased()
            let value = line[line.index(after: colon)...].trimmingCharacters(in: " \t")
            if name == "transfer-encoding" || (name == "content-length" && value != "0") {
                return .error(400, "Bad Request")
            }
        }
        guard method == "GET" || method == "HEAD" else { return .error(405, "Method Not Allowed") }
        let pathPart = target.split(separator: "?", maxSplits: 1, omittingEmptySubsequences: false).first ?? ""
        guard pathPart == path else { return .error(404, "Not Found") }
        return .metrics(head: method == "HEAD")
    }

    /// The whole response: status line, headers (`Connection: close`), and `body` unless `head`.
    public static func response(
        status: Int, reason: String, contentType: String, body: [UInt8], head: Bool = false
    )
        -> [UInt8]
    {
        var text = "HTTP/1.1 \(status) \(reason)\r\n"
        text += "Content-Type: \(contentType)\r\n"
        text += "Content-Length: \(body.count)\r\n"
        if status == 405 { text += "Allow: GET, HEAD\r\n" }
        text += "Connection: close\r\n\r\n"
        return Array(text.utf8) + (head ? [] : body)
    }
}

extension Substring {
    fileprivate func trimmingCharacters(in set: String) -> Substring {
        var s = self
        while let f = s.first, set.contains(f) { s = s.dropFirst() }
        while let l = s.last, set.contains(l) { s = s.dropLast() }
        return s
    }
}
