/// Turns fail2ban `datepattern` values into PCRE2 date templates.
///
/// A datepattern is a regular expression in which strptime-like `%`-directives stand for the date fields
/// (`%Y-%m-%d %H:%M:%S`). Each directive becomes a named group; the text the date occupies becomes group 1 (the
/// span fail2ban cuts out of the line), unless the pattern brings its own capturing group. Word boundaries are added
/// around it unless the pattern asks otherwise (`{^LN-BEG}`, `^`, `$`, `{UNB}`, `**`).

/// How a template is anchored; mirrors what fail2ban uses to decide how to search with it.
struct DateTemplateFlags: OptionSet, Sendable {
    let rawValue: UInt8
    static let wordEnd = DateTemplateFlags(rawValue: 1)
    static let wordBegin = DateTemplateFlags(rawValue: 2)
    static let lineEnd = DateTemplateFlags(rawValue: 4)
    static let lineBegin = DateTemplateFlags(rawValue: 8)
}

/// How the matched text turns into a time.
enum DateTemplateKind: Sendable, Equatable {
    /// `%`-directive fields (named groups).
    case fields
    /// Epoch seconds with optional fraction.
    case epoch
    /// Epoch seconds, milliseconds or microseconds (`LEPOCH`).
    case longEpoch
    /// TAI64N label (`@4000…`).
    case tai64n
    /// `{NONE}`: an empty match at line start; the line has no time of its own.
    case none
}

/// A datepattern converted to a regular expression, before compilation.
struct DateTemplateSpec: Sendable, Equatable {
    var name: String
    var regex: String
    var flags: DateTemplateFlags
    var caseless: Bool
    var kind: DateTemplateKind
    var weight: Double = 1
}

/// One directive: its regex (with a named group) and the word fail2ban shows for it in template names.
private struct Directive {
    let regex: String
    let name: String?  // nil: the name keeps the directive itself (`%k`)
    let caseless: Bool
}

/// Builds date templates from datepattern text. All state is derived from the current year at creation.
struct DatePatternCompiler: Sendable {
    /// Regex for `%ExY`: four-digit years from the decade of 2000 (or the year before now, if earlier) up to
    /// the decade three years ahead — the range fail2ban accepts for "plausible current" years.
    let exYearRegex: String
    /// The years `exYearRegex` accepts.
    let exYears: ClosedRange<Int>

    init(currentYear: Int) {
        let low = min(2000, currentYear - 1) / 10
        let high = (currentYear + 3) / 10
        exYears = (low * 10)...(high * 10 + 9)
        var decades: [String] = []
        var d = low
        while d <= high {
            decades.append(String(d))
            d += 1
        }
        // Group decades sharing their first two digits into a character class where possible.
        if decades.count == 1 {
            exYearRegex = "(?P<Y>\(decades[0])[0-9])"
        } else if decades.allSatisfy({ $0.hasPrefix(String(decades[0].prefix(2))) }) {
            let digits = decades.map { String($0.last!) }.joined()
            exYearRegex = "(?P<Y>\(decades[0].prefix(2))[\(digits)][0-9])"
        } else {
            exYearRegex = "(?P<Y>(?:\(decades.joined(separator: "|")))[0-9])"
        }
    }

    // MARK: directives

