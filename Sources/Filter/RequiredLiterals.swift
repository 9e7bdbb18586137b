#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// Byte strings at least one of which occurs in every subject a regex can match, read from the regex text (PCRE2
/// syntax, as the filter compiles it, without caseless or extended options), so that a line containing none of them
/// skips the regex without a PCRE2 call (`LiteralSet`, the prefilter of `LineProcessor`).
///
/// Sound by construction, in `FirstBytes`'s style: every construct it does not model exactly makes the answer "no
/// condition" (nil), never a wrong literal. Modelled: plain printable ASCII characters and escaped punctuation as
/// literals; groups (capturing, named, non-capturing, atomic, branch reset) and alternations; quantifiers (a
/// minimum of 0 drops what the atom requires, 1 or more keeps it, only `{1}` keeps it exact); classes, `.`, `\d`,
/// `\s`, control and non-ASCII characters, `\t`, `\n`… as "one unknown character" (they end a literal); anchors,
/// `\b`, `\K` and lookarounds as zero width (their contents are not required). Anything else — inline options
/// (`(?i)`, `(?x)`…), back-references, recursion, conditionals, verbs, callouts, `\Q…\E`, `\x{…}`, `\p`, a brace
/// that is not a quantifier — gives nil. A literal never contains a newline, so it cannot straddle the lines joined
/// into a multi-line subject, nor the newline appended after a prefregex's `<F-CONTENT>`.
///
/// ```swift
/// RequiredLiterals.of(#"^(?:\S+ )?sshd\[\d+\]: Failed (?:password|publickey) for"#)
/// // [": Failed password for", ": Failed publickey for"]
/// RequiredLiterals.of("(?i)sshd")   // nil
/// ```
enum RequiredLiterals {
    /// Most strings kept in one set (more: the set is dropped, as unknown).
    static let maximumSetSize = 32
    /// Shortest literal worth checking: a set with a shorter string is no condition.
    static let minimumLength = 3

    /// The strings (each at least `minimumLength` bytes, printable ASCII), or nil when the regex gives no usable
    /// condition.
    static func of(_ regex: String) -> [[UInt8]]? {
        let bytes = Array(regex.utf8)
        // Inline options anywhere (`(?i)`, `(?x:`, `(?-s)`, `(?^)`) could change how any literal reads: none.
        for k in bytes.indices.dropLast(2) where bytes[k] == UInt8(ascii: "(") && bytes[k + 1] == UInt8(ascii: "?") {
            let f = bytes[k + 2]
            let letter = (f >= 0x41 && f <= 0x5A) || (f >= 0x61 && f <= 0x7A)
            if (letter && f != UInt8(ascii: "P")) || f == UInt8(ascii: "^") || f == UInt8(ascii: "-") { return nil }
        }
        var parser = Parser(bytes: bytes)
        guard let info = parser.alternation(), parser.i == bytes.count, let required = info.required,
            !required.isEmpty, required.allSatisfy({ $0.count >= minimumLength })
        else { return nil }
        return required
    }

    /// What a piece of regex tells: the strings it matches when it can match only those (`exact`), and strings at
    /// least one of which is inside any text it matches (`required`; nil: none known).
    struct Info {
        var exact: [[UInt8]]?
        var required: [[UInt8]]?

        static let empty = Info(exact: [[]], required: nil)
        static let unknown = Info(exact: nil, required: nil)
        static func literal(_ b: UInt8) -> Info { Info(exact: [[b]], required: [[b]]) }
    }

    /// Deduplicated, or nil when larger than `maximumSetSize`.
    static func bounded(_ set: [[UInt8]]) -> [[UInt8]]? {
        var seen = Set<[UInt8]>()
        var out: [[UInt8]] = []
        for s in set where seen.insert(s).inserted { out.append(s) }
        return out.count <= maximumSetSize ? out : nil
    }

    /// The more selective of two requirements: the longer shortest string, then the fewer strings.
    static func better(_ a: [[UInt8]]?, _ b: [[UInt8]]?) -> [[UInt8]]? {
        guard let a, let aMin = a.map(\.count).min(), aMin > 0 else { return usable(b) }
        guard let b, let bMin = b.map(\.count).min(), bMin > 0 else { return a }
        if aMin != bMin { return aMin > bMin ? a : b }
        return a.count <= b.count ? a : b
    }

    /// `set` when it requires something (no empty string in it), else nil.
    static func usable(_ set: [[UInt8]]?) -> [[UInt8]]? {
        guard let set, !set.isEmpty, set.allSatisfy({ !$0.isEmpty }) else { return nil }
        return set
    }

    struct Parser {
        let bytes: [UInt8]
        var i = 0
        /// Branches of the alternation parsed last (nested ones finish before the one around them).
        var lastBranches = 0

