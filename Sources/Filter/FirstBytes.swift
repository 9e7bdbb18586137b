/// The bytes a match of a start-anchored regex can begin with, read from the regex text (PCRE2 syntax, as the
/// filter compiles it), so that a line whose first byte no failregex can start with skips them all.
///
/// Sound by construction: every construct it does not model exactly makes the answer "any byte" (nil), and it
/// over-approximates where it simplifies (a lookaround or `\b` is skipped, `\w`, `\s`, `\d` admit every non-ASCII
/// byte, `.` admits every byte). A regex that can match the empty string, uses back-references, recursion,
/// conditionals, inline flags or verbs has no set.
///
/// ```swift
/// FirstBytes.of("^Failed (?:password|publickey) for")   // ["F"]
/// FirstBytes.of("^(?P<x>[aA]uth|User)")                 // ["a", "A", "U"]
/// ```
enum FirstBytes {
    /// 256 flags (true: a match may start with that byte), or nil when any byte may start a match.
    static func of(_ regex: String) -> [Bool]? {
        let bytes = Array(regex.utf8)
        // Inline options anywhere (`(?i)`, `(?x:`, `(?-s)`…) could change how the start reads: no set.
        for k in bytes.indices.dropLast(2) where bytes[k] == UInt8(ascii: "(") && bytes[k + 1] == UInt8(ascii: "?") {
            let f = bytes[k + 2]
            let letter = (f >= 0x41 && f <= 0x5A) || (f >= 0x61 && f <= 0x7A)
            if (letter && f != UInt8(ascii: "P")) || f == UInt8(ascii: "^") || f == UInt8(ascii: "-") { return nil }
        }
        var parser = Parser(bytes: bytes)
        guard let r = parser.alternation(), parser.i == parser.bytes.count, !r.nullable else { return nil }
        return r.set
    }

    struct Result {
        var set: [Bool]
        var nullable: Bool
        static var empty: Result { Result(set: Array(repeating: false, count: 256), nullable: true) }
        static var any: Result { Result(set: Array(repeating: true, count: 256), nullable: false) }
        static func bytes(_ b: [UInt8]) -> Result {
            var r = Result(set: Array(repeating: false, count: 256), nullable: false)
            for c in b { r.set[Int(c)] = true }
            return r
        }
    }

    private static let digits = Array(UInt8(ascii: "0")...UInt8(ascii: "9"))
    private static let word =
        Array(UInt8(ascii: "a")...UInt8(ascii: "z")) + Array(UInt8(ascii: "A")...UInt8(ascii: "Z")) + digits + [0x5F]
    private static let space: [UInt8] = [0x09, 0x0A, 0x0B, 0x0C, 0x0D, 0x20]
    private static let nonASCII = Array(UInt8(0x80)...UInt8(0xFF))

    struct Parser {
        let bytes: [UInt8]
        var i = 0

        func peek(_ k: Int = 0) -> UInt8? { i + k < bytes.count ? bytes[i + k] : nil }

        /// Branches separated by `|`, up to `)` or the end.
        mutating func alternation() -> Result? {
            var total: Result? = nil
            while true {
                guard let s = sequence() else { return nil }
                if var t = total {
                    for k in 0..<256 where s.set[k] { t.set[k] = true }
                    t.nullable = t.nullable || s.nullable
                    total = t
                } else {
                    total = s
                }
                if peek() == UInt8(ascii: "|") {
                    i += 1
                    continue
                }
                return total
            }
        }

        /// Atoms with their quantifiers, up to `|`, `)` or the end.
        mutating func sequence() -> Result? {
            var result = Result.empty
            while let c = peek(), c != UInt8(ascii: "|"), c != UInt8(ascii: ")") {
                guard var a = atom() else { return nil }
                guard let canBeEmpty = quantifier() else { return nil }
                if canBeEmpty { a.nullable = true }
                for k in 0..<256 where a.set[k] { result.set[k] = true }
                result.nullable = a.nullable
                if !result.nullable {
                    // The rest of this sequence cannot change where a match starts: skip it unread.
                    guard skipSequence() else { return nil }
                    break
                }
            }
            return result
        }

