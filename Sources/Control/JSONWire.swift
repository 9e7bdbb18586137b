/// Portcullis's own JSON-lines protocol on the control socket, used by `portcullis` (and its `--json` output).
///
/// One request per line: `{"command": ["status", "sshd"]}`. One reply per line:
/// `{"ok": true, "result": …}` or `{"ok": false, "error": {"code": "unknownJail", "message": "sshd"}}`.
/// Tuples become arrays and dicts objects (keys as text).
public enum JSONWire {
    /// The command of a request line.
    public static func command(fromLine line: some Collection<UInt8>) throws(ControlError) -> [String] {
        let value: ControlValue
        do {
            value = try JSONValue.parse(Array(line))
        } catch {
            throw ControlError(.malformedRequest, "request is not JSON: \(error.message)")
        }
        guard let command = value["command"]?.elements else {
            throw ControlError(.malformedRequest, "request must be an object with a \"command\" array of strings")
        }
        var out: [String] = []
        for item in command {
            switch item {
            case .string(let s): out.append(s)
            case .int(let i): out.append(String(i))
            case .double(let d): out.append(PythonRepr.float(d))
            case .bool(let b): out.append(b ? "True" : "False")
            default: throw ControlError(.malformedRequest, "command elements must be strings")
            }
        }
        guard !out.isEmpty else { throw ControlError(.malformedRequest, "empty command") }
        return out
    }

    /// The request line (with its newline) for a command.
    public static func requestLine(_ command: [String]) -> [UInt8] {
        Array(JSONValue.encode(.dict([ControlValue.Pair("command", .list(command.map { .string($0) }))])).utf8) + [0x0A]
    }

    /// The reply line (with its newline) for a response.
    public static func replyLine(_ response: ControlResponse) -> [UInt8] {
        let object: ControlValue
        switch response {
        case .success(let value): object = ["ok": true, "result": value]
        case .failure(let error):
            object = ["ok": false, "error": ["code": .string(error.code.rawValue), "message": .string(error.message)]]
        }
        return Array(JSONValue.encode(object).utf8) + [0x0A]
    }

    /// Interprets a reply line.
    public static func response(fromLine line: some Collection<UInt8>) -> ControlResponse {
        guard let value = try? JSONValue.parse(Array(line)), case .bool(let ok)? = value["ok"] else {
            return .failure(ControlError(.connection, "the server sent an unreadable reply"))
        }
        if ok { return .success(value["result"] ?? .null) }
        let error = value["error"]
        let code = error?["code"]?.stringValue.flatMap(ControlError.Code.init(rawValue:)) ?? .failed
        return .failure(ControlError(code, error?["message"]?.stringValue ?? "unknown error"))
    }
}

/// A small strict JSON reader/writer for ``ControlValue`` (object order kept, integers kept exact).
public enum JSONValue {
    /// A JSON syntax error with its byte offset.
    public struct ParseError: Error, Sendable, Hashable {
        /// What is wrong, with the byte offset.
        public var message: String
    }

    /// JSON text for a value. Tuples are arrays; dict keys that are not strings are written as their Python text;
    /// non-finite doubles are `null`.
    public static func encode(_ value: ControlValue) -> String {
        var out = ""
        write(value, &out)
        return out
    }

    private static func write(_ value: ControlValue, _ out: inout String) {
        switch value {
        case .string(let s): writeString(s, &out)
        case .int(let i): out += String(i)
        case .double(let d): out += d.isFinite ? d.description : "null"
        case .bool(let b): out += b ? "true" : "false"
        case .null: out += "null"
        case .list(let items), .tuple(let items):
            out += "["
            for (i, item) in items.enumerated() {
                if i > 0 { out += "," }
                write(item, &out)
            }
            out += "]"
        case .dict(let pairs):
            out += "{"
            for (i, pair) in pairs.enumerated() {
                if i > 0 { out += "," }
                writeString(PythonRepr.str(pair.key), &out)
                out += ":"
                write(pair.value, &out)
            }
            out += "}"
        }
    }

    private static func writeString(_ s: String, _ out: inout String) {
        out += "\""
        for scalar in s.unicodeScalars {
            switch scalar {
            case "\"": out += "\\\""
            case "\\": out += "\\\\"
            case "\n": out += "\\n"
            case "\r": out += "\\r"
            case "\t": out += "\\t"
            default:
                if scalar.value < 0x20 {
                    let hex = String(scalar.value, radix: 16)
                    out += "\\u" + String(repeating: "0", count: 4 - hex.count) + hex
                } else {
                    out.unicodeScalars.append(scalar)
                }
            }
        }
        out += "\""
    }

    /// Parses one JSON value (surrounding whitespace allowed), nesting at most `maxDepth`.
    public static func parse(_ bytes: [UInt8], maxDepth: Int = 64) throws(ParseError) -> ControlValue {
        var parser = Parser(bytes: bytes, maxDepth: maxDepth)
        parser.skipSpace()
        let value = try parser.value(depth: 0)
        parser.skipSpace()
        guard parser.i == bytes.count else { throw parser.fail("unexpected text after the value") }
        return value
    }

    private struct Parser {
        let bytes: [UInt8]
        let maxDepth: Int
        var i = 0

        init(bytes: [UInt8], maxDepth: Int) {
            self.bytes = bytes
            self.maxDepth = maxDepth
        }

        func fail(_ message: String) -> ParseError { ParseError(message: "\(message) at byte \(i)") }

        mutating func skipSpace() {
            while i < bytes.count, bytes[i] == 0x20 || bytes[i] == 0x0A || bytes[i] == 0x0D || bytes[i] == 0x09 {
                i += 1
            }
        }

        mutating func literal(_ word: String, _ value: ControlValue) throws(ParseError) -> ControlValue {
            let w = Array(word.utf8)
            guard bytes.count - i >= w.count, Array(bytes[i..<i + w.count]) == w else { throw fail("invalid literal") }
            i += w.count
            return value
        }

        mutating func value(depth: Int) throws(ParseError) -> ControlValue {
            guard depth <= maxDepth else { throw fail("nesting deeper than \(maxDepth)") }
            guard i < bytes.count else { throw fail("unexpected end") }
            switch bytes[i] {
            case UInt8(ascii: "{"):
                i += 1
                var pairs: [ControlValue.Pair] = []
                skipSpace()
                if i < bytes.count, bytes[i] == UInt8(ascii: "}") {
                    i += 1
                    return .dict(pairs)
                }
                while true {
                    skipSpace()
                    guard i < bytes.count, bytes[i] == UInt8(ascii: "\"") else { throw fail("expected a key") }
                    let key = try string()
                    skipSpace()
                    guard i < bytes.count, bytes[i] == UInt8(ascii: ":") else { throw fail("expected ':'") }
                    i += 1
                    skipSpace()
                    pairs.append(ControlValue.Pair(.string(key), try value(depth: depth + 1)))
                    skipSpace()
                    guard i < bytes.count else { throw fail("unexpected end") }
                    if bytes[i] == UInt8(ascii: ",") {
                        i += 1
                        continue
                    }
                    guard bytes[i] == UInt8(ascii: "}") else { throw fail("expected ',' or '}'") }
                    i += 1
                    return .dict(pairs)
                }
            case UInt8(ascii: "["):
                i += 1
                var items: [ControlValue] = []
                skipSpace()
                if i < bytes.count, bytes[i] == UInt8(ascii: "]") {
                    i += 1
                    return .list(items)
                }
                while true {
                    skipSpace()
                    items.append(try value(depth: depth + 1))
                    skipSpace()
                    guard i < bytes.count else { throw fail("unexpected end") }
                    if bytes[i] == UInt8(ascii: ",") {
                        i += 1
                        continue
                    }
                    guard bytes[i] == UInt8(ascii: "]") else { throw fail("expected ',' or ']'") }
                    i += 1
                    return .list(items)
                }
            case UInt8(ascii: "\""): return .string(try string())
            case UInt8(ascii: "t"): return try literal("true", .bool(true))
            case UInt8(ascii: "f"): return try literal("false", .bool(false))
            case UInt8(ascii: "n"): return try literal("null", .null)
            default: return try number()
            }
        }

        mutating func number() throws(ParseError) -> ControlValue {
            let start = i
            var isInteger = true
            if i < bytes.count, bytes[i] == UInt8(ascii: "-") { i += 1 }
            while i < bytes.count {
                let c = bytes[i]
                if c >= 0x30 && c <= 0x39 {
                    i += 1
                } else if c == UInt8(ascii: ".") || c == UInt8(ascii: "e") || c == UInt8(ascii: "E")
                    || c == UInt8(ascii: "+") || c == UInt8(ascii: "-")
                {
                    isInteger = false
                    i += 1
                } else {
                    break
                }
            }
            let text = String(decoding: bytes[start..<i], as: UTF8.self)
            guard !text.isEmpty, text != "-" else { throw fail("invalid value") }
            if isInteger, let v = Int(text) { return .int(v) }
            guard let d = Double(text) else { throw fail("invalid number") }
            return .double(d)
        }

        mutating func hex4() throws(ParseError) -> UInt32 {
            guard bytes.count - i >= 4,
                let v = UInt32(String(decoding: bytes[i..<i + 4], as: UTF8.self), radix: 16)
            else { throw fail("invalid \\u escape") }
            i += 4
            return v
        }

        mutating func string() throws(ParseError) -> String {
            i += 1  // opening quote
            var out: [UInt8] = []
            while true {
                guard i < bytes.count else { throw fail("unterminated string") }
                let c = bytes[i]
                i += 1
                if c == UInt8(ascii: "\"") { break }
                if c < 0x20 { throw fail("control character in string") }
                guard c == UInt8(ascii: "\\") else {
                    out.append(c)
                    continue
                }
                guard i < bytes.count else { throw fail("unterminated escape") }
                let e = bytes[i]
                i += 1
                switch e {
                case UInt8(ascii: "n"): out.append(0x0A)
                case UInt8(ascii: "r"): out.append(0x0D)
                case UInt8(ascii: "t"): out.append(0x09)
                case UInt8(ascii: "b"): out.append(0x08)
                case UInt8(ascii: "f"): out.append(0x0C)
                case UInt8(ascii: "\""), UInt8(ascii: "\\"), UInt8(ascii: "/"): out.append(e)
                case UInt8(ascii: "u"):
                    var v = try hex4()
                    if (0xD800..<0xDC00).contains(v), bytes.count - i >= 6, bytes[i] == UInt8(ascii: "\\"),
                        bytes[i + 1] == UInt8(ascii: "u")
                    {
                        i += 2
                        let low = try hex4()
                        guard (0xDC00..<0xE000).contains(low) else { throw fail("invalid surrogate pair") }
                        v = 0x10000 + ((v - 0xD800) << 10) + (low - 0xDC00)
                    }
                    out += Array(String(Character(Unicode.Scalar(v) ?? "\u{FFFD}")).utf8)
                default: throw fail("invalid escape")
                }
            }
            guard let s = String(validating: out, as: UTF8.self) else { throw fail("string is not valid UTF-8") }
            return s
        }
    }
}