        func peek(_ k: Int = 0) -> UInt8? { i + k < bytes.count ? bytes[i + k] : nil }

        /// Branches separated by `|`, up to `)` or the end.
        mutating func alternation() -> Info? {
            var exact: [[UInt8]]? = []
            var required: [[UInt8]]? = []
            var count = 0
            defer { lastBranches = count }
            while true {
                count += 1
                guard let s = sequence() else { return nil }
                if let e = exact, let se = s.exact { exact = bounded(e + se) } else { exact = nil }
                if let r = required, let sr = usable(s.required) { required = bounded(r + sr) } else { required = nil }
                guard peek() == UInt8(ascii: "|") else { break }
                i += 1
            }
            return Info(exact: exact, required: usable(required))
        }

        /// Atoms with their quantifiers, up to `|`, `)` or the end: literals next to each other join.
        mutating func sequence() -> Info? {
            var run: [[UInt8]] = [[]]  // the exact strings of the atoms since the last unknown one, joined
            var allExact = true
            var best: [[UInt8]]? = nil
            while let c = peek(), c != UInt8(ascii: "|"), c != UInt8(ascii: ")") {
                guard let a = atom(), let q = quantifier() else { return nil }
                var info = a
                switch q {
                case .one: break
                case .zeroOrMore: info = .unknown
                case .oneOrMore: info = Info(exact: nil, required: usable(a.required ?? a.exact))
                }
                if let e = info.exact {
                    var joined: [[UInt8]] = []
                    for r in run { for s in e { joined.append(r + s) } }
                    if let j = bounded(joined) {
                        run = j
                    } else {
                        best = better(best, run)
                        run = e
                        allExact = false
                    }
                } else {
                    best = better(best, run)
                    best = better(best, info.required)
                    run = [[]]
                    allExact = false
                }
            }
            best = better(best, run)
            return Info(exact: allExact ? run : nil, required: best)
        }

        enum Quantity { case one, zeroOrMore, oneOrMore }

        /// A quantifier after an atom (none: `.one`); nil when it is not modelled.
        mutating func quantifier() -> Quantity? {
            guard let c = peek() else { return .one }
            var q: Quantity
            switch c {
            case UInt8(ascii: "?"), UInt8(ascii: "*"):
                q = .zeroOrMore
                i += 1
            case UInt8(ascii: "+"):
                q = .oneOrMore
                i += 1
            case UInt8(ascii: "{"):
                // {n}, {n,}, {n,m} with digits only; any other brace is left to `atom`, which gives up on it.
                var k = i + 1
                var n = 0
                var digits = 0
                while k < bytes.count, bytes[k] >= 0x30, bytes[k] <= 0x39 {
                    n = min(n * 10 + Int(bytes[k] - 0x30), 100_000)
                    k += 1
                    digits += 1
                }
                guard digits > 0, k < bytes.count else { return .one }
                var exactlyOne = n == 1
                if bytes[k] == UInt8(ascii: ",") {
                    k += 1
                    var m = 0
                    var mDigits = 0
                    while k < bytes.count, bytes[k] >= 0x30, bytes[k] <= 0x39 {
                        m = min(m * 10 + Int(bytes[k] - 0x30), 100_000)
                        k += 1
                        mDigits += 1
                    }
                    exactlyOne = exactlyOne && mDigits > 0 && m == 1
                }
                guard k < bytes.count, bytes[k] == UInt8(ascii: "}") else { return .one }
                i = k + 1
                q = n == 0 ? .zeroOrMore : (exactlyOne ? .one : .oneOrMore)
            default:
                return .one
            }
            // Lazy or possessive suffix: the same strings.
            if let s = peek(), s == UInt8(ascii: "?") || s == UInt8(ascii: "+") { i += 1 }
            // Another quantifier or a brace right after: not modelled.
            if let s = peek(),
                s == UInt8(ascii: "?") || s == UInt8(ascii: "*") || s == UInt8(ascii: "+")
                    || s == UInt8(ascii: "{")
            {
                return nil
            }
            return q
        }

        mutating func atom() -> Info? {
            guard let c = peek() else { return nil }
            switch c {
            case UInt8(ascii: "^"), UInt8(ascii: "$"):
                i += 1
                return .empty
            case UInt8(ascii: "."):
                i += 1
                return .unknown
            case UInt8(ascii: "["):
                var skipper = FirstBytes.Parser(bytes: bytes, i: i)
                guard skipper.skipClass() else { return nil }
                i = skipper.i
                return .unknown
            case UInt8(ascii: "("):
                return group()
            case UInt8(ascii: "\\"):
                return escape()
            case UInt8(ascii: "*"), UInt8(ascii: "+"), UInt8(ascii: "?"), UInt8(ascii: "{"):
                return nil
            case 0x20...0x7E:
                i += 1
                return .literal(c)
            default:
                // A control byte, or a non-ASCII character (one atom: a quantifier after it applies to all its bytes).
                i += 1
                if c >= 0xC0 { while let k = peek(), k & 0xC0 == 0x80 { i += 1 } }
                return .unknown
            }
        }