    private func directive(_ key: String) -> Directive? {
        let dd = "[1-2][0-9]|[0 ]?[1-9]|3[0-1]"
        switch key {
        case "a": return Directive(regex: "(?P<a>mon|tue|wed|thu|fri|sat|sun)", name: "DAY", caseless: true)
        case "A":
            return Directive(
                regex: "(?P<A>wednesday|thursday|saturday|tuesday|monday|friday|sunday)", name: "DAYNAME",
                caseless: true)
        case "b":
            return Directive(
                regex: "(?P<b>jan|feb|mar|apr|may|jun|jul|aug|sep|oct|nov|dec)", name: "MON", caseless: true)
        case "B":
            return Directive(
                regex:
                    "(?P<B>september|february|november|december|january|october|august|march|april|june|july|may)",
                name: "MONTH", caseless: true)
        case "c":
            return Directive(
                regex:
                    "(?P<a>mon|tue|wed|thu|fri|sat|sun)\\s+(?P<b>jan|feb|mar|apr|may|jun|jul|aug|sep|oct|nov|dec)\\s+"
                    + "(?P<d>3[0-1]|[1-2][0-9]|0[1-9]|[1-9]| [1-9])\\s+(?P<H>2[0-3]|[0-1][0-9]|[0-9]):"
                    + "(?P<M>[0-5][0-9]|[0-9]):(?P<S>6[0-1]|[0-5][0-9]|[0-9])\\s+(?P<Y>[0-9][0-9][0-9][0-9])",
                name: nil, caseless: true)
        case "d": return Directive(regex: "(?P<d>\(dd))", name: "Day", caseless: false)
        case "Exd": return Directive(regex: "(?P<d>[1-2][0-9]|0[1-9]|3[0-1])", name: "ExDay", caseless: false)
        case "f": return Directive(regex: "(?P<f>[0-9]{1,6})", name: "Microseconds", caseless: false)
        case "G": return Directive(regex: "(?P<G>[0-9][0-9][0-9][0-9])", name: nil, caseless: false)
        case "H": return Directive(regex: "(?P<H>[0-1]?[0-9]|2[0-3])", name: "24hour", caseless: false)
        case "ExH": return Directive(regex: "(?P<H>[0-1][0-9]|2[0-3])", name: "Ex24hour", caseless: false)
        case "k": return Directive(regex: " ?(?P<H>[0-2]?[0-9])", name: nil, caseless: false)
        case "Exk": return Directive(regex: " ?(?P<H>[0-1]?[0-9]|2[0-3])", name: nil, caseless: false)
        case "I": return Directive(regex: "(?P<I>1[0-2]|0[1-9]|[1-9])", name: "12hour", caseless: false)
        case "l": return Directive(regex: " ?(?P<I>1?[0-9])", name: nil, caseless: false)
        case "Exl": return Directive(regex: " ?(?P<I>1[0-2]|[0-9])", name: nil, caseless: false)
        case "j":
            return Directive(
                regex: "(?P<j>36[0-6]|3[0-5][0-9]|[1-2][0-9][0-9]|0[1-9][0-9]|00[1-9]|[1-9][0-9]|0[1-9]|[1-9])",
                name: "Yearday", caseless: false)
        case "m": return Directive(regex: "(?P<m>0?[1-9]|1[0-2])", name: "Month", caseless: false)
        case "Exm": return Directive(regex: "(?P<m>0[1-9]|1[0-2])", name: "ExMonth", caseless: false)
        case "M": return Directive(regex: "(?P<M>[0-5]?[0-9])", name: "Minute", caseless: false)
        case "ExM": return Directive(regex: "(?P<M>[0-5][0-9])", name: "ExMinute", caseless: false)
        case "p": return Directive(regex: "(?P<p>am|pm)", name: "AMPM", caseless: true)
        case "S": return Directive(regex: "(?P<S>[0-5]?[0-9]|6[0-1])", name: "Second", caseless: false)
        case "ExS": return Directive(regex: "(?P<S>[0-5][0-9]|6[0-1])", name: "ExSecond", caseless: false)
        case "U": return Directive(regex: "(?P<U>5[0-3]|[0-4][0-9]|[0-9])", name: "Yearweek", caseless: false)
        case "W": return Directive(regex: "(?P<W>5[0-3]|[0-4][0-9]|[0-9])", name: "Yearweek", caseless: false)
        case "V": return Directive(regex: "(?P<V>5[0-3]|0[1-9]|[1-4][0-9]|[0-9])", name: nil, caseless: false)
        case "u": return Directive(regex: "(?P<u>[1-7])", name: nil, caseless: false)
        case "w": return Directive(regex: "(?P<w>[0-6])", name: "Weekday", caseless: false)
        case "x":
            return Directive(
                regex: "(?P<m>1[0-2]|0[1-9]|[1-9])/(?P<d>3[0-1]|[1-2][0-9]|0[1-9]|[1-9]| [1-9])/(?P<y>[0-9][0-9])",
                name: nil, caseless: false)
        case "X":
            return Directive(
                regex: "(?P<H>2[0-3]|[0-1][0-9]|[0-9]):(?P<M>[0-5][0-9]|[0-9]):(?P<S>6[0-1]|[0-5][0-9]|[0-9])",
                name: nil, caseless: false)
        case "y": return Directive(regex: "(?P<y>[0-9][0-9])", name: "Year2", caseless: false)
        case "Exy": return Directive(regex: "(?P<y>[0-9]{2})", name: "ExYear2", caseless: false)
        case "Y": return Directive(regex: "(?P<Y>[0-9]{4})", name: "Year", caseless: false)
        case "ExY": return Directive(regex: exYearRegex, name: "ExYear", caseless: false)
        case "z":
            return Directive(
                regex: "(?P<z>Z|UTC|GMT|[+-][01][0-9](?::?[0-9]{2})?)", name: "Zone offset", caseless: false)
        case "Exz":
            return Directive(
                regex: "(?P<z>(?:[A-Z](?:[A-Z]{2,4})?)?[+-][01][0-9](?::?[0-9]{2})?|[A-Z](?:[A-Z]{2,4})?)",
                name: "ExZone offset", caseless: false)
        case "Z": return Directive(regex: "(?P<Z>Z|[A-Z]{3,5})", name: "Zone name", caseless: false)
        case "ExZ": return Directive(regex: "(?P<Z>[A-Z](?:[A-Z]{2,4})?)", name: "ExZone name", caseless: false)
        default: return nil
        }
    }

