/// A filter definition (`filter.d/NAME.conf` + `.local` + `.d/`) fully resolved for one use.
///
/// Regular expressions keep fail2ban's regex tags (`<HOST>`, `<ADDR>`, `<F-USER>` …) untouched; every other
/// `%(name)s` and `<tag>` has been substituted.
public struct FilterConfiguration: Sendable {
    /// The filter's name as referenced (`sshd`), or the path when given as a path.
    public var name: String
    /// The path of the main `.conf` file (or the first file read when there is none).
    public var file: String
    /// Arguments from `name[key=value, …]`.
    public var arguments: [String: String]
    /// One entry per non-empty line of `failregex`, fully substituted, with the line it came from.
    public var failregex: [ConfigValue]
    /// One entry per non-empty line of `ignoreregex`.
    public var ignoreregex: [ConfigValue]
    /// The prefix regex applied before `failregex`, when defined and not empty.
    public var prefregex: ConfigValue?
    /// The date pattern(s), one per line, when defined.
    public var datepattern: ConfigValue?
    /// How many lines a multi-line match may span (fail2ban's `maxlines`).
    public var maxlines: Int?
    /// systemd journal matches: alternatives (OR), each a list of `FIELD=value` terms (AND).
    public var journalmatch: [[String]]
    /// Every resolved `[Init]` and `[Definition]` option (and DEFAULT, arguments), e.g. `logtimezone`.
    public var values: [String: String]

    /// A filter configuration with every field given.
    public init(
        name: String, file: String, arguments: [String: String] = [:], failregex: [ConfigValue] = [],
        ignoreregex: [ConfigValue] = [], prefregex: ConfigValue? = nil, datepattern: ConfigValue? = nil,
        maxlines: Int? = nil, journalmatch: [[String]] = [], values: [String: String] = [:]
    ) {
        self.name = name
        self.file = file
        self.arguments = arguments
        self.failregex = failregex
        self.ignoreregex = ignoreregex
        self.prefregex = prefregex
        self.datepattern = datepattern
        self.maxlines = maxlines
        self.journalmatch = journalmatch
        self.values = values
    }

    /// The options of a filter's `[Definition]` that fail2ban hands to the jail (and that a jail may override).
    public static let definitionOptions = [
        "prefregex", "failregex", "ignoreregex", "maxlines", "datepattern", "journalmatch",
    ]
}

/// Resolves one definition file (filter or action): `[Init]`, arguments, `[Definition]`, `%(…)s` and `<tag>`s.
///
/// As fail2ban does: arguments (`name[key=value]`) act as `%(key)s` variables that take precedence over the
/// section's own options; `[Init]` values (overridden by arguments) take precedence over `[Definition]` for the
/// options fail2ban reads, and are the first source of `<tag>` values; `<known/key>` is the `[Init]` value before
/// arguments; any other tag is looked up as an option of `[Definition]` (then DEFAULT), `<section/option>` in
/// that section. Tags that match nothing stay as they are.
struct DefinitionResolver {
    let store: ConfigStore
    /// `[Init]` values as read from the files (interpolated), before arguments.
    let initValues: [String: String]
    /// The arguments.
    let arguments: [String: String]
    /// Interpolation with the arguments as variables (for `[Definition]` and DEFAULT).
    let interpolator: Interpolator
    /// Interpolation without variables (for `[Init]`).
    let plain: Interpolator
    var tags: TagSubstitution

    /// The section holding the definition.
    static let definition = "Definition"

    /// `store` read, `arguments` given; `extraTags` (a jail's values, for actions) are tag values below `[Init]`,
    /// `extraVars` are `%(name)s` variables below the arguments; tags named in `ignored` are left untouched.
    init(
        store: ConfigStore, arguments: [String: String], extraTags: [String: String] = [:],
        extraVars: [String: String] = [:], ignored: Set<String> = [], fallback: [String: String] = [:],
        initSection: String = "Init"
    ) throws(ConfigError) {
        self.store = store
        self.arguments = arguments
        var plain = Interpolator(store: store)
        plain.fallback = fallback
        self.plain = plain
        var initValues: [String: String] = [:]
        for option in store.options(in: initSection) {
            initValues[option] = try plain.get(initSection, option) ?? ""
        }
        self.initValues = initValues
        var interp = Interpolator(store: store)
        var vars = Dictionary(extraVars.map { ($0.key.lowercased(), $0.value) }, uniquingKeysWith: { _, b in b })
        for (k, v) in arguments { vars[k.lowercased()] = v }
        interp.vars = vars
        interp.fallback = fallback
        self.interpolator = interp

        var direct = extraTags
        for (k, v) in initValues { direct[k] = v }
        for (k, v) in arguments { direct[k] = v }
        for (k, v) in initValues { direct["known/" + k] = v }
        let captured = interp
        let capturedPlain = plain
        let storeCopy = store
        self.tags = TagSubstitution(ignored: ignored) { (name: String) throws(ConfigError) -> String? in
            if let v = direct[name] { return v }
            if let slash = name.firstIndex(of: "/") {
                let prefix = String(name[..<slash])
                let option = String(name[name.index(after: slash)...])
                if prefix == "known" {
                    // As fail2ban: when a later file re-opened [Definition], the value the option had before that
                    // file; else DEFAULT's value; else the tag stays as it is.
                    let name = option.lowercased()
                    if let (raw, index) = storeCopy.knownSnapshot(section: Self.definition, option: name) {
                        let ctx = Interpolator.Context(
                            section: Self.definition, option: name, historySection: Self.definition, index: index)
                        return try capturedPlain.interpolate(raw, ctx: ctx)
                    }
                    let defaults = storeCopy.values(section: ConfigStore.defaultSection, option: name)
                    guard let last = defaults.last else { return nil }
                    let ctx = Interpolator.Context(
                        section: Self.definition, option: name, historySection: ConfigStore.defaultSection,
                        index: defaults.count - 1)
                    return try capturedPlain.interpolate(last, ctx: ctx)
                }
                // `<section/option>` is read without the arguments (as fail2ban does).
                guard let section = storeCopy.findSection(prefix),
                    let (raw, sctx) = capturedPlain.find(option, in: section)
                else { return nil }
                return try capturedPlain.interpolate(raw, ctx: sctx)
            }
            guard storeCopy.hasSection(Self.definition), let (raw, ctx) = captured.find(name, in: Self.definition)
            else { return nil }
            return try captured.interpolate(raw, ctx: ctx)
        }
    }