        /// `(…)` in its forms; nil for those not modelled.
        mutating func group() -> Info? {
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
                case UInt8(ascii: "("):
                    return conditional()
                default:
                    return nil  // flags, recursion, callouts
                }
            }
            guard let inner = alternation(), peek() == UInt8(ascii: ")") else { return nil }
            i += 1
            // A lookaround's text is checked, not consumed: it requires nothing of the match itself here.
            return zeroWidth ? .empty : inner
        }

        /// `(?(NAME)yes|no)` after `(?`, where NAME is a group's name or number (`<name>` and `'name'` too): the
        /// group matches what its yes or its no branch matches (no `no` branch: the empty string). Other conditions
        /// (assertions, `DEFINE`, recursion tests, `VERSION`) are not modelled.
        mutating func conditional() -> Info? {
            i += 1  // (
            var open: UInt8? = nil
            if let c = peek(), c == UInt8(ascii: "<") || c == UInt8(ascii: "'") {
                open = c
                i += 1
            }
            let start = i
            while let c = peek(), FirstBytes.Parser.isNameByte(c) { i += 1 }
            let name = bytes[start..<i]
            guard !name.isEmpty, name.first != UInt8(ascii: "R"), !name.elementsEqual("DEFINE".utf8) else { return nil }
            if let open {
                guard peek() == (open == UInt8(ascii: "<") ? UInt8(ascii: ">") : open) else { return nil }
                i += 1
            }
            guard peek() == UInt8(ascii: ")") else { return nil }
            i += 1
            guard var inner = alternation(), peek() == UInt8(ascii: ")") else { return nil }
            i += 1
            guard lastBranches <= 2 else { return nil }
            if lastBranches == 1 {
                // Only a yes branch: when the condition fails the group matches the empty string.
                inner.exact = inner.exact.flatMap { bounded($0 + [[]]) }
                inner.required = nil
            }
            return inner
        }

        /// Skips a group name `[A-Za-z_][A-Za-z0-9_]*` and its closing `end`; false when it is not one.
        mutating func skipName(from start: Int, end: UInt8) -> Bool {
            var copy = FirstBytes.Parser(bytes: bytes, i: i)
            guard copy.skipName(from: start, end: end) else { return false }
            i = copy.i
            return true
        }

        /// `\X` outside a class.
        mutating func escape() -> Info? {
            i += 1  // backslash
            guard let c = peek() else { return nil }
            i += 1
            switch c {
            case UInt8(ascii: "d"), UInt8(ascii: "D"), UInt8(ascii: "w"), UInt8(ascii: "W"), UInt8(ascii: "s"),
                UInt8(ascii: "S"), UInt8(ascii: "h"), UInt8(ascii: "H"), UInt8(ascii: "v"), UInt8(ascii: "V"),
                UInt8(ascii: "R"), UInt8(ascii: "X"), UInt8(ascii: "C"), UInt8(ascii: "t"), UInt8(ascii: "n"),
                UInt8(ascii: "r"), UInt8(ascii: "f"), UInt8(ascii: "e"), UInt8(ascii: "a"):
                return .unknown
            case UInt8(ascii: "N"):
                // `\N{U+…}` names a character: not modelled.
                return peek() == UInt8(ascii: "{") ? nil : .unknown
            case UInt8(ascii: "b"), UInt8(ascii: "B"), UInt8(ascii: "A"), UInt8(ascii: "z"), UInt8(ascii: "Z"),
                UInt8(ascii: "G"), UInt8(ascii: "K"):
                return .empty
            case UInt8(ascii: "x"):
                // \xhh only; \x{…} is not modelled.
                var value = 0
                var n = 0
                while n < 2, let h = peek(), let v = FirstBytes.Parser.hexValue(h) {
                    value = value * 16 + v
                    i += 1
                    n += 1
                }
                guard n > 0 else { return nil }
                return value >= 0x20 && value <= 0x7E ? .literal(UInt8(value)) : .unknown
            default:
                // Escaped punctuation stands for itself; letters and digits not listed are not modelled.
                guard c < 0x80, !FirstBytes.Parser.isNameByte(c) else { return nil }
                return c >= 0x20 && c <= 0x7E ? .literal(c) : .unknown
            }
        }
    }
}

