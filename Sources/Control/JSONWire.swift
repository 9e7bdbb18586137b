import Core

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
            var detail: ControlValue = ["code": .string(error.code.rawValue), "message": .string(error.message)]
            if let filename = error.filename, case .dict(var pairs) = detail {
                pairs.append(ControlValue.Pair("filename", .string(filename)))
                detail = .dict(pairs)
            }
            object = ["ok": false, "error": detail]
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
        return .failure(
            ControlError(
                code, error?["message"]?.stringValue ?? "unknown error", filename: error?["filename"]?.stringValue))
    }
}

/// ``ControlValue`` as JSON, through ``Core/JSON`` (object order kept, integers kept exact).
public enum JSONValue {
    /// A JSON syntax error with its byte offset.
    public typealias ParseError = JSON.ParseError

    /// JSON text for a value. Tuples are arrays; dict keys that are not strings are written as their Python text;
    /// non-finite doubles are `null`.
    public static func encode(_ value: ControlValue) -> String {
        json(value).encoded()
    }

    /// The JSON form of a control value.
    public static func json(_ value: ControlValue) -> JSON {
        switch value {
        case .string(let s): return .string(s)
        case .int(let i): return .int(i)
        case .double(let d): return .double(d)
        case .bool(let b): return .bool(b)
        case .null: return .null
        case .list(let items), .tuple(let items): return .array(items.map(json))
        case .dict(let pairs): return .object(pairs.map { (PythonRepr.str($0.key), json($0.value)) })
        }
    }

    /// The control value of a JSON value (arrays become lists, objects dicts with string keys).
    public static func controlValue(_ json: JSON) -> ControlValue {
        switch json {
        case .string(let s): return .string(s)
        case .int(let i): return .int(i)
        case .double(let d): return .double(d)
        case .bool(let b): return .bool(b)
        case .null: return .null
        case .array(let items): return .list(items.map(controlValue))
        case .object(let members):
            return .dict(members.map { ControlValue.Pair(.string($0.key), controlValue($0.value)) })
        }
    }

    /// Parses one JSON value (surrounding whitespace allowed), nesting at most `maxDepth`.
    public static func parse(_ bytes: [UInt8], maxDepth: Int = 64) throws(ParseError) -> ControlValue {
        controlValue(try JSON.parse(bytes, maxDepth: maxDepth))
    }
}