    /// Replaces the directives of `pattern`; returns the regex body, the display name and whether the
    /// template must match case-insensitively.
    func expandDirectives(_ pattern: String) throws(DateError) -> (regex: String, name: String, caseless: Bool) {
        var regex = ""
        var name = ""
        var caseless = false
        var chars = Array(pattern)
        chars.append("\0")
        var i = 0
        while i < chars.count - 1 {
            let c = chars[i]
            guard c == "%" else {
                regex.append(c)
                name.append(c)
                i += 1
                continue
            }
            var key = String(chars[i + 1])
            if chars[i + 1] == "E" && chars[i + 2] == "x" && chars[i + 3] != "\0" {
                key = "Ex" + String(chars[i + 3])
            }
            if key == "%" {
                regex.append("%")
                name.append("%")
                i += 2
                continue
            }
            if key == "\0" {
                throw DateError(
                    code: .badPattern, value: pattern,
                    message: "ends with a lone '%' (write '%%' for a literal percent sign)")
            }
            if key == "s" {
                throw DateError(
                    code: .badPattern, value: pattern,
                    message: "'%s' is not usable in a datepattern in fail2ban 1.0.2; use EPOCH or LEPOCH instead")
            }
            guard let d = directive(key) else {
                throw DateError(
                    code: .badPattern, value: pattern,
                    message: "unknown directive '%\(key)'; see jail.conf(5) 'datepattern' for the supported ones")
            }
            regex += d.regex
            name += d.name ?? "%" + key
            caseless = caseless || d.caseless
            i += 1 + key.count
        }
        return (regex, name, caseless)
    }

    // MARK: special templates

    private static let squareOrAuditStart = "(?:^|(?P<square>(?<=^\\[))|(?P<selinux>(?<=\\baudit\\()))"
    private static let squareOrAuditEnd = "(?:(?(selinux)(?=:[0-9]+\\)))|(?(square)(?=\\])))"
    private static let wordEnd = "(?=\\b|\\W|$)"
    private static let lineBeginPrefix = "^(?:\\W{0,2})?"