        /// Skips to the end of the current sequence (`|` or `)` at this depth, or the end) without modelling what
        /// it skips; false when it cannot find the end for sure (`\Q…\E`, an unclosed class or group).
        mutating func skipSequence() -> Bool {
            while let c = peek() {
                switch c {
                case UInt8(ascii: "|"), UInt8(ascii: ")"):
                    return true
                case UInt8(ascii: "\\"):
                    guard let e = peek(1), e != UInt8(ascii: "Q") else { return false }
                    i += 2
                case UInt8(ascii: "["):
                    guard skipClass() else { return false }
                case UInt8(ascii: "("):
                    if peek(1) == UInt8(ascii: "?"), peek(2) == UInt8(ascii: "#") {
                        while let e = peek(), e != UInt8(ascii: ")") { i += 1 }
                        guard peek() == UInt8(ascii: ")") else { return false }
                        i += 1
                        continue
                    }
                    i += 1
                    while true {
                        guard skipSequence() else { return false }
                        guard let e = peek() else { return false }
                        i += 1
                        if e == UInt8(ascii: ")") { break }
                    }
                default:
                    i += 1
                }
            }
            return true
        }

        /// Skips `[…]` (escapes and POSIX names inside); false when it does not close.
        mutating func skipClass() -> Bool {
            i += 1
            if peek() == UInt8(ascii: "^") { i += 1 }
            if peek() == UInt8(ascii: "]") { i += 1 }
            while let c = peek() {
                switch c {
                case UInt8(ascii: "]"):
                    i += 1
                    return true
                case UInt8(ascii: "\\"):
                    guard let e = peek(1), e != UInt8(ascii: "Q") else { return false }
                    i += 2
                case UInt8(ascii: "["):
                    if peek(1) == UInt8(ascii: ":") {
                        var k = i + 2
                        while k + 1 < bytes.count, !(bytes[k] == UInt8(ascii: ":") && bytes[k + 1] == UInt8(ascii: "]"))
                        {
                            k += 1
                        }
                        guard k + 1 < bytes.count else { return false }
                        i = k + 2
                    } else {
                        i += 1
                    }
                default:
                    i += 1
                }
            }
            return false
        }

        /// A quantifier after an atom: nil when malformed, else whether it allows zero repetitions.
        mutating func quantifier() -> Bool? {
            guard let c = peek() else { return false }
            var zero: Bool
            switch c {
            case UInt8(ascii: "?"), UInt8(ascii: "*"):
                zero = true
                i += 1
            case UInt8(ascii: "+"):
                zero = false
                i += 1
            case UInt8(ascii: "{"):
                // {n}, {n,}, {n,m}; anything else is a literal brace (read by the next atom).
                var k = i + 1
                var n = 0
                var digitsSeen = 0
                while k < bytes.count, bytes[k] >= 0x30, bytes[k] <= 0x39 {
                    n = min(n * 10 + Int(bytes[k] - 0x30), 100_000)
                    k += 1
                    digitsSeen += 1
                }
                guard digitsSeen > 0, k < bytes.count else { return false }
                if bytes[k] == UInt8(ascii: ",") {
                    k += 1
                    while k < bytes.count, bytes[k] >= 0x30, bytes[k] <= 0x39 { k += 1 }
                }
                guard k < bytes.count, bytes[k] == UInt8(ascii: "}") else { return false }
                i = k + 1
                zero = n == 0
            default:
                return false
            }
            // Lazy or possessive suffix.
            if let s = peek(), s == UInt8(ascii: "?") || s == UInt8(ascii: "+") { i += 1 }
            // A second quantifier (`a**`) is an error for PCRE2: give up.
            if let s = peek(), s == UInt8(ascii: "?") || s == UInt8(ascii: "*") || s == UInt8(ascii: "+") {
                return nil
            }
            _ = zero
            return zero
        }

