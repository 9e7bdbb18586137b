import PortcullisTestKit
import Testing

@testable import Filter

/// `RequiredLiterals`: strings one of which every match contains; nil whenever it cannot tell for sure.
@Suite struct RequiredLiteralsTests {
    func strings(_ regex: String) -> Set<String>? {
        RequiredLiterals.of(regex).map { Set($0.map { String(decoding: $0, as: UTF8.self) }) }
    }

    @Test func literalsJoinAcrossExactPieces() {
        #expect(
            strings(#"sshd\[\d+\]: Failed (?:password|publickey) for"#)
                == ["]: Failed password for", "]: Failed publickey for"])
        #expect(strings("^abc$") == ["abc"])
        #expect(strings(#"abc\bdef"#) == ["abcdef"])
        #expect(strings("abc(?!x)def") == ["abcdef"])  // a lookaround consumes nothing
        #expect(strings("(?=xyz)abc") == ["abc"])
        #expect(strings("(?<!foo)bar") == ["bar"])
        #expect(strings(#"\.\-\/abc"#) == [".-/abc"])
        #expect(strings(#"\x41bc"#) == ["Abc"])
        #expect(strings(#"a\ bc"#) == ["a bc"])
        #expect(strings("(?P<user>\\S+) ab(?:c|d)ef") == [" abcef", " abdef"])
        #expect(strings("(?<n>abc)|(?'m'def)|(?>ghi)|(?|jkl)") == ["abc", "def", "ghi", "jkl"])
        #expect(strings("[]x]abc") == ["abc"])  // `]` first in a class is a member
        #expect(strings("[^]a]abc") == ["abc"])
        #expect(strings("[[:alpha:]]+abc") == ["abc"])
        #expect(strings("a]b}c") == ["a]b}c"])  // `]` and `}` alone are literal
        #expect(strings("(?#comment)abc") == ["abc"])
    }

    @Test func quantifiers() {
        #expect(strings("(?:sshd)?xyz") == ["xyz"])
        #expect(strings("(?:sshd)?x") == nil)  // what is left is too short
        #expect(strings("(?:sshd)*") == nil)
        #expect(strings("(?:sshd){0,2}") == nil)
        #expect(strings("(?:sshd){0}") == nil)
        #expect(strings("(?:sshd){2}") == ["sshd"])
        #expect(strings("(?:sshd){2,}") == ["sshd"])
        #expect(strings("(?:sshd)+?") == ["sshd"])
        #expect(strings("(?:sshd){1}q") == ["sshdq"])
        #expect(strings("(?:sshd){1,1}q") == ["sshdq"])
        #expect(strings("(?:sshd){1,3}q") == ["sshd"])  // repeated: no longer exact, so not joined with q
        #expect(strings("sshd?abc") == ["ssh"] || strings("sshd?abc") == ["abc"])  // the quantifier takes the d only
        #expect(strings("ab(?:cd|ef)?gh") == nil)  // "ab", "gh": too short
        #expect(strings("abc*def") == ["def"])
        #expect(strings("xabc+def") == ["xab"] || strings("xabc+def") == ["def"])
    }

    @Test func conditionalsAreTheirTwoBranches() {
        #expect(strings("(?P<c>x)?(?(c)abc|def)") == ["abc", "def"])
        #expect(strings("(x)?(?(1)abc|def)") == ["abc", "def"])
        #expect(strings("(?<c>x)?(?(<c>)abc|def)") == ["abc", "def"])
        #expect(strings("(?<c>x)?(?('c')abc|def)") == ["abc", "def"])
        #expect(strings("(x)?(?(1)abc)") == nil)  // no `no` branch: can match empty
        #expect(strings("(x)?q(?(1)abc)z") == nil)  // "q", "qabcz"/"qz": too short
        #expect(strings("(x)?qq(?(1)abc)zz") == ["qqabczz", "qqzz"])
        #expect(strings("(x)?(?(1)a(?:b|c)c|def)") == ["abc", "acc", "def"])  // inner branches are not its own
        #expect(strings("(x)?(?(1)abc|d(?:e|f|g)f)") == ["abc", "def", "dff", "dgf"])
        #expect(strings("(x)?(?(1)abc|def|ghi)") == nil)  // not valid PCRE2 anyway
    }

    @Test func alternationsNeedEveryBranch() {
        #expect(strings("abc|def") == ["abc", "def"])
        #expect(strings("abc|de") == nil)
        #expect(strings(#"abc|\d+"#) == nil)
        #expect(strings("abc|") == nil)
        #expect(strings("x(?:abc|(?:def|ghi)jk)y") == ["xabcy", "xdefjky", "xghijky"])
    }

    @Test func notModelledGivesNothing() {
        #expect(strings("(?i)sshd") == nil)
        #expect(strings("ssh(?i)d-login") == nil)
        #expect(strings("(?i:sshd)abcd") == nil)
        #expect(strings("(?x) s s h d") == nil)
        #expect(strings("(?s)abcd") == nil)
        #expect(strings("(?-i)abcd") == nil)
        #expect(strings("(?^)abcd") == nil)
        #expect(strings(#"\Qsshd\E"#) == nil)
        #expect(strings(#"(abc)\1def"#) == nil)
        #expect(strings(#"(?P<n>abc)(?P=n)def"#) == nil)
        #expect(strings(#"(abc)\g{1}def"#) == nil)
        #expect(strings(#"(?<n>abc)\k<n>def"#) == nil)
        #expect(strings("(abc)(?(?=x)def|ghi)") == nil)
        #expect(strings("(?(DEFINE)(?<n>abc))def") == ["def"] || strings("(?(DEFINE)(?<n>abc))def") == nil)
        #expect(strings("(?(DEFINE)(?<n>abcd))") == nil)
        #expect(strings("(abc)(?(R)def|ghi)") == nil)
        #expect(strings("(abc)(?(R1)def|ghi)") == nil)
        #expect(strings("(?R)abcd") == nil)
        #expect(strings("(abc)(?1)abcd") == nil)
        #expect(strings("(?&n)abcd") == nil)
        #expect(strings("(*UCP)abcd") == nil)
        #expect(strings("(?C1)abcd") == nil)
        #expect(strings("a{,3}bcd") == nil)  // PCRE2 10.43 reads {,3} as a quantifier
        #expect(strings("abc{x}def") == nil)
        #expect(strings(#"\x{41}bcd"#) == nil)
        #expect(strings(#"\p{L}abcd"#) == nil)
        #expect(strings(#"\N{U+41}abcd"#) == nil)
        #expect(strings(#"\0abcd"#) == nil)
        #expect(strings(#"\cAabcd"#) == nil)
        #expect(strings(#"\é"#) == nil)
        #expect(strings("abc(") == nil)
        #expect(strings("abc)") == nil)
        #expect(strings("[abc") == nil)
        #expect(strings("a**bcd") == nil)
        #expect(strings(".*") == nil)
        #expect(strings("") == nil)
    }

    @Test func literalsHoldNoNewlineControlOrNonASCII() {
        #expect(strings(#"ab\ncd"#) == nil)
        #expect(strings(#"abc\ndef"#) == ["abc"] || strings(#"abc\ndef"#) == ["def"])
        #expect(strings("ab\tcd") == nil)  // a raw tab is a character, but not a literal here
        #expect(strings(#"ab\tcd"#) == nil)
        #expect(strings("\u{E9}+abc") == ["abc"])
        #expect(strings("ab\u{E9}cd") == nil)
        #expect(strings(#"\x0aabc"#) == ["abc"])
    }

    @Test func literalSetFindsItsStrings() {
        func occurs(_ set: [String], _ subject: String) -> Bool {
            let s = LiteralSet(set.map { Array($0.utf8) })
            var text = subject
            return text.withUTF8 { s.occurs(in: $0) }
        }
        // Up to four strings: memmem.
        #expect(occurs(["sshd"], "Jan 1 host sshd[1]: x"))
        #expect(!occurs(["sshd"], "Jan 1 host ssh[1]: x"))
        #expect(occurs(["abc", "xyz"], "..xyz"))
        #expect(!occurs(["abc", "xyz"], "..xy"))
        // More: the pair table.
        let many = ["alpha", "beta", "gamma", "delta", "epsilon", "zeta", "eta"]
        for m in many {
            #expect(occurs(many, "x " + m))
            #expect(occurs(many, m))
            #expect(!occurs(many, String(m.dropLast())))
        }
        #expect(!occurs(many, "alph bet gamm delt epsilo zet et"))
        #expect(!occurs(many, ""))
        #expect(occurs(many, "zzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzeta"))
    }

    /// Random regexes over a small grammar and texts drawn from them (so PCRE2 matches them, which is checked):
    /// whenever the extraction gives strings, one of them is in the text.
    @Test func randomRegexesAndTheirMatchesAgree() throws {
        var rng = SplitMix(seed: 0x5EED)
        var withSet = 0
        for _ in 0..<4000 {
            let node = RandomRegex.make(&rng, depth: 0)
            let regex = node.text
            let pattern = try Pattern(regex)
            let matcher = pattern.makeMatcher()
            for _ in 0..<6 {
                let sample = "<" + node.sample(&rng) + ">"
                var subject = sample
                let matched = subject.withUTF8 { matcher.matches($0) }
                #expect(matched, "regex \(regex) does not match its own sample \(sample)")
                if let set = strings(regex) {
                    withSet += 1
                    #expect(set.contains { sample.contains($0) }, "regex \(regex): none of \(set) in \(sample)")
                }
            }
        }
        #expect(withSet > 1000)  // the grammar gives the extraction something to do
    }
}

/// Regexes from literals, classes, `.`, `\d`, groups, alternations and quantifiers, and texts they match
/// (lookarounds are left to the hand-written cases: a text drawn from their parts need not satisfy them).
indirect enum RandomRegex {
    case literal(String)
    case digit
    case dot
    case charClass
    case group([[RandomRegex]])
    case quantified(RandomRegex, min: Int, max: Int?, suffix: String)

    static let letters = ["a", "b", "c", "s", "h", "d", ":", " ", "[", "]", "-", "ssh", "fail", "abc"]

    static func make(_ rng: inout SplitMix, depth: Int) -> RandomRegex {
        func sequence() -> [RandomRegex] { (0..<(1 + rng.below(4))).map { _ in make(&rng, depth: depth + 1) } }
        switch rng.below(depth > 2 ? 6 : 9) {
        case 0, 1, 2: return .literal(letters[rng.below(letters.count)])
        case 3: return .digit
        case 4: return .dot
        case 5: return .charClass
        case 6: return .group((0..<(1 + rng.below(3))).map { _ in sequence() })
        case 7: return .group([sequence()])
        default:
            let inner = RandomRegex.group([sequence()])
            let forms: [(Int, Int?)] = [(0, 1), (0, nil), (1, nil), (0, 2), (1, 1), (2, 3), (1, 3), (0, 0), (2, 2)]
            let (lo, hi) = forms[rng.below(forms.count)]
            return .quantified(inner, min: lo, max: hi, suffix: ["", "?", "+"][rng.below(3)])
        }
    }

    var text: String {
        switch self {
        case .literal(let s): return s == "[" || s == "]" || s == "-" ? "\\" + s : s
        case .digit: return #"\d"#
        case .dot: return "."
        case .charClass: return "[a-c:]"
        case .group(let branches): return "(?:" + branches.map { $0.map(\.text).joined() }.joined(separator: "|") + ")"
        case .quantified(let inner, let lo, let hi, let suffix):
            let q: String
            switch (lo, hi) {
            case (0, 1): q = "?"
            case (0, nil): q = "*"
            case (1, nil): q = "+"
            case (_, nil): q = "{\(lo),}"
            case (_, let h?) where h == lo: q = "{\(lo)}"
            case (_, let h?): q = "{\(lo),\(h)}"
            }
            // A possessive quantifier can refuse texts its greedy form accepts: keep them lazy or greedy.
            return inner.text + q + (suffix == "+" ? "" : suffix)
        }
    }

    /// A text the regex matches.
    func sample(_ rng: inout SplitMix) -> String {
        switch self {
        case .literal(let s): return s
        case .digit: return String(rng.below(10))
        case .dot: return ["x", "7", " ", "a"][rng.below(4)]
        case .charClass: return ["a", "b", "c", ":"][rng.below(4)]
        case .group(let branches): return branches[rng.below(branches.count)].map { $0.sample(&rng) }.joined()
        case .quantified(let inner, let lo, let hi, _):
            let n = lo + rng.below((hi ?? lo + 3) - lo + 1)
            return (0..<n).map { _ in inner.sample(&rng) }.joined()
        }
    }
}