    func special(_ kind: DateTemplateKind, lineBegin: Bool) -> DateTemplateSpec {
        let digits: String
        let label: String
        switch kind {
        case .epoch:
            digits = "[0-9]{10,11}\\b(?:\\.[0-9]{3,6})?"
            label = "Epoch"
        case .longEpoch:
            digits = "[0-9]{10,11}(?:[0-9]{3}(?:\\.[0-9]{1,6}|[0-9]{3})?)?"
            label = "LongEpoch"
        case .tai64n:
            let body = "(@[0-9a-f]{24})" + Self.wordEnd
            return DateTemplateSpec(
                name: lineBegin ? "{^LN-BEG}TAI64N" : "TAI64N",
                regex: lineBegin ? Self.lineBeginPrefix + body : body,
                flags: lineBegin ? [.lineBegin, .wordEnd] : [.wordEnd], caseless: false, kind: .tai64n)
        case .none, .fields:
            return DateTemplateSpec(name: "^", regex: "^()", flags: [.lineBegin], caseless: false, kind: .none)
        }
        let regex: String
        if lineBegin {
            regex = Self.lineBeginPrefix + "((?P<square>(?<=^\\[))?" + digits + ")(?(square)(?=\\]))" + Self.wordEnd
        } else {
            regex = "(" + Self.squareOrAuditStart + digits + ")" + Self.squareOrAuditEnd + Self.wordEnd
        }
        return DateTemplateSpec(
            name: lineBegin ? "{^LN-BEG}" + label : label, regex: regex,
            flags: lineBegin ? [.lineBegin, .wordEnd] : [.wordEnd], caseless: false, kind: kind)
    }

    // MARK: one pattern line

    /// Converts one datepattern line (no `{DATE}`, not a keyword value) into a template.
    func template(_ line: String) throws(DateError) -> DateTemplateSpec {
        var p = Substring(line)
        // Special values, optionally anchored.
        var anchoredSpecial = false
        var rest = p
        if rest.hasPrefix("{^LN-BEG}") {
            rest = rest.dropFirst(9)
            anchoredSpecial = true
        } else if rest.hasPrefix("^") {
            rest = rest.dropFirst()
            anchoredSpecial = true
        }
        switch rest.uppercased() {
        case "EPOCH": return special(.epoch, lineBegin: anchoredSpecial)
        case "LEPOCH": return special(.longEpoch, lineBegin: anchoredSpecial)
        case "TAI64N": return special(.tai64n, lineBegin: anchoredSpecial)
        default: break
        }

        var unbound = false
        var lnBeg = false
        var noWordBegin = false
        var noWordEnd = false
        var namePrefix = ""
        if p.hasPrefix("{UNB}") {
            unbound = true
            p = p.dropFirst(5)
        } else if p.hasPrefix("{^LN-BEG}") {
            lnBeg = true
            p = p.dropFirst(9)
            namePrefix = "{^LN-BEG}"
        }
        if p.hasPrefix("**") {
            noWordBegin = true
            p = p.dropFirst(2)
            namePrefix += "**"
        }
        var nameSuffix = ""
        if p.hasSuffix("**") {
            noWordEnd = true
            p = p.dropLast(2)
            nameSuffix = "**"
        }
        let expanded = try expandDirectives(String(p))
        var body = Substring(expanded.regex.trimmingASCIIWhitespace())
        var name = expanded.name
        var flags: DateTemplateFlags = []
        var prefix: String
        if body.hasPrefix("^") {
            body = body.dropFirst()
            flags.insert(.lineBegin)
            prefix = "^"
            if lnBeg {  // `{^LN-BEG}^…` is a plain line start
                namePrefix = ""
            }
        } else if lnBeg {
            flags.insert(.lineBegin)
            prefix = Self.lineBeginPrefix
        } else if unbound || noWordBegin {
            prefix = ""
        } else {
            flags.insert(.wordBegin)
            prefix = "(?=^|\\b|\\W)"
        }
        var suffix: String
        if body.hasSuffix("$") && !body.hasSuffix("\\$") {
            body = body.dropLast()
            flags.insert(.lineEnd)
            suffix = "$"
        } else if body.hasSuffix("$)") {
            flags.insert(.lineEnd)
            suffix = ""
        } else if unbound || noWordEnd {
            suffix = ""
        } else {
            flags.insert(.wordEnd)
            suffix = Self.wordEnd
        }
        let core = Self.hasExplicitGroup(body) ? String(body) : "(" + body + ")"
        name = namePrefix + name.trimmingASCIIWhitespace() + nameSuffix
        if name.hasPrefix("{^LN-BEG}^") { name.removeFirst(9) }
        return DateTemplateSpec(
            name: name, regex: prefix + core + suffix, flags: flags, caseless: expanded.caseless, kind: .fields)
    }

