/// `<tag>` substitution as fail2ban applies it to filter and action definitions.
///
/// A tag is `<name>` where `name` has no space, `<` or `>`. Known tags are replaced by their own (recursively
/// substituted) values until nothing changes, so nested tags such as `<lt_<logtype>/datepattern>` resolve inside
/// out. Unknown tags (`<HOST>`, `<F-USER>`, `<ip>` …) are left untouched. A tag whose value leads back to itself
/// is an error.
struct TagSubstitution {
    /// Returns the raw value of a tag, or nil when the tag is unknown and must be left as it is.
    var lookup: (String) throws(ConfigError) -> String?
    /// Tags never substituted here (runtime tags of actions).
    var ignored: Set<String> = []

    private var cache: [String: String?] = [:]
    /// Rounds of substitution over one value before giving up (a value that keeps growing).
    static let maxRounds = 100
    /// How deep tag values may refer to other tags (bounds recursion on hostile input).
    static let maxDepth = 200

    /// A substitution using `lookup` for the values of tags.
    init(ignored: Set<String> = [], lookup: @escaping (String) throws(ConfigError) -> String?) {
        self.lookup = lookup
        self.ignored = ignored
    }

    /// `text` with every known tag replaced; `location` is used in error messages.
    mutating func substitute(_ text: String, location: SourceLocation? = nil) throws(ConfigError) -> String {
        var stack: [String] = []
        return try substitute(text, location: location, stack: &stack)
    }

    /// The fully substituted value of tag `name`, or nil when unknown.
    mutating func value(of name: String, location: SourceLocation? = nil) throws(ConfigError) -> String? {
        var stack: [String] = []
        return try resolved(name, location: location, stack: &stack)
    }

    private mutating func substitute(
        _ text: String, location: SourceLocation?, stack: inout [String]
    )
        throws(ConfigError) -> String
    {
        var current = text
        for _ in 0..<Self.maxRounds {
            guard current.contains("<") else { return current }
            var out = ""
            var changed = false
            var rest = Substring(current)
            while let open = rest.firstIndex(of: "<") {
                // The tag is the shortest `<…>` with no space or angle bracket inside.
                var cursor = rest.index(after: open)
                var close: Substring.Index? = nil
                while cursor < rest.endIndex {
                    let c = rest[cursor]
                    if c == ">" {
                        close = cursor
                        break
                    }
                    if c == "<" || c == " " { break }
                    cursor = rest.index(after: cursor)
                }
                guard let close, rest.index(after: open) < close else {
                    // Not a tag: keep the `<` and continue after it.
                    out += rest[...open]
                    rest = rest[rest.index(after: open)...]
                    continue
                }
                let name = String(rest[rest.index(after: open)..<close])
                out += rest[..<open]
                if let value = try resolved(name, location: location, stack: &stack) {
                    out += value
                    changed = true
                } else {
                    out += rest[open...close]
                }
                rest = rest[rest.index(after: close)...]
            }
            out += rest
            if !changed { return out }
            current = out
        }
        throw ConfigError(
            .interpolationLoop, "<tag> substitution does not settle after \(Self.maxRounds) rounds: \(text)",
            at: location, hint: "check for tags whose values produce new tags endlessly")
    }

    private mutating func resolved(
        _ name: String, location: SourceLocation?, stack: inout [String]
    )
        throws(ConfigError) -> String?
    {
        if ignored.contains(name) { return nil }
        if let cached = cache[name] { return cached }
        if stack.contains(name) {
            throw ConfigError(
                .interpolationLoop,
                "<\(name)> refers to itself: " + (stack + [name]).map { "<\($0)>" }.joined(separator: " → "),
                at: location, hint: "remove the circular tag reference")
        }
        if stack.count >= Self.maxDepth {
            throw ConfigError(
                .interpolationLoop, "<tag> values nest deeper than \(Self.maxDepth) levels at <\(name)>",
                at: location, hint: "simplify the chain of tags")
        }
        guard let raw = try lookup(name) else {
            cache[name] = .some(nil)
            return nil
        }
        stack.append(name)
        let value = try substitute(raw, location: location, stack: &stack)
        stack.removeLast()
        cache[name] = .some(value)
        return value
    }
}
