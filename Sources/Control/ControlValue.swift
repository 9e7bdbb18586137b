/// A reply value as the control protocol carries it: the shape of fail2ban's replies (Python values).
///
/// Literals make replies short to write:
/// ```swift
/// let status: ControlValue = [.tuple(["Number of jail", 1]), .tuple(["Jail list", "sshd"])]
/// let banned: ControlValue = [["sshd": ["192.0.2.1"]]]   // a list of one dict
/// ```
public indirect enum ControlValue: Sendable, Hashable {
    /// A text string (Python `str`).
    case string(String)
    /// An integer (Python `int`).
    case int(Int)
    /// A floating-point number (Python `float`).
    case double(Double)
    /// A boolean (Python `bool`).
    case bool(Bool)
    /// No value (Python `None`).
    case null
    /// A list (Python `list`).
    case list([ControlValue])
    /// A tuple (Python `tuple`); JSON renders it as an array.
    case tuple([ControlValue])
    /// A dictionary with its insertion order kept (Python `dict`).
    case dict([Pair])

    /// One key/value entry of a ``ControlValue/dict(_:)``.
    public struct Pair: Sendable, Hashable {
        /// The key (usually a string).
        public var key: ControlValue
        /// The value.
        public var value: ControlValue

        /// Creates an entry.
        public init(_ key: ControlValue, _ value: ControlValue) {
            self.key = key
            self.value = value
        }
    }

    /// The string, when this is a string.
    public var stringValue: String? {
        if case .string(let s) = self { return s }
        return nil
    }

    /// The integer, when this is an int (or a bool, as in Python).
    public var intValue: Int? {
        switch self {
        case .int(let i): return i
        case .bool(let b): return b ? 1 : 0
        default: return nil
        }
    }

    /// The elements, when this is a list or a tuple.
    public var elements: [ControlValue]? {
        switch self {
        case .list(let items), .tuple(let items): return items
        default: return nil
        }
    }

    /// The value under a string key, when this is a dict.
    public subscript(key: String) -> ControlValue? {
        guard case .dict(let pairs) = self else { return nil }
        return pairs.first { $0.key == .string(key) }?.value
    }
}

extension ControlValue: ExpressibleByStringLiteral, ExpressibleByIntegerLiteral, ExpressibleByFloatLiteral,
    ExpressibleByBooleanLiteral, ExpressibleByNilLiteral, ExpressibleByArrayLiteral, ExpressibleByDictionaryLiteral
{
    /// A string literal is a ``string(_:)``.
    public init(stringLiteral value: String) { self = .string(value) }
    /// An integer literal is an ``int(_:)``.
    public init(integerLiteral value: Int) { self = .int(value) }
    /// A float literal is a ``double(_:)``.
    public init(floatLiteral value: Double) { self = .double(value) }
    /// A boolean literal is a ``bool(_:)``.
    public init(booleanLiteral value: Bool) { self = .bool(value) }
    /// `nil` is ``null``.
    public init(nilLiteral: ()) { self = .null }
    /// An array literal is a ``list(_:)``.
    public init(arrayLiteral elements: ControlValue...) { self = .list(elements) }
    /// A dictionary literal is a ``dict(_:)`` in literal order.
    public init(dictionaryLiteral elements: (ControlValue, ControlValue)...) {
        self = .dict(elements.map { Pair($0.0, $0.1) })
    }
}

