/// fail2ban's control-socket protocol: each message is a pickle followed by `<F2B_END_COMMAND>`. A request is a
/// pickled list of strings; a reply is a pickled tuple `(0, value)` on success or `(1, exception)` on failure.
/// The client ends a connection with `<F2B_CLOSE_COMMAND><F2B_END_COMMAND>`.
public enum PickleWire {
    /// Ends every message in both directions.
    public static let endMarker: [UInt8] = Array("<F2B_END_COMMAND>".utf8)
    /// The message a client sends before closing.
    public static let closeMarker: [UInt8] = Array("<F2B_CLOSE_COMMAND>".utf8)

    /// The command strings of a decoded request, as the ``ControlHandler`` receives them.
    ///
    /// Top-level strings pass through; numbers and booleans become their Python text (`5`, `True`); a nested list
    /// of plain values (reload's option list) is spliced in; a nested list of lists (reload's configuration
    /// stream) is dropped, since Portcullis reads its own configuration.
    public static func command(from request: PickleValue) throws(ControlError) -> [String] {
        guard case .list(let items) = request else {
            if case .tuple(let items) = request { return try command(items) }
            throw ControlError(.malformedRequest, "a request must be a list of strings")
        }
        return try command(items)
    }

    private static func command(_ items: [PickleValue]) throws(ControlError) -> [String] {
        var out: [String] = []
        for item in items {
            if let text = scalarText(item) {
                out.append(text)
                continue
            }
            switch item {
            case .list(let inner), .tuple(let inner):
                let texts = inner.compactMap(scalarText)
                if texts.count == inner.count {
                    out += texts
                } else if !inner.allSatisfy({ $0.isContainer }) {
                    throw ControlError(.malformedRequest, "a request may only contain strings and lists of strings")
                }
            default:
                throw ControlError(.malformedRequest, "a request may only contain strings and lists of strings")
            }
        }
        guard !out.isEmpty else { throw ControlError(.malformedRequest, "empty command") }
        return out
    }

    private static func scalarText(_ value: PickleValue) -> String? {
        switch value {
        case .string(let s): return s
        case .int(let i): return String(i)
        case .float(let d): return PythonRepr.float(d)
        case .bool(let b): return b ? "True" : "False"
        case .none: return "None"
        case .bytes(let b): return String(decoding: b, as: UTF8.self)
        default: return nil
        }
    }

    /// The pickled request fail2ban-client would send for a command (list of strings), without the end marker.
    public static func encodeRequest(_ command: [String]) -> [UInt8] {
        PickleEncoder().encode(.list(command.map { .string($0) }))
    }

    /// The reply value for a response: `(0, value)` or `(1, exception)`.
    public static func reply(_ response: ControlResponse) -> PickleValue {
        switch response {
        case .success(let value): return .tuple([.int(0), pickle(value)])
        case .failure(let error): return .tuple([.int(1), exception(error)])
        }
    }

    /// The pickled reply for a response, without the end marker.
    public static func encodeReply(_ response: ControlResponse) -> [UInt8] {
        PickleEncoder().encode(reply(response))
    }

    /// The Python exception fail2ban-client expects for an error.
    static func exception(_ error: ControlError) -> PickleValue {
        let (module, name): (String, String)
        switch error.code {
        case .unknownJail: (module, name) = ("fail2ban.exceptions", "UnknownJailException")
        case .duplicateJail: (module, name) = ("fail2ban.exceptions", "DuplicateJailException")
        case .incompleteCommand: (module, name) = ("builtins", "IndexError")
        case .invalidArgument: (module, name) = ("builtins", "ValueError")
        case .nameError: (module, name) = ("builtins", "NameError")
        case .syntaxError: (module, name) = ("builtins", "SyntaxError")
        case .runtimeError: (module, name) = ("builtins", "RuntimeError")
        case .keyError: (module, name) = ("builtins", "KeyError")
        case .attributeError: (module, name) = ("builtins", "AttributeError")
        case .lookupError: (module, name) = ("builtins", "LookupError")
        case .regexError: (module, name) = ("fail2ban.server.failregex", "RegexException")
        case .fileNotFound:
            // OSError's arguments: (errno, strerror); str() prints "[Errno 2] No such file or directory".
            return .call(
                .global(module: "builtins", name: "FileNotFoundError"),
                [.int(2), .string(error.message)] + (error.filename.map { [.string($0)] } ?? []))
        default: (module, name) = ("builtins", "Exception")
        }
        return .call(.global(module: module, name: name), [.string(error.message)])
    }