        mutating func atom() -> Result? {
            guard let c = peek() else { return nil }
            switch c {
            case UInt8(ascii: "^"), UInt8(ascii: "$"):
                i += 1
                return .empty
            case UInt8(ascii: "."):
                i += 1
                return .any
            case UInt8(ascii: "["):
                return charClass()
            case UInt8(ascii: "("):
                return group()
            case UInt8(ascii: "\\"):
                return escape(inClass: false).map { $0.zeroWidth ? .empty : $0.result }
            case UInt8(ascii: "*"), UInt8(ascii: "+"), UInt8(ascii: "?"):
                return nil
            default:
                // A non-ASCII character is one atom (a quantifier after it applies to all its bytes).
                i += 1
                if c >= 0xC0 { while let k = peek(), k & 0xC0 == 0x80 { i += 1 } }
                return .bytes([c])
            }
        }

        /// `(…)` in its forms; nil for those not modelled.
        mutating func group() -> Result? {
            i += 1  // (
            var zeroWidth = false
            if peek() == UInt8(ascii: "*") { return nil }  // verbs
            if peek() == UInt8(ascii: "?") {
                i += 1
                guard let k = peek() else { return nil }
                switch k {
                case UInt8(ascii: ":"), UInt8(ascii: "|"), UInt8(ascii: ">"):
                    i += 1
                case UInt8(ascii: "="), UInt8(ascii: "!"):
                    i += 1
                    zeroWidth = true
                case UInt8(ascii: "#"):
                    while let e = peek(), e != UInt8(ascii: ")") { i += 1 }
                    guard peek() == UInt8(ascii: ")") else { return nil }
                    i += 1
                    return .empty
                case UInt8(ascii: "<"):
                    if peek(1) == UInt8(ascii: "=") || peek(1) == UInt8(ascii: "!") {
                        i += 2
                        zeroWidth = true
                    } else {
                        guard skipName(from: i + 1, end: UInt8(ascii: ">")) else { return nil }
                    }
                case UInt8(ascii: "P"):
                    guard peek(1) == UInt8(ascii: "<"), skipName(from: i + 2, end: UInt8(ascii: ">")) else {
                        return nil  // (?P=name) back-reference, (?P>name) recursion
                    }
                case UInt8(ascii: "'"):
                    guard skipName(from: i + 1, end: UInt8(ascii: "'")) else { return nil }
                default:
                    return nil  // flags, conditionals, recursion, callouts
                }
            }
            guard var inner = alternation(), peek() == UInt8(ascii: ")") else { return nil }
            i += 1
            if zeroWidth { inner = .empty }
            return inner
        }

        /// Skips a group name `[A-Za-z_][A-Za-z0-9_]*` and its closing `end`; false when it is not one.
        mutating func skipName(from start: Int, end: UInt8) -> Bool {
            var k = start
            guard k < bytes.count, Self.isNameByte(bytes[k]), !(bytes[k] >= 0x30 && bytes[k] <= 0x39) else {
                return false
            }
            while k < bytes.count, Self.isNameByte(bytes[k]) { k += 1 }
            guard k < bytes.count, bytes[k] == end else { return false }
            i = k + 1
            return true
        }

        static func isNameByte(_ b: UInt8) -> Bool {
            (b >= 0x30 && b <= 0x39) || (b >= 0x41 && b <= 0x5A) || (b >= 0x61 && b <= 0x7A) || b == 0x5F
        }