/// A failed request. The code says which fail2ban exception the pickle protocol sends (so `fail2ban-client` prints
/// its usual message); the message is for a person.
public struct ControlError: Error, Sendable, Hashable, CustomStringConvertible {
    /// What kind of failure.
    public enum Code: String, Sendable, Hashable, CaseIterable {
        /// The named jail does not exist (fail2ban's `UnknownJailException`).
        case unknownJail
        /// A jail of that name already exists (fail2ban's `DuplicateJailException`).
        case duplicateJail
        /// The command is not known or not implemented (Python `Exception`).
        case invalidCommand
        /// The command lacks arguments (Python `IndexError`; the client prints "Sorry but the command is invalid").
        case incompleteCommand
        /// An argument has a bad value (Python `ValueError`).
        case invalidArgument
        /// A time value that is not a number or an expression fail2ban evaluates (Python `NameError`, e.g.
        /// `name 'abc' is not defined`); also fail2ban 1.0.2's reply to adding a jail that exists.
        case nameError
        /// A time value fail2ban cannot parse as an expression (Python `SyntaxError`).
        case syntaxError
        /// The request conflicts with the server's state (Python `RuntimeError`, e.g. changing `dbfile` with jails).
        case runtimeError
        /// No such action in the jail (Python `KeyError`; the client prints the message quoted).
        case keyError
        /// No such property of an action (Python `AttributeError`).
        case attributeError
        /// An unknown character encoding (Python `LookupError`).
        case lookupError
        /// A regex that does not compile or names no failure id (fail2ban's `RegexException`).
        case regexError
        /// A log file that does not exist (Python `FileNotFoundError`; the client prints `[Errno 2] …`).
        case fileNotFound
        /// The command was understood but failed (Python `Exception`).
        case failed
        /// The request could not be decoded (bad pickle or JSON); the connection stays usable when framing allows.
        case malformedRequest
        /// The request exceeded the size limit; the connection is closed.
        case requestTooLarge
        /// The server is shutting down and did not run the command.
        case shuttingDown
        /// The client could not reach the server or the connection broke (client side only).
        case connection
    }

    /// The kind of failure.
    public var code: Code
    /// What went wrong, for a person. For ``Code/unknownJail`` and ``Code/duplicateJail``, the jail name.
    public var message: String
    /// The file concerned, for ``Code/fileNotFound`` (Python's `OSError.filename`).
    public var filename: String?

    /// Creates an error.
    public init(_ code: Code, _ message: String, filename: String? = nil) {
        self.code = code
        self.message = message
        self.filename = filename
    }

    /// The jail does not exist.
    public static func unknownJail(_ name: String) -> ControlError { ControlError(.unknownJail, name) }

    /// The line `fail2ban-client` prints for this error (its error beautifier), which `portcullis` prints too.
    public var description: String {
        switch code {
        case .unknownJail: return "Sorry but the jail '\(message)' does not exist"
        case .duplicateJail: return "The jail '\(message)' already exists"
        case .incompleteCommand: return "Sorry but the command is invalid"
        case .keyError: return PythonRepr.quote(message)
        case .fileNotFound: return "[Errno 2] \(message)" + (filename.map { ": " + PythonRepr.quote($0) } ?? "")
        default: return message
        }
    }
}

/// The outcome of one request.
public enum ControlResponse: Sendable, Hashable {
    /// The command succeeded with this value.
    case success(ControlValue)
    /// The command failed.
    case failure(ControlError)
}

/// The daemon side of the control socket: runs one command and answers. Implemented by the daemon; the server
/// calls it concurrently for concurrent clients.
///
/// Commands arrive as fail2ban-client sends them, as strings: `["status", "sshd"]`, `["set", "sshd", "banip",
/// "192.0.2.1"]`, `["get", "sshd", "maxretry"]`, `["unban", "--all"]`, `["banned", "192.0.2.1"]`. `reload` arrives
/// as `["reload", JAIL or "--all", OPTION…]` (e.g. `["reload", "sshd", "--restart", "--unban"]`); the configuration
/// stream fail2ban-client appends is dropped because Portcullis reads its own configuration.
public protocol ControlHandler: Sendable {
    /// Runs a command and returns its reply.
    func handle(_ command: [String]) async -> ControlResponse

    /// The reply to a command that needs no daemon state (`ping`), given synchronously on the connection's own
    /// thread, so that it never waits for a busy task pool; nil sends the command to ``handle(_:)``.
    /// fail2ban-client's `start` decides whether a server is running from a `ping` answered within 0.1 s.
    func immediateReply(to command: [String]) -> ControlResponse?
}

extension ControlHandler {
    /// No immediate replies: every command goes to ``handle(_:)``.
    public func immediateReply(to command: [String]) -> ControlResponse? { nil }
}
