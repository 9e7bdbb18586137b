/// Translation of Python `re` pattern syntax (what fail2ban's filters are written in) into PCRE2 syntax with the
/// same meaning. Cold path: runs once per regex when a filter is compiled.
///
/// Differences handled (each has a test in `PythonRegexTests`):
/// - `\Z` (Python: very end) → `\z`; PCRE2's `\Z` would also match before a final newline.
/// - `{,n}` and `{,}` (Python: `{0,n}`, `{0,}`) → explicit zero; PCRE2 10.42 reads them as literal text.
/// - Global inline flags (`(?i)`, `(?iu)`, …) anywhere in the pattern apply to the whole pattern, as in Python;
///   PCRE2 would apply them from their position on only. `u` and `L` are dropped (Unicode is always on), `a`
///   (ASCII) turns Unicode classes off for that pattern.
/// - Scoped flags `(?u:…)` lose the letters PCRE2 does not know.
/// - `\uXXXX`, `\UXXXXXXXX` → `\x{…}`; Python octal escapes (`\0`, `\012`) → `\o{…}`; numeric back-references
///   (`\1`) → `\g{1}` so that PCRE2 cannot read them as octal.
/// - `[` inside a character class is a literal in Python; it is escaped so PCRE2 never sees a POSIX class.
/// - `\d`, `\w`, `\s`, `\b` are Unicode-aware in Python 3: the pattern is compiled with PCRE2_UCP.
/// - `(?P<name>…)`, `(?P=name)`, `(?(name)…)`, lookarounds and `$` already mean the same in both.
struct PythonRegexTranslation: Equatable {
    /// The PCRE2 pattern text.
    var pattern: String
    /// True when the pattern asked for ASCII-only classes (`(?a)`).
    var ascii: Bool
}

enum PythonRegex {
    /// Translates `source` (Python syntax) into PCRE2 syntax. Never fails: what it does not recognise is copied,
    /// and PCRE2 reports it when compiling.
    static func translate(_ source: String) -> PythonRegexTranslation {
        let s = Array(source.unicodeScalars)
        var out = String.UnicodeScalarView()
        var globalFlags: [Unicode.Scalar] = []
        var ascii = false
        var i = 0
        var inClass = false

        func append(_ text: String) { out.append(contentsOf: text.unicodeScalars) }
        func isHex(_ c: Unicode.Scalar) -> Bool { c.properties.isASCIIHexDigit }
        func isOctal(_ c: Unicode.Scalar) -> Bool { c >= "0" && c <= "7" }
        func isDigit(_ c: Unicode.Scalar) -> Bool { c >= "0" && c <= "9" }

        // Handles a backslash escape at s[i] (== "\\"); returns the index after it.
        func escape(at i: Int, inClass: Bool) -> Int {
            guard i + 1 < s.count else {
                out.append("\\")
                return i + 1
            }
            let c = s[i + 1]
            switch c {
            case "Z" where !inClass:
                append("\\z")
                return i + 2
            case "u", "U":
                let n = c == "u" ? 4 : 8
                if i + 2 + n <= s.count, s[(i + 2)..<(i + 2 + n)].allSatisfy(isHex) {
                    append("\\x{")
                    out.append(contentsOf: s[(i + 2)..<(i + 2 + n)])
                    append("}")
                    return i + 2 + n
                }
            case "0":
                // Python: \0 followed by up to two octal digits is an octal escape.
                var j = i + 2
                while j < s.count, j < i + 4, isOctal(s[j]) { j += 1 }
                append("\\o{0")
                out.append(contentsOf: s[(i + 2)..<j])
                append("}")
                return j
            case "1"..."9":
                // Python: three octal digits (first 0-3) are octal; otherwise one or two digits are a group number.
                if i + 3 < s.count, c <= "3", isOctal(c), isOctal(s[i + 2]), isOctal(s[i + 3]) {
                    append("\\o{")
                    out.append(contentsOf: s[(i + 1)..<(i + 4)])
                    append("}")
                    return i + 4
                }
                if inClass { break }
                var j = i + 1
                while j < s.count, j < i + 3, isDigit(s[j]) { j += 1 }
                append("\\g{")
                out.append(contentsOf: s[(i + 1)..<j])
                append("}")
                return j
            default:
                break
            }
            out.append("\\")
            out.append(c)
            return i + 2
        }

        while i < s.count {
            let c = s[i]
            if c == "\\" {
                i = escape(at: i, inClass: inClass)
                continue
            }
            if inClass {
                if c == "]" {
                    inClass = false
                    out.append(c)
                } else if c == "[" {
                    append("\\[")
                } else {
                    out.append(c)
                }
                i += 1
                continue
            }
            switch c {
            case "[":
                inClass = true
                out.append(c)
                i += 1
                if i < s.count, s[i] == "^" {
                    out.append("^")
                    i += 1
                }
                // A `]` right after `[` or `[^` is a literal in both dialects; escape it for clarity.
                if i < s.count, s[i] == "]" {
                    append("\\]")
                    i += 1
                }
            case "{":
                // Python quantifier `{,n}` / `{,}`: minimum omitted means zero.
                var j = i + 1
                if j < s.count, s[j] == "," {
                    j += 1
                    while j < s.count, isDigit(s[j]) { j += 1 }
                    if j < s.count, s[j] == "}" {
                        append("{0")
                        out.append(contentsOf: s[(i + 1)...j])
                        i = j + 1
                        continue
                    }
                }
                out.append(c)
                i += 1
            case "(":
                guard i + 1 < s.count, s[i + 1] == "?" else {
                    out.append(c)
                    i += 1
                    continue
                }
                // Comment group: copy verbatim up to `)`.
                if i + 2 < s.count, s[i + 2] == "#" {
                    var j = i + 3
                    while j < s.count, s[j] != ")" { j += 1 }
                    out.append(contentsOf: s[i..<min(j + 1, s.count)])
                    i = j + 1
                    continue
                }
                // Flag group: (?flags) global, or (?flags-flags:...) scoped.
                let flagLetters: Set<Unicode.Scalar> = ["a", "i", "L", "m", "s", "u", "x"]
                var j = i + 2
                while j < s.count, flagLetters.contains(s[j]) { j += 1 }
                var k = j
                var hasMinus = false
                if k < s.count, s[k] == "-" {
                    hasMinus = true
                    k += 1
                    while k < s.count, flagLetters.contains(s[k]) { k += 1 }
                }
                if j > i + 2 || hasMinus, k < s.count {
                    if s[k] == ")" && !hasMinus {
                        for f in s[(i + 2)..<j] {
                            if f == "a" { ascii = true }
                            if "imsx".unicodeScalars.contains(f), !globalFlags.contains(f) { globalFlags.append(f) }
                        }
                        i = k + 1
                        continue
                    }
                    if s[k] == ":" || s[k] == ")" {
                        let kept = s[(i + 2)..<k].filter { $0 != "u" && $0 != "a" && $0 != "L" }
                        append("(?")
                        let trimmed = kept.last == "-" ? Array(kept.dropLast()) : Array(kept)
                        out.append(contentsOf: trimmed)
                        out.append(s[k])
                        i = k + 1
                        continue
                    }
                }
                out.append(c)
                i += 1
            default:
                out.append(c)
                i += 1
            }
        }
        var prefix = ""
        if !globalFlags.isEmpty {
            prefix = "(?" + String(String.UnicodeScalarView(globalFlags)) + ")"
        }
        return PythonRegexTranslation(pattern: prefix + String(out), ascii: ascii)
    }
}