    /// True when `regex` opens a capturing group of its own: a `(` not escaped and not followed by `?`.
    static func hasExplicitGroup<S: StringProtocol>(_ regex: S) -> Bool {
        var previous: Character = " "
        var iterator = regex.makeIterator()
        var current = iterator.next()
        while let c = current {
            let next = iterator.next()
            if c == "(" && previous != "\\" && next != "?" { return true }
            previous = c
            current = next
        }
        return false
    }

    // MARK: default templates

    /// The base date formats fail2ban knows, in its order, without anchoring.
    static let basePatterns: [String] = [
        #"%ExY(?P<_sep>[-/.])%m(?P=_sep)%d(?:T|  ?)%H:%M:%S(?:[.,]%f)?(?:\s*%z)?"#,
        #"(?:%a )?%b %d %k:%M:%S(?:\.%f)?(?: %ExY)?"#,
        #"(?:%a )?%b %d %ExY %k:%M:%S(?:\.%f)?"#,
        #"%d(?P<_sep>[-/])%m(?P=_sep)(?:%ExY|%Exy) %k:%M:%S"#,
        #"%d(?P<_sep>[-/])%b(?P=_sep)%ExY[ :]?%H:%M:%S(?:\.%f)?(?: %z)?"#,
        #"%m/%d/%ExY:%H:%M:%S"#,
        #"%m-%d-%ExY %k:%M:%S(?:\.%f)?"#,
        "EPOCH",
        #"%H:%M:%S"#,
        #"^<%m/%d/%Exy@%H:%M:%S>"#,
        #"%Exy%Exm%Exd  ?%H:%M:%S"#,
        #"%b %d, %ExY %I:%M:%S %p"#,
        #"^%b-%d-%Exy %k:%M:%S"#,
        #"%ExY%Exm%Exd(?:T|  ?)%ExH%ExM%ExS(?:[.,]%f)?(?:\s*%z)?"#,
        #"(?:%Z )?(?:%a )?%b %d %k:%M:%S(?:\.%f)?(?: %ExY)?"#,
        #"(?:%z )?(?:%a )?%b %d %k:%M:%S(?:\.%f)?(?: %ExY)?"#,
        "TAI64N",
    ]

    /// Bases that are only ever used anchored at line start (a bare time, and the two `^…` forms).
    private static let anchoredOnlyBases: Set<Int> = [8, 9, 12]

    private func base(_ i: Int, lineBegin: Bool) throws(DateError) -> DateTemplateSpec {
        let p = Self.basePatterns[i]
        switch p {
        case "EPOCH": return special(.epoch, lineBegin: lineBegin)
        case "TAI64N": return special(.tai64n, lineBegin: lineBegin)
        default:
            if lineBegin && !p.hasPrefix("^") { return try template("{^LN-BEG}" + p) }
            return try template(p)
        }
    }

    /// The anchored first half of the defaults (weight 100 in fail2ban's reordering).
    func anchoredDefaults() throws(DateError) -> [DateTemplateSpec] {
        var out: [DateTemplateSpec] = []
        for i in Self.basePatterns.indices where !Self.anchoredOnlyBases.contains(i) {
            var t = try base(i, lineBegin: true)
            t.weight = 100
            out.append(t)
        }
        return out
    }

