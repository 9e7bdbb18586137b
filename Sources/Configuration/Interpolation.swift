/// `%(name)s` interpolation as fail2ban's reader does it on top of Python's `configparser`.
///
/// - `%(name)s` looks in `vars` (filter/action arguments), then the section, then `[DEFAULT]`; a value found in
///   `[DEFAULT]` is still interpolated in the context of the section asked for (so `%(__name__)s` in DEFAULT is the
///   jail's name).
/// - `%(section/name)s` takes another section's value (`default/` is DEFAULT) but resolves that value's own
///   references for the section asking (as fail2ban does for `action_ = %(default/action_)s[…]`).
/// - `%(known/name)s` is the value `name` had before the file that last set it (in this section, else DEFAULT).
/// - `%(__name__)s` is the section's name; `%%` is a literal `%`.
/// - References nest at most 10 deep (as Python's `MAX_INTERPOLATION_DEPTH`); a loop is reported as an error.
struct Interpolator: Sendable {
    /// Python's `configparser.MAX_INTERPOLATION_DEPTH`.
    static let maxDepth = 10

    let store: ConfigStore
    /// Values that take precedence over the section's own (keys lower-cased).
    var vars: [String: String] = [:]
    /// Values used when neither the section nor DEFAULT has the option (e.g. `fail2ban_version`).
    var fallback: [String: String] = [:]

    /// Which value is being interpolated: for `%(known/…)s` and for loop messages.
    struct Context {
        var section: String
        var option: String
        /// The section whose history `index` refers to (the section itself, or DEFAULT).
        var historySection: String
        /// Index into that option's value history; nil for vars and synthetic values.
        var index: Int?
    }

    /// The interpolated value of `option` in `section` (vars, then section, then DEFAULT); nil when undefined.
    func get(_ section: String, _ option: String) throws(ConfigError) -> String? {
        guard let (raw, ctx) = find(option, in: section) else { return nil }
        return try interpolate(raw, ctx: ctx)
    }

    /// Interpolates a whole raw value in the context `ctx`.
    func interpolate(_ raw: RawValue, ctx: Context) throws(ConfigError) -> String {
        var chain: [String] = [ctx.option]
        return try interpolate(raw.text, ctx: ctx, location: raw.location, depth: 1, chain: &chain)
    }

    /// Interpolates one line of text (from `location`) in the context `ctx`.
    func interpolate(line text: String, ctx: Context, location: SourceLocation?) throws(ConfigError) -> String {
        var chain: [String] = [ctx.option]
        return try interpolate(text, ctx: ctx, location: location, depth: 1, chain: &chain)
    }

    /// Finds `option` for `section`: vars, the section, DEFAULT, then the fallback values.
    func find(_ option: String, in section: String, useVars: Bool = true) -> (RawValue, Context)? {
        let name = option.lowercased()
        if useVars, let v = vars[name] {
            return (.synthetic(v), Context(section: section, option: name, historySection: section, index: nil))
        }
        let own = store.values(section: section, option: name)
        if !own.isEmpty {
            return (own.last!, Context(section: section, option: name, historySection: section, index: own.count - 1))
        }
        let defaults = store.values(section: ConfigStore.defaultSection, option: name)
        if !defaults.isEmpty {
            return (
                defaults.last!,
                Context(
                    section: section, option: name, historySection: ConfigStore.defaultSection,
                    index: defaults.count - 1)
            )
        }
        if let v = fallback[name] {
            return (.synthetic(v), Context(section: section, option: name, historySection: section, index: nil))
        }
        return nil
    }