    /// Converts a control value to its pickle form.
    public static func pickle(_ value: ControlValue) -> PickleValue {
        switch value {
        case .string(let s): return .string(s)
        case .int(let i): return .int(i)
        case .double(let d): return .float(d)
        case .bool(let b): return .bool(b)
        case .null: return .none
        case .list(let items): return .list(items.map(pickle))
        case .tuple(let items): return .tuple(items.map(pickle))
        case .dict(let pairs): return .dict(pairs.map { PickleValue.Pair(pickle($0.key), pickle($0.value)) })
        }
    }

    /// Converts a decoded pickle to a control value: bytes become text, sets lists, and other objects their
    /// Python-like text.
    public static func controlValue(_ value: PickleValue) -> ControlValue {
        switch value {
        case .none: return .null
        case .bool(let b): return .bool(b)
        case .int(let i): return .int(i)
        case .float(let d): return .double(d)
        case .string(let s): return .string(s)
        case .bytes(let b): return .string(String(decoding: b, as: UTF8.self))
        case .list(let items), .set(let items): return .list(items.map(controlValue))
        case .tuple(let items): return .tuple(items.map(controlValue))
        case .dict(let pairs):
            return .dict(pairs.map { ControlValue.Pair(controlValue($0.key), controlValue($0.value)) })
        case .global(let module, let name): return .string("\(module).\(name)")
        case .call(let callable, let args):
            let name = controlValue(callable).stringValue ?? "object"
            return .string("\(name)(\(args.map { PythonRepr.render(controlValue($0)) }.joined(separator: ", ")))")
        }
    }

    /// Interprets a decoded reply `(code, value)` from a fail2ban-compatible server.
    public static func response(from reply: PickleValue) -> ControlResponse {
        guard case .tuple(let items) = reply, items.count == 2, case .int(let code) = items[0] else {
            if case .string(let message) = reply { return .failure(ControlError(.failed, message)) }
            return .failure(ControlError(.malformedRequest, "unexpected reply shape"))
        }
        if code == 0 { return .success(controlValue(items[1])) }
        guard case .call(.global(_, let name), let args) = items[1] else {
            return .failure(ControlError(.failed, PythonRepr.render(controlValue(items[1]))))
        }
        // OSError carries (errno, strerror): the text is the second.
        let text = args.count >= 2 && args[0].isInt ? args[1] : args.first
        let message = text.map { controlValue($0).stringValue ?? PythonRepr.render(controlValue($0)) } ?? ""
        let filename = args.count == 3 && args[0].isInt ? controlValue(args[2]).stringValue : nil
        let codes: [String: ControlError.Code] = [
            "UnknownJailException": .unknownJail, "DuplicateJailException": .duplicateJail,
            "IndexError": .incompleteCommand, "ValueError": .invalidArgument, "NameError": .nameError,
            "SyntaxError": .syntaxError, "RuntimeError": .runtimeError, "KeyError": .keyError,
            "AttributeError": .attributeError, "LookupError": .lookupError, "RegexException": .regexError,
            "FileNotFoundError": .fileNotFound,
        ]
        return .failure(ControlError(codes[name] ?? .failed, message, filename: filename))
    }
}

extension PickleValue {
    fileprivate var isInt: Bool {
        if case .int = self { return true }
        return false
    }

    fileprivate var isContainer: Bool {
        switch self {
        case .list, .tuple, .dict, .set: return true
        default: return false
        }
    }
}
