/// A fail2ban `journalmatch`: alternatives separated by `+`, each a list of `FIELD=value` terms.
///
/// Within one alternative, terms on different fields must all hold and terms on the same field are
/// alternatives (sd-journal semantics); the alternatives themselves are OR-ed (`sd_journal_add_disjunction`).
///
/// ```swift
/// let m = try JournalMatch(parsing: "_SYSTEMD_UNIT=sshd.service + _COMM=sshd")
/// m.alternatives  // [["_SYSTEMD_UNIT=sshd.service"], ["_COMM=sshd"]]
/// ```
public struct JournalMatch: Sendable, Hashable, CustomStringConvertible {
    /// The alternatives; an empty list matches every entry.
    public var alternatives: [[String]]

    /// Every entry.
    public static let all = JournalMatch(alternatives: [])

    /// A match from its alternatives, checked with `validate()` when a source opens.
    public init(alternatives: [[String]]) {
        self.alternatives = alternatives.filter { !$0.isEmpty }
    }

    /// Parses fail2ban's syntax: whitespace-separated `FIELD=value` terms, `+` between alternatives.
    /// A term may be quoted with `"` or `'` to keep spaces in its value (`MESSAGE="a b"` is not allowed:
    /// quote the whole term, `"MESSAGE=a b"`).
    /// - Throws: `LogSourceError` `.invalidMatch` naming the bad term.
    public init(parsing text: String) throws(LogSourceError) {
        var alternatives: [[String]] = [[]]
        for token in try Self.tokens(text) {
            if token == "+" {
                alternatives.append([])
            } else {
                alternatives[alternatives.count - 1].append(token)
            }
        }
        self.init(alternatives: alternatives)
        try validate()
    }

    /// Checks every term is `FIELD=value` with a journal field name (`A-Z`, `0-9`, `_`, not starting with a digit).
    public func validate() throws(LogSourceError) {
        for term in alternatives.joined() {
            guard let eq = term.firstIndex(of: "=") else {
                throw LogSourceError(
                    .invalidMatch,
                    "journalmatch term '\(term)' has no '='; write it as FIELD=value"
                )
            }
            let field = term[..<eq]
            let valid =
                !field.isEmpty
                && field.utf8.allSatisfy { ($0 >= 65 && $0 <= 90) || ($0 >= 48 && $0 <= 57) || $0 == 95 }
                && !(field.utf8.first.map { $0 >= 48 && $0 <= 57 } ?? true)
            guard valid else {
                throw LogSourceError(
                    .invalidMatch,
                    "journalmatch term '\(term)': '\(field)' is not a journal field name (use A-Z, 0-9, _)"
                )
            }
        }
    }

    /// `A=1 B=2 + C=3`.
    public var description: String {
        alternatives.map { $0.joined(separator: " ") }.joined(separator: " + ")
    }

    private static func tokens(_ text: String) throws(LogSourceError) -> [String] {
        var out: [String] = []
        var current = ""
        var quote: Character?
        var inToken = false
        for ch in text {
            if let q = quote {
                if ch == q { quote = nil } else { current.append(ch) }
            } else if ch == "\"" || ch == "'" {
                quote = ch
                inToken = true
            } else if ch.isWhitespace {
                if inToken { out.append(current) }
                current = ""
                inToken = false
            } else {
                current.append(ch)
                inToken = true
            }
        }
        if quote != nil {
            throw LogSourceError(.invalidMatch, "journalmatch '\(text)' has an unclosed quote")
        }
        if inToken { out.append(current) }
        return out
    }
}