        /// `\X` outside or inside a class: the bytes it can start with, or zero width.
        mutating func escape(inClass: Bool) -> (result: Result, zeroWidth: Bool)? {
            i += 1  // backslash
            guard let c = peek() else { return nil }
            i += 1
            switch c {
            case UInt8(ascii: "d"): return (.bytes(FirstBytes.digits + FirstBytes.nonASCII), false)
            case UInt8(ascii: "w"): return (.bytes(FirstBytes.word + FirstBytes.nonASCII), false)
            case UInt8(ascii: "s"): return (.bytes(FirstBytes.space + FirstBytes.nonASCII), false)
            case UInt8(ascii: "D"), UInt8(ascii: "W"), UInt8(ascii: "S"), UInt8(ascii: "h"), UInt8(ascii: "H"),
                UInt8(ascii: "v"), UInt8(ascii: "V"), UInt8(ascii: "N"), UInt8(ascii: "R"), UInt8(ascii: "X"),
                UInt8(ascii: "C"):
                return inClass && (c == UInt8(ascii: "N") || c == UInt8(ascii: "X") || c == UInt8(ascii: "C"))
                    ? nil : (.any, false)
            case UInt8(ascii: "b"), UInt8(ascii: "B"), UInt8(ascii: "A"), UInt8(ascii: "z"), UInt8(ascii: "Z"),
                UInt8(ascii: "G"), UInt8(ascii: "K"):
                // In a class `\b` is a backspace: not modelled there.
                return inClass ? nil : (.empty, true)
            case UInt8(ascii: "t"): return (.bytes([0x09]), false)
            case UInt8(ascii: "n"): return (.bytes([0x0A]), false)
            case UInt8(ascii: "r"): return (.bytes([0x0D]), false)
            case UInt8(ascii: "f"): return (.bytes([0x0C]), false)
            case UInt8(ascii: "e"): return (.bytes([0x1B]), false)
            case UInt8(ascii: "a"): return (.bytes([0x07]), false)
            case UInt8(ascii: "x"):
                // \xhh (ASCII only); \x{…} and non-ASCII values are not modelled.
                var value = 0
                var n = 0
                while n < 2, let h = peek(), let v = Self.hexValue(h) {
                    value = value * 16 + v
                    i += 1
                    n += 1
                }
                guard n > 0, value < 0x80 else { return nil }
                return (.bytes([UInt8(value)]), false)
            default:
                // Escaped punctuation stands for itself; letters and digits not listed are not modelled.
                if c < 0x80, !Self.isNameByte(c) { return (.bytes([c]), false) }
                return nil
            }
        }

        static func hexValue(_ b: UInt8) -> Int? {
            switch b {
            case 0x30...0x39: return Int(b - 0x30)
            case 0x41...0x46: return Int(b - 0x41 + 10)
            case 0x61...0x66: return Int(b - 0x61 + 10)
            default: return nil
            }
        }

        /// `[…]`: its bytes (a negated class: every byte outside them; any non-ASCII member: not modelled).
        mutating func charClass() -> Result? {
            i += 1  // [
            var negated = false
            if peek() == UInt8(ascii: "^") {
                negated = true
                i += 1
            }
            var set = Array(repeating: false, count: 256)
            var first = true
            var previous: UInt8? = nil  // last single ASCII member (start of a range)
            while true {
                guard let c = peek() else { return nil }
                if c == UInt8(ascii: "]") && !first { break }
                first = false
                if c == UInt8(ascii: "[") && peek(1) == UInt8(ascii: ":") { return nil }  // POSIX classes
                if c >= 0x80 { return nil }
                if c == UInt8(ascii: "-"), let low = previous, let high = peek(1), high != UInt8(ascii: "]") {
                    // A range low-high (ASCII, plain bytes only).
                    guard high < 0x80, high != UInt8(ascii: "\\"), high != UInt8(ascii: "["), low <= high else {
                        return nil
                    }
                    for k in low...high { set[Int(k)] = true }
                    i += 2
                    previous = nil
                    continue
                }
                if c == UInt8(ascii: "\\") {
                    guard let e = escape(inClass: true), !e.zeroWidth else { return nil }
                    for k in 0..<256 where e.result.set[k] { set[k] = true }
                    // A single escaped ASCII character can start a range.
                    let members = (0..<128).filter { e.result.set[$0] }
                    previous = members.count == 1 && !e.result.set[128] ? UInt8(members[0]) : nil
                    continue
                }
                set[Int(c)] = true
                previous = c
                i += 1
            }
            i += 1  // ]
            if negated {
                if set[128...].contains(true) { return nil }
                for k in 0..<256 { set[k].toggle() }
            }
            return Result(set: set, nullable: false)
        }
    }
}