/// A set of byte strings looked for in a subject, without PCRE2: for up to four strings, `memchr` for each string's
/// rarest-looking byte and a comparison around each hit; for more, one pass over the subject's byte pairs (a
/// 4096-bit table of the strings' first two bytes) comparing the strings that start with each pair found. The
/// strings and tables are in flat buffers, so a look costs no reference counting.
final class LiteralSet: @unchecked Sendable {
    // SAFETY: immutable after init (the buffers are written only there and freed in deinit).
    let strings: [[UInt8]]
    private let count: Int
    /// The strings one after another; string k is `bytes[starts[k] ..< starts[k + 1]]`.
    private let bytes: UnsafeMutablePointer<UInt8>
    private let starts: UnsafeMutablePointer<Int>
    /// Per string: the offset of the byte `memchr` looks for.
    private let anchors: UnsafeMutablePointer<Int>
    /// Bit h set: some string's first two bytes hash to h.
    private let pairs: UnsafeMutablePointer<UInt64>
    /// The strings per pair hash: `members[firstMember[h] ..< firstMember[h + 1]]`.
    private let firstMember: UnsafeMutablePointer<Int32>
    private let members: UnsafeMutablePointer<Int32>

    init(_ strings: [[UInt8]]) {
        precondition(strings.allSatisfy { $0.count >= 2 })
        self.strings = strings
        count = strings.count
        let total = strings.reduce(0) { $0 + $1.count }
        bytes = .allocate(capacity: max(1, total))
        starts = .allocate(capacity: count + 1)
        anchors = .allocate(capacity: max(1, count))
        var at = 0
        for (k, s) in strings.enumerated() {
            starts[k] = at
            for b in s {
                bytes[at] = b
                at += 1
            }
            anchors[k] = s.indices.min { Self.commonness(s[$0]) < Self.commonness(s[$1]) } ?? 0
        }
        starts[count] = at
        pairs = .allocate(capacity: 64)
        pairs.initialize(repeating: 0, count: 64)
        var buckets = [[Int32]](repeating: [], count: 4096)
        for (k, s) in strings.enumerated() {
            let h = Self.hash(s[0], s[1])
            pairs[h >> 6] |= 1 << UInt64(h & 63)
            buckets[h].append(Int32(k))
        }
        firstMember = .allocate(capacity: 4097)
        members = .allocate(capacity: max(1, count))
        var m = 0
        for h in 0..<4096 {
            firstMember[h] = Int32(m)
            for k in buckets[h] {
                members[m] = k
                m += 1
            }
        }
        firstMember[4096] = Int32(m)
    }

    deinit {
        bytes.deallocate()
        starts.deallocate()
        anchors.deallocate()
        pairs.deallocate()
        firstMember.deallocate()
        members.deallocate()
    }

    /// How often a byte is guessed to appear in log lines (higher: more often).
    static func commonness(_ b: UInt8) -> Int {
        switch b {
        case 0x20: return 10
        case UInt8(ascii: "e"), UInt8(ascii: "a"), UInt8(ascii: "o"), UInt8(ascii: "i"), UInt8(ascii: "n"),
            UInt8(ascii: "s"), UInt8(ascii: "r"), UInt8(ascii: "t"):
            return 8
        case UInt8(ascii: "0")...UInt8(ascii: "9"), UInt8(ascii: "."), UInt8(ascii: ":"): return 7
        case UInt8(ascii: "a")...UInt8(ascii: "z"): return 5
        case UInt8(ascii: "A")...UInt8(ascii: "Z"): return 3
        default: return 4
        }
    }

    @inline(__always)
    static func hash(_ a: UInt8, _ b: UInt8) -> Int { (Int(a) << 4 ^ Int(b)) & 0xFFF }

    /// True when one of the strings occurs in `subject`.
    func occurs(in subject: UnsafeBufferPointer<UInt8>) -> Bool {
        guard let base = subject.baseAddress else { return false }
        let n = subject.count
        if count <= 4 {
            for k in 0..<count {
                let needle = bytes + starts[k]
                let length = starts[k + 1] - starts[k]
                let anchor = anchors[k]
                let key = Int32(needle[anchor])
                // The anchor byte can be at positions anchor ... n - (length - anchor).
                var from = anchor
                let last = n - (length - anchor)
                while from <= last {
                    guard let hit = memchr(base + from, key, last - from + 1) else { break }
                    let at = base.distance(to: hit.assumingMemoryBound(to: UInt8.self))
                    if memcmp(base + (at - anchor), needle, length) == 0 { return true }
                    from = at + 1
                }
            }
            return false
        }
        var k = 0
        while k + 1 < n {
            let h = Self.hash(base[k], base[k + 1])
            if pairs[h >> 6] & (1 << UInt64(h & 63)) != 0 {
                for m in Int(firstMember[h])..<Int(firstMember[h + 1]) {
                    let c = Int(members[m])
                    let length = starts[c + 1] - starts[c]
                    if k + length <= n, memcmp(base + k, bytes + starts[c], length) == 0 { return true }
                }
            }
            k += 1
        }
        return false
    }
}
