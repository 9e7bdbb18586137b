/// A small arithmetic expression language for `bantime.formula`, the subset of Python fail2ban users write:
/// numbers, the variables `ban.Time`, `ban.Count`, `banFactor` (also `banTime`, `banCount`), `+ - * / // % ** << >>`,
/// comparisons, `X if COND else Y`, parentheses, and the functions `min`, `max`, `int`, `float`, `abs`, `round`,
/// `math.exp`, `math.log`, `math.pow`, `math.sqrt`.
///
/// ```swift
/// let f = try BanTimeFormula("ban.Time * (1<<(ban.Count if ban.Count<20 else 20)) * banFactor")
/// f.evaluate(time: 600, count: 3, factor: 1)   // 4800
/// ```
public struct BanTimeFormula: Sendable, Hashable, CustomStringConvertible {
    /// The formula fail2ban uses when none is configured.
    public static let defaultSource = "ban.Time * (1<<(ban.Count if ban.Count<20 else 20)) * banFactor"

    /// Why a formula was rejected.
    public struct ParseError: Error, Sendable, CustomStringConvertible {
        /// Character offset in the formula.
        public var offset: Int
        /// What is wrong.
        public var message: String
        public var description: String { "bantime.formula: \(message) at character \(offset + 1)" }
    }

    indirect enum Node: Sendable, Hashable {
        case number(Double)
        case variable(Variable)
        case unary(String, Node)
        case binary(String, Node, Node)
        case conditional(Node, Node, Node)
        case call(String, [Node])
    }

    enum Variable: Sendable, Hashable { case time, count, factor }

    /// The text it was parsed from.
    public let source: String
    let root: Node

    public var description: String { source }

    /// Parses `source`; throws `ParseError` naming the offending position.
    public init(_ source: String) throws(ParseError) {
        var parser = Parser(Array(source.utf8))
        let node = try parser.parseExpression()
        parser.skipSpaces()
        guard parser.index == parser.bytes.count else {
            throw ParseError(offset: parser.index, message: "unexpected text")
        }
        self.source = source
        self.root = node
    }

    /// Evaluates with `ban.Time` = `time`, `ban.Count` = `count`, `banFactor` = `factor`.
    public func evaluate(time: Double, count: Int, factor: Double) -> Double {
        Self.eval(root, time: time, count: Double(count), factor: factor)
    }

    static func eval(_ node: Node, time: Double, count: Double, factor: Double) -> Double {
        func e(_ n: Node) -> Double { eval(n, time: time, count: count, factor: factor) }
        switch node {
        case .number(let v): return v
        case .variable(.time): return time
        case .variable(.count): return count
        case .variable(.factor): return factor
        case .unary("-", let a): return -e(a)
        case .unary("not", let a): return e(a) == 0 ? 1 : 0
        case .unary(_, let a): return e(a)
        case .conditional(let c, let a, let b): return e(c) != 0 ? e(a) : e(b)
        case .binary(let op, let l, let r):
            let a = e(l)
            let b = e(r)
            switch op {
            case "+": return a + b
            case "-": return a - b
            case "*": return a * b
            case "/": return b == 0 ? .infinity : a / b
            case "//": return b == 0 ? .infinity : (a / b).rounded(.down)
            case "%": return b == 0 ? .nan : a - b * (a / b).rounded(.down)
            case "**": return pow(a, b)
            case "<<": return a * pow(2, min(b, 1000).rounded(.down))
            case ">>": return (a / pow(2, min(b, 1000).rounded(.down))).rounded(.down)
            case "<": return a < b ? 1 : 0
            case "<=": return a <= b ? 1 : 0
            case ">": return a > b ? 1 : 0
            case ">=": return a >= b ? 1 : 0
            case "==": return a == b ? 1 : 0
            case "!=": return a != b ? 1 : 0
            case "and": return a != 0 ? b : a
            case "or": return a != 0 ? a : b
            default: return .nan
            }
        case .call(let name, let args):
            let v = args.map(e)
            switch name {
            case "min": return v.min() ?? .nan
            case "max": return v.max() ?? .nan
            case "int": return (v.first ?? .nan).rounded(.towardZero)
            case "float": return v.first ?? .nan
            case "abs": return abs(v.first ?? .nan)
            case "round": return (v.first ?? .nan).rounded(.toNearestOrEven)
            case "math.exp": return exp(v.first ?? .nan)
            case "math.log": return v.count > 1 ? log(v[0]) / log(v[1]) : log(v.first ?? .nan)
            case "math.pow": return v.count > 1 ? pow(v[0], v[1]) : .nan
            case "math.sqrt": return (v.first ?? .nan).squareRoot()
            default: return .nan
            }
        }
    }

    /// Most nodes and nesting levels a formula may have: parsing and evaluation recurse, so a huge formula would
    /// overflow the stack (at load, or later at a ban). Real formulas have a few dozen nodes.
    static let maximumNodes = 1000
    static let maximumNesting = 100

    struct Parser {
        let bytes: [UInt8]
        var index = 0
        var nodes = 0
        var nesting = 0
        init(_ bytes: [UInt8]) { self.bytes = bytes }

        /// Counts one node of the tree being built; refuses a formula past `maximumNodes`.
        mutating func node(_ n: Node) throws(ParseError) -> Node {
            nodes += 1
            guard nodes <= BanTimeFormula.maximumNodes else {
                throw ParseError(offset: index, message: "formula too long (over \(BanTimeFormula.maximumNodes) terms)")
            }
            return n
        }