    /// The value of `known/option` seen from `ctx`: the value before the last override.
    func findKnown(_ option: String, ctx: Context) -> (RawValue, Context)? {
        let name = option.lowercased()
        // The option being interpolated refers to its own previous value.
        if name == ctx.option, let index = ctx.index, index >= 1 {
            let values = store.values(section: ctx.historySection, option: name)
            if index - 1 < values.count {
                return (
                    values[index - 1],
                    Context(section: ctx.section, option: name, historySection: ctx.historySection, index: index - 1)
                )
            }
        }
        for section in [ctx.section, ConfigStore.defaultSection] {
            if section == ctx.historySection, name == ctx.option { continue }
            let values = store.values(section: section, option: name)
            guard !values.isEmpty else { continue }
            let index = values.count >= 2 ? values.count - 2 : values.count - 1
            return (values[index], Context(section: ctx.section, option: name, historySection: section, index: index))
        }
        if let v = fallback[name] {
            return (.synthetic(v), Context(section: ctx.section, option: name, historySection: ctx.section, index: nil))
        }
        return nil
    }

    private func interpolate(
        _ text: String, ctx: Context, location: SourceLocation?, depth: Int, chain: inout [String]
    ) throws(ConfigError) -> String {
        guard text.contains("%") else { return text }
        if depth > Self.maxDepth {
            throw ConfigError(
                .interpolationLoop,
                "%(…)s references nest deeper than \(Self.maxDepth) levels or form a loop in [\(ctx.section)]: "
                    + chain.joined(separator: " → "),
                at: location, hint: "remove the circular reference")
        }
        var out = ""
        var rest = Substring(text)
        while let percent = rest.firstIndex(of: "%") {
            out += rest[..<percent]
            let after = rest.index(after: percent)
            guard after < rest.endIndex else {
                throw badPercent(text, ctx: ctx, location: location)
            }
            if rest[after] == "%" {
                out += "%"
                rest = rest[rest.index(after: after)...]
                continue
            }
            guard rest[after] == "(", let close = rest[after...].firstIndex(of: ")"),
                rest.index(after: close) < rest.endIndex, rest[rest.index(after: close)] == "s",
                rest.index(after: after) < close
            else {
                throw badPercent(text, ctx: ctx, location: location)
            }
            let name = String(rest[rest.index(after: after)..<close]).lowercased()
            rest = rest[rest.index(close, offsetBy: 2)...]
            out += try resolve(name, ctx: ctx, location: location, depth: depth, chain: &chain)
        }
        out += rest
        return out
    }

    private func resolve(
        _ name: String, ctx: Context, location: SourceLocation?, depth: Int, chain: inout [String]
    ) throws(ConfigError) -> String {
        if name == "__name__" { return ctx.section }
        var found: (RawValue, Context)?
        if let slash = name.firstIndex(of: "/") {
            let prefix = String(name[..<slash])
            let option = String(name[name.index(after: slash)...])
            if prefix == "known" {
                found = findKnown(option, ctx: ctx)
            } else if let section = prefix == "default" ? ConfigStore.defaultSection : store.findSection(prefix) {
                // `%(section/x)s` takes that section's own value (variables do not replace it) but resolves the
                // value's references for the section asking, as fail2ban does (e.g. for
                // `action_ = %(default/action_)s[…]` in a jail).
                var values = store.values(section: section, option: option)
                var historySection = section
                if values.isEmpty {
                    values = store.values(section: ConfigStore.defaultSection, option: option)
                    historySection = ConfigStore.defaultSection
                }
                if let last = values.last {
                    found = (
                        last,
                        Context(
                            section: ctx.section, option: option, historySection: historySection,
                            index: values.count - 1)
                    )
                }
            }
        } else {
            found = find(name, in: ctx.section)
        }
        guard let (raw, innerCtx) = found else {
            throw ConfigError(
                .missingOption, "%(\(name))s in [\(ctx.section)] \(ctx.option) refers to an option that is not defined",
                at: location, hint: "define '\(name)' or correct the reference")
        }
        chain.append(name)
        defer { chain.removeLast() }
        return try interpolate(raw.text, ctx: innerCtx, location: location, depth: depth + 1, chain: &chain)
    }

    private func badPercent(_ text: String, ctx: Context, location: SourceLocation?) -> ConfigError {
        ConfigError(
            .badInterpolation, "'%' must be followed by '%' or '(name)s' in [\(ctx.section)] \(ctx.option): \(text)",
            at: location, hint: "write %% for a literal percent sign")
    }
}