    /// The templates of the value `{^LN-BEG}`: every default anchored at line start.
    func lineBeginDefaults() throws(DateError) -> [DateTemplateSpec] {
        var out = try anchoredDefaults()
        for i in Self.anchoredOnlyBases.sorted() { out.append(try base(i, lineBegin: true)) }
        return out
    }

    /// fail2ban's default template list: anchored versions first, then unanchored ones.
    func defaults() throws(DateError) -> [DateTemplateSpec] {
        var out = try anchoredDefaults()
        for i in Self.basePatterns.indices {
            out.append(try base(i, lineBegin: Self.anchoredOnlyBases.contains(i)))
        }
        return out
    }

    /// Expands `{DATE}` in `line` with every base format.
    func expandDate(_ line: String) throws(DateError) -> [DateTemplateSpec] {
        var out: [DateTemplateSpec] = []
        let around = line.replacingAll("{DATE}", with: "")
        for p in Self.basePatterns {
            if p == "EPOCH" || p == "TAI64N" {
                let kind: DateTemplateKind = p == "EPOCH" ? .epoch : .tai64n
                if around.isEmpty {
                    out.append(special(kind, lineBegin: false))
                    continue
                }
                if around == "^" || around == "{^LN-BEG}" {
                    out.append(special(kind, lineBegin: true))
                    continue
                }
                out.append(try template(line.replacingAll("{DATE}", with: p == "EPOCH" ? "Epoch" : "TAI64N")))
                continue
            }
            out.append(try template(line.replacingAll("{DATE}", with: p)))
        }
        return out
    }

    /// All templates for a (possibly multi-line) datepattern value; nil = fail2ban's defaults.
    func templates(for datePattern: String?) throws(DateError) -> [DateTemplateSpec] {
        guard let datePattern else { return try defaults() }
        let lines = datePattern.split(whereSeparator: { $0 == "\n" || $0 == "\r" })
            .map { $0.trimmingASCIIWhitespace() }.filter { !$0.isEmpty }
        if lines.isEmpty { return try defaults() }
        if lines.count == 1 && lines[0].uppercased() == "{DEFAULT}" { return try defaults() }
        var out: [DateTemplateSpec] = []
        var withDefaultGroup = false
        for line in lines {
            switch line.uppercased() {
            case "{DEFAULT}":
                continue  // fail2ban ignores it among several patterns
            case "{^LN-BEG}":
                out += try lineBeginDefaults()
                withDefaultGroup = true
            case "{NONE}":
                out.append(special(.none, lineBegin: true))
            default:
                if line.contains("{DATE}") {
                    out += try expandDate(line)
                } else {
                    out.append(try template(line))
                }
            }
        }
        // Duplicates (by name) keep their first position; anchored defaults weigh more when present.
        var seen = Set<String>()
        var unique: [DateTemplateSpec] = []
        let heavy = withDefaultGroup ? Set(try anchoredDefaults().map(\.name)) : []
        for var t in out where seen.insert(t.name).inserted {
            t.weight = heavy.contains(t.name) ? 100 : 1
            unique.append(t)
        }
        return unique
    }
}

extension StringProtocol {
    func trimmingASCIIWhitespace() -> String {
        let isSpace: (Character) -> Bool = {
            $0 == " " || $0 == "\t" || $0 == "\n" || $0 == "\r" || $0 == "\u{0B}" || $0 == "\u{0C}"
        }
        guard let start = firstIndex(where: { !isSpace($0) }) else { return "" }
        let end = lastIndex(where: { !isSpace($0) })!
        return String(self[start...end])
    }

    func replacingAll(_ target: String, with replacement: String) -> String {
        let source = Array(self.utf8)
        let needle = Array(target.utf8)
        var out: [UInt8] = []
        var i = 0
        while i < source.count {
            if !needle.isEmpty, i + needle.count <= source.count, source[i..<(i + needle.count)].elementsEqual(needle) {
                out += replacement.utf8
                i += needle.count
            } else {
                out.append(source[i])
                i += 1
            }
        }
        return String(decoding: out, as: UTF8.self)
    }
}