        /// Enters one nesting level (parentheses, a call, a unary operator); refuses past `maximumNesting`.
        mutating func enter() throws(ParseError) {
            nesting += 1
            guard nesting <= BanTimeFormula.maximumNesting else {
                throw ParseError(
                    offset: index, message: "formula nested too deeply (over \(BanTimeFormula.maximumNesting) levels)")
            }
        }

        mutating func skipSpaces() {
            while index < bytes.count, bytes[index] == 0x20 || bytes[index] == 0x09 { index += 1 }
        }

        mutating func peekOperator(_ candidates: [String]) -> String? {
            skipSpaces()
            for c in candidates {
                let u = Array(c.utf8)
                guard index + u.count <= bytes.count, Array(bytes[index..<index + u.count]) == u else { continue }
                // Word operators need a boundary.
                if let first = u.first, isIdentStart(first) {
                    let next = index + u.count
                    if next < bytes.count, isIdent(bytes[next]) { continue }
                }
                return c
            }
            return nil
        }

        mutating func take(_ op: String) { index += op.utf8.count }

        // expression := or ("if" or "else" expression)?
        mutating func parseExpression() throws(ParseError) -> Node {
            let value = try parseBinary(0)
            if peekOperator(["if"]) != nil {
                take("if")
                let condition = try parseBinary(0)
                guard peekOperator(["else"]) != nil else { throw ParseError(offset: index, message: "expected 'else'") }
                take("else")
                let other = try parseExpression()
                return try node(.conditional(condition, value, other))
            }
            return value
        }

        static let levels: [[String]] = [
            ["or"], ["and"], ["<=", ">=", "==", "!=", "<", ">"], ["<<", ">>"], ["+", "-"], ["//", "*", "/", "%"],
        ]

        mutating func parseBinary(_ level: Int) throws(ParseError) -> Node {
            if level == Self.levels.count { return try parseUnary() }
            var left = try parseBinary(level + 1)
            while let op = peekOperator(Self.levels[level]) {
                // Don't read "**" as "*".
                if op == "*", index + 1 < bytes.count, bytes[index + 1] == 0x2A { break }
                if op == "<" || op == ">", index + 1 < bytes.count, bytes[index + 1] == bytes[index] { break }
                take(op)
                let right = try parseBinary(level + 1)
                left = try node(.binary(op, left, right))
            }
            return left
        }

        mutating func parseUnary() throws(ParseError) -> Node {
            if let op = peekOperator(["not", "-", "+"]) {
                take(op)
                try enter()
                defer { nesting -= 1 }
                return try node(.unary(op, try parseUnary()))
            }
            return try parsePower()
        }

        mutating func parsePower() throws(ParseError) -> Node {
            let base = try parseAtom()
            if peekOperator(["**"]) != nil {
                take("**")
                return try node(.binary("**", base, try parseUnary()))
            }
            return base
        }

        mutating func parseAtom() throws(ParseError) -> Node {
            skipSpaces()
            guard index < bytes.count else { throw ParseError(offset: index, message: "unexpected end") }
            let c = bytes[index]
            if c == 0x28 {
                index += 1
                try enter()
                defer { nesting -= 1 }
                let inner = try parseExpression()
                guard peekOperator([")"]) != nil else { throw ParseError(offset: index, message: "expected ')'") }
                take(")")
                return inner
            }
            if (c >= 0x30 && c <= 0x39) || c == 0x2E {
                let start = index
                while index < bytes.count,
                    (bytes[index] >= 0x30 && bytes[index] <= 0x39) || bytes[index] == 0x2E || bytes[index] == 0x65
                        || bytes[index] == 0x45 || bytes[index] == 0x5F
                {
                    index += 1
                }
                let text = String(String(decoding: bytes[start..<index], as: UTF8.self).filter { $0 != "_" })
                guard let v = Double(text) else { throw ParseError(offset: start, message: "bad number '\(text)'") }
                return try node(.number(v))
            }
            if isIdentStart(c) {
                let start = index
                while index < bytes.count, isIdent(bytes[index]) || bytes[index] == 0x2E { index += 1 }
                let name = String(decoding: bytes[start..<index], as: UTF8.self)
                if peekOperator(["("]) != nil {
                    take("(")
                    try enter()
                    defer { nesting -= 1 }
                    var args: [Node] = []
                    if peekOperator([")"]) == nil {
                        while true {
                            args.append(try parseExpression())
                            if peekOperator([","]) != nil {
                                take(",")
                                continue
                            }
                            break
                        }
                    }
                    guard peekOperator([")"]) != nil else { throw ParseError(offset: index, message: "expected ')'") }
                    take(")")
                    let known = [
                        "min", "max", "int", "float", "abs", "round", "math.exp", "math.log", "math.pow", "math.sqrt",
                    ]
                    guard known.contains(name) else {
                        throw ParseError(offset: start, message: "unknown function '\(name)'")
                    }
                    return try node(.call(name, args))
                }
                _ = try node(.number(0))
                switch name {
                case "ban.Time", "banTime": return .variable(.time)
                case "ban.Count", "banCount": return .variable(.count)
                case "banFactor", "ban.Factor": return .variable(.factor)
                case "True": return .number(1)
                case "False": return .number(0)
                default: throw ParseError(offset: start, message: "unknown name '\(name)'")
                }
            }
            throw ParseError(offset: index, message: "unexpected character '\(Character(Unicode.Scalar(c)))'")
        }

        func isIdentStart(_ c: UInt8) -> Bool { (c >= 0x41 && c <= 0x5A) || (c >= 0x61 && c <= 0x7A) || c == 0x5F }
        func isIdent(_ c: UInt8) -> Bool { isIdentStart(c) || (c >= 0x30 && c <= 0x39) }
    }
}

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif
