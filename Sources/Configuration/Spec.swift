/// A filter or action reference with arguments, as written in a jail: `name[key=value, key="a, b"]`.
///
/// Several bracket groups may follow each other (`a[x=1][x=2, y=3]`); later keys override earlier ones.
/// Values are either quoted with `"` or `'` (and may then hold commas and `]`) or unquoted up to the next `,`
/// or `]` (surrounding white space removed).
///
/// ```swift
/// let spec = try Spec.parse(#"postfix[mode=auth, x="a, b"]"#)
/// spec.name        // "postfix"
/// spec.arguments   // ["mode": "auth", "x": "a, b"]
/// ```
public struct Spec: Sendable, Hashable {
    /// The filter or action name (or a path to a `.conf` file).
    public var name: String
    /// The arguments, later groups overriding earlier ones.
    public var arguments: [String: String]
    /// The argument names in the order first written.
    public var argumentOrder: [String]

    /// A spec with a name and arguments.
    public init(name: String, arguments: [String: String] = [:], argumentOrder: [String]? = nil) {
        self.name = name
        self.arguments = arguments
        self.argumentOrder = argumentOrder ?? arguments.keys.sorted()
    }

    /// Parses `name[k=v, …][…]`. Throws `.badValue` naming the position of the first error.
    public static func parse(_ text: String, location: SourceLocation? = nil) throws(ConfigError) -> Spec {
        let chars = Array(text.trimmedWhitespace())
        guard let open = chars.firstIndex(of: "[") else {
            return Spec(name: String(chars), arguments: [:], argumentOrder: [])
        }
        let name = String(chars[..<open]).trimmedWhitespace()
        guard !name.isEmpty else { throw bad(text, "no name before '['", location) }
        var arguments: [String: String] = [:]
        var order: [String] = []
        var i = open
        func skipSpace() { while i < chars.count, chars[i].isWhitespace { i += 1 } }
        while i < chars.count {
            guard chars[i] == "[" else { throw bad(text, "unexpected text after ']' at position \(i)", location) }
            i += 1
            while true {
                skipSpace()
                guard i < chars.count else { throw bad(text, "missing ']'", location) }
                if chars[i] == "]" {
                    i += 1
                    break
                }
                let start = i
                while i < chars.count, chars[i].isLetter || chars[i].isNumber || "_-.".contains(chars[i]) { i += 1 }
                guard i > start, i < chars.count, chars[i] == "=" else {
                    throw bad(text, "expected 'name=value' at position \(start)", location)
                }
                let key = String(chars[start..<i])
                i += 1
                var value: String
                if i < chars.count, chars[i] == "\"" || chars[i] == "'" {
                    let quote = chars[i]
                    i += 1
                    let vstart = i
                    while i < chars.count, chars[i] != quote { i += 1 }
                    guard i < chars.count else { throw bad(text, "unterminated quote in '\(key)'", location) }
                    value = String(chars[vstart..<i])
                    i += 1
                    guard i < chars.count, chars[i] == "," || chars[i] == "]" else {
                        throw bad(text, "expected ',' or ']' right after the quoted value of '\(key)'", location)
                    }
                } else {
                    let vstart = i
                    while i < chars.count, chars[i] != "," && chars[i] != "]" { i += 1 }
                    value = String(chars[vstart..<i]).trimmedWhitespace()
                }
                if arguments[key] == nil { order.append(key) }
                arguments[key] = value
                guard i < chars.count else { throw bad(text, "missing ']'", location) }
                if chars[i] == "," { i += 1 }
            }
            skipSpace()
        }
        return Spec(name: name, arguments: arguments, argumentOrder: order)
    }

    private static func bad(_ text: String, _ what: String, _ location: SourceLocation?) -> ConfigError {
        ConfigError(
            .badValue, "cannot parse '\(text)': \(what)", at: location,
            hint: #"write name[key=value, key="value, with commas"]"#)
    }

    /// Splits a list of specs written one after another (white space or new lines between them, none inside
    /// brackets or quotes), e.g. a jail's `action` value.
    public static func splitList(_ text: String) -> [String] {
        var items: [String] = []
        var current = ""
        var depth = 0
        var quote: Character? = nil
        for c in text {
            if let q = quote {
                current.append(c)
                if c == q { quote = nil }
                continue
            }
            if depth > 0, c == "\"" || c == "'" {
                quote = c
                current.append(c)
                continue
            }
            if c == "[" { depth += 1 }
            if c == "]", depth > 0 { depth -= 1 }
            if depth == 0, c.isWhitespace {
                if !current.isEmpty { items.append(current) }
                current = ""
                continue
            }
            current.append(c)
        }
        if !current.isEmpty { items.append(current) }
        return items
    }
}