    /// Where an option's value comes from: an argument's text, or a raw value with the interpolator to use.
    private enum Source {
        /// A jail's own value: used as written (fail2ban substitutes no tags in it).
        case verbatim(String)
        case text(String)
        case raw(RawValue, Interpolator.Context, Interpolator)
    }

    private func source(_ option: String, override: String?) -> Source? {
        if let override { return .verbatim(override) }
        if let v = arguments[option] { return .text(v) }
        if let raw = store.raw(section: "Init", option: option) {
            let ctx = Interpolator.Context(section: "Init", option: option, historySection: "Init", index: nil)
            return .raw(raw, ctx, plain)
        }
        guard store.hasSection(Self.definition), let (raw, ctx) = interpolator.find(option, in: Self.definition)
        else { return nil }
        return .raw(raw, ctx, interpolator)
    }

    /// An option resolved line by line: each physical line interpolated and tag-substituted, then split into the
    /// lines it produced (empty ones dropped), each keeping the location of the line it came from.
    mutating func lines(_ option: String, override: String? = nil) throws(ConfigError) -> [ConfigValue]? {
        guard let source = source(option, override: override) else { return nil }
        var out: [ConfigValue] = []
        switch source {
        case .verbatim(let text):
            for piece in text.split(separator: "\n", omittingEmptySubsequences: true) {
                out.append(ConfigValue(String(piece)))
            }
        case .text(let text):
            let substituted = try tags.substitute(text)
            for piece in substituted.split(separator: "\n", omittingEmptySubsequences: true) {
                out.append(ConfigValue(String(piece)))
            }
        case .raw(let raw, let ctx, let interp):
            for (text, line) in raw.lines {
                let location = line > 0 ? SourceLocation(file: raw.file, line: line) : nil
                let interpolated = try interp.interpolate(line: text, ctx: ctx, location: location)
                let substituted = try tags.substitute(interpolated, location: location)
                for piece in substituted.split(separator: "\n", omittingEmptySubsequences: true) {
                    out.append(ConfigValue(String(piece), location: location))
                }
            }
        }
        return out
    }

    /// An option resolved as one value (lines joined with `\n`), or nil when undefined.
    mutating func value(_ option: String, override: String? = nil) throws(ConfigError) -> ConfigValue? {
        guard let source = source(option, override: override) else { return nil }
        switch source {
        case .verbatim(let text):
            return ConfigValue(text)
        case .text(let text):
            return ConfigValue(try tags.substitute(text))
        case .raw(let raw, let ctx, let interp):
            let interpolated = try interp.interpolate(raw, ctx: ctx)
            return ConfigValue(try tags.substitute(interpolated, location: raw.location), location: raw.location)
        }
    }

    /// Every option of DEFAULT, `[Definition]` and `[Init]` plus the arguments, resolved; options that cannot be
    /// resolved are left out (fail2ban never evaluates them unless they are used).
    mutating func allValues() -> [String: String] {
        var out: [String: String] = [:]
        var names = Set(store.options(in: ConfigStore.defaultSection))
        names.formUnion(store.options(in: Self.definition))
        names.formUnion(store.options(in: "Init"))
        names.formUnion(arguments.keys)
        for name in names {
            if let v = try? value(name) { out[name] = v.value }
        }
        return out
    }
}

/// POSIX shell-like word splitting (as Python's `shlex.split`): white space separates words, `'…'` is literal,
/// `"…"` allows `\"` and `\\`, a backslash outside quotes escapes the next character.
func shellSplit(_ text: String) -> [String] {
    var words: [String] = []
    var current = ""
    var inWord = false
    var quote: Character? = nil
    var escape = false
    for c in text {
        if escape {
            current.append(c)
            escape = false
            continue
        }
        if let q = quote {
            if c == q {
                quote = nil
            } else if q == "\"", c == "\\" {
                escape = true
            } else {
                current.append(c)
            }
            continue
        }
        if c == "\\" {
            escape = true
            inWord = true
        } else if c == "\"" || c == "'" {
            quote = c
            inWord = true
        } else if c.isWhitespace {
            if inWord { words.append(current) }
            current = ""
            inWord = false
        } else {
            current.append(c)
            inWord = true
        }
    }
    if inWord { words.append(current) }
    return words
}

/// Journal matches from a `journalmatch` value: each line a list of terms; `+` separates alternatives.
func parseJournalMatch(_ lines: [ConfigValue]) -> [[String]] {
    var groups: [[String]] = []
    for line in lines {
        var group: [String] = []
        for word in shellSplit(line.value) {
            if word == "+" {
                if !group.isEmpty { groups.append(group) }
                group = []
            } else {
                group.append(word)
            }
        }
        if !group.isEmpty { groups.append(group) }
    }
    return groups
}
