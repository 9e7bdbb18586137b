/// The small expression language of sample annotations (`constraint`, `test.condition`):
/// `name == 'sshd'`, `opts.get('mode') != 'aggressive'`, combined with `and`, `or`, `not` and parentheses.
///
/// `name` is the filter under test; `opts` are the filter variant's options. Anything else is a clear error.
///
/// ```swift
/// let c = try Condition("opts.get('mode') == 'aggressive'")
/// c.evaluate(name: "sshd", opts: ["mode": "aggressive"])   // true
/// ```
struct Condition {
    /// A value inside an expression.
    enum Value: Equatable {
        case none
        case bool(Bool)
        case string(String)
        case number(Double)

        var isTruthy: Bool {
            switch self {
            case .none: return false
            case .bool(let b): return b
            case .string(let s): return !s.isEmpty
            case .number(let n): return n != 0
            }
        }
    }

    /// Why an expression could not be parsed.
    struct ParseError: Error, CustomStringConvertible {
        /// The expression text.
        var expression: String
        /// What is wrong.
        var message: String
        var description: String { "cannot evaluate '\(expression)': \(message)" }
    }

    private indirect enum Node {
        case literal(Value)
        case name
        case opt(String, Value)
        case not(Node)
        case and(Node, Node)
        case or(Node, Node)
        case equal(Node, Node)
        case notEqual(Node, Node)
    }

    private enum Token: Equatable {
        case word(String)
        case string(String)
        case number(Double)
        case symbol(String)
    }

    /// The source text.
    let source: String
    private let root: Node

    /// Parses `source`.
    init(_ source: String) throws(ParseError) {
        self.source = source
        let tokens = try Condition.tokenize(source)
        var p = Parser(tokens: tokens, source: source)
        let root = try p.parseOr()
        guard p.i == tokens.count else { throw ParseError(expression: source, message: "unexpected trailing text") }
        self.root = root
    }

    /// Evaluates with `name` = the filter name and `opts` = the variant's options (absent key = `None`).
    func evaluate(name: String, opts: [String: Value]) -> Bool {
        Condition.eval(root, name: name, opts: opts).isTruthy
    }

    private static func eval(_ n: Node, name: String, opts: [String: Value]) -> Value {
        switch n {
        case .literal(let v): return v
        case .name: return .string(name)
        case .opt(let key, let fallback): return opts[key] ?? fallback
        case .not(let a): return .bool(!eval(a, name: name, opts: opts).isTruthy)
        case .and(let a, let b):
            let x = eval(a, name: name, opts: opts)
            return x.isTruthy ? eval(b, name: name, opts: opts) : x
        case .or(let a, let b):
            let x = eval(a, name: name, opts: opts)
            return x.isTruthy ? x : eval(b, name: name, opts: opts)
        case .equal(let a, let b): return .bool(eval(a, name: name, opts: opts) == eval(b, name: name, opts: opts))
        case .notEqual(let a, let b): return .bool(eval(a, name: name, opts: opts) != eval(b, name: name, opts: opts))
        }
    }

    private static func tokenize(_ s: String) throws(ParseError) -> [Token] {
        var tokens: [Token] = []
        let chars = Array(s)
        var i = 0
        while i < chars.count {
            let c = chars[i]
            if c.isWhitespace {
                i += 1
            } else if c == "'" || c == "\"" {
                var j = i + 1
                var text = ""
                while j < chars.count, chars[j] != c {
                    if chars[j] == "\\", j + 1 < chars.count { j += 1 }
                    text.append(chars[j])
                    j += 1
                }
                guard j < chars.count else { throw ParseError(expression: s, message: "unterminated string") }
                tokens.append(.string(text))
                i = j + 1
            } else if c.isLetter || c == "_" {
                var j = i
                while j < chars.count, chars[j].isLetter || chars[j].isNumber || chars[j] == "_" { j += 1 }
                tokens.append(.word(String(chars[i..<j])))
                i = j
            } else if c.isNumber {
                var j = i
                while j < chars.count, chars[j].isNumber || chars[j] == "." { j += 1 }
                tokens.append(.number(Double(String(chars[i..<j])) ?? 0))
                i = j
            } else if i + 1 < chars.count, ["==", "!="].contains(String(chars[i...i + 1])) {
                tokens.append(.symbol(String(chars[i...i + 1])))
                i += 2
            } else if "().,[]".contains(c) {
                tokens.append(.symbol(String(c)))
                i += 1
            } else {
                throw ParseError(expression: s, message: "unexpected character '\(c)'")
            }
        }
        return tokens
    }

    private struct Parser {
        let tokens: [Token]
        let source: String
        var i = 0

        func error(_ m: String) -> ParseError { ParseError(expression: source, message: m) }

        mutating func take(_ t: Token) -> Bool {
            if i < tokens.count, tokens[i] == t {
                i += 1
                return true
            }
            return false
        }

        mutating func need(_ t: Token) throws(ParseError) {
            guard take(t) else { throw error("expected \(t)") }
        }

        mutating func parseOr() throws(ParseError) -> Node {
            var n = try parseAnd()
            while take(.word("or")) { n = .or(n, try parseAnd()) }
            return n
        }

        mutating func parseAnd() throws(ParseError) -> Node {
            var n = try parseNot()
            while take(.word("and")) { n = .and(n, try parseNot()) }
            return n
        }

        mutating func parseNot() throws(ParseError) -> Node {
            if take(.word("not")) { return .not(try parseNot()) }
            let a = try parseAtom()
            if take(.symbol("==")) { return .equal(a, try parseAtom()) }
            if take(.symbol("!=")) { return .notEqual(a, try parseAtom()) }
            return a
        }

        mutating func parseAtom() throws(ParseError) -> Node {
            guard i < tokens.count else { throw error("unexpected end") }
            let t = tokens[i]
            i += 1
            switch t {
            case .string(let s): return .literal(.string(s))
            case .number(let n): return .literal(.number(n))
            case .symbol("("):
                let n = try parseOr()
                try need(.symbol(")"))
                return n
            case .word("True"): return .literal(.bool(true))
            case .word("False"): return .literal(.bool(false))
            case .word("None"): return .literal(.none)
            case .word("name"): return .name
            case .word("opts"):
                if take(.symbol("[")) {
                    guard i < tokens.count, case .string(let key) = tokens[i] else {
                        throw error("expected opts['key']")
                    }
                    i += 1
                    try need(.symbol("]"))
                    return .opt(key, .none)
                }
                try need(.symbol("."))
                try need(.word("get"))
                try need(.symbol("("))
                guard i < tokens.count, case .string(let key) = tokens[i] else {
                    throw error("expected opts.get('key')")
                }
                i += 1
                var fallback = Value.none
                if take(.symbol(",")) {
                    guard case .literal(let v) = try parseAtom() else { throw error("default must be a literal") }
                    fallback = v
                }
                try need(.symbol(")"))
                return .opt(key, fallback)
            default:
                throw error("unsupported token \(t)")
            }
        }
    }
}
