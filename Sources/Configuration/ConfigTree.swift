/// A fail2ban-compatible configuration directory (`/etc/fail2ban` or `/etc/portcullis`), read as fail2ban 1.0.2
/// reads it.
///
/// ```swift
/// let tree = ConfigTree(root: "/etc/fail2ban")
/// let sshd = try tree.loadFilter("sshd[mode=aggressive]")
/// print(sshd.failregex.count)
/// let jails = tree.loadJails()
/// for (name, error) in jails.errors { print(name, error) }
/// ```
public struct ConfigTree: Sendable {
    /// The configuration directory.
    public var root: String

    /// Values every file can reference as `%(name)s` without defining them (fail2ban supplies the same names).
    public var builtinDefaults: [String: String]

    /// The fail2ban version whose behaviour is reproduced (offered as `%(fail2ban_version)s`).
    public static let compatibleFail2banVersion = "1.0.2"

    /// A tree rooted at `root`, e.g. `/etc/fail2ban`.
    public init(root: String) {
        var root = root
        while root.count > 1, root.hasSuffix("/") { root.removeLast() }
        self.root = root
        self.builtinDefaults = [
            "fail2ban_version": Self.compatibleFail2banVersion,
            "fail2ban_confpath": root,
        ]
    }

    /// Reads and resolves a filter.
    ///
    /// - Parameters:
    ///   - spec: `sshd`, `sshd[mode=aggressive]`, or a path to a `.conf` file (its `.local` sibling is read too).
    ///   - overrides: a jail's own `prefregex`, `failregex`, `ignoreregex`, `maxlines`, `datepattern` or
    ///     `journalmatch` (already interpolated in the jail); they replace the filter's and are used as written
    ///     (fail2ban substitutes no filter tags in them).
    public func loadFilter(_ spec: String, overrides: [String: String] = [:]) throws(ConfigError) -> FilterConfiguration
    {
        let parsed = try Spec.parse(spec)
        let (store, file) = try readDefinition(parsed.name, directory: "filter.d", kind: "filter")
        var resolver = try DefinitionResolver(store: store, arguments: parsed.arguments, fallback: builtinDefaults)
        let failregex = try resolver.lines("failregex", override: overrides["failregex"]) ?? []
        let ignoreregex = try resolver.lines("ignoreregex", override: overrides["ignoreregex"]) ?? []
        var prefregex = try resolver.value("prefregex", override: overrides["prefregex"])
        if prefregex?.value.isEmpty == true { prefregex = nil }
        let datepattern = try resolver.value("datepattern", override: overrides["datepattern"])
        var maxlines: Int? = nil
        if let m = try resolver.value("maxlines", override: overrides["maxlines"]) {
            guard let n = Int(m.value.trimmedWhitespace()) else {
                throw ConfigError(
                    .badValue, "maxlines must be a whole number, not '\(m.value)'", at: m.location,
                    hint: "write e.g. maxlines = 2")
            }
            maxlines = n
        }
        let journal = try resolver.lines("journalmatch", override: overrides["journalmatch"]) ?? []
        return FilterConfiguration(
            name: parsed.name, file: file, arguments: parsed.arguments, failregex: failregex,
            ignoreregex: ignoreregex, prefregex: prefregex, datepattern: datepattern, maxlines: maxlines,
            journalmatch: parseJournalMatch(journal), values: resolver.allValues())
    }

    /// Reads `directory/name` (or a path) with its `.local` and `.d/` files; returns the store and main file.
    func readDefinition(_ name: String, directory: String, kind: String) throws(ConfigError) -> (ConfigStore, String) {
        if name.contains("/") || name.hasSuffix(".conf") {
            let path = name.hasPrefix("/") ? name : Path.join(root, name)
            return (try ConfigStore.read(file: path, what: "\(kind) '\(name)'"), path)
        }
        let base = Path.join(Path.join(root, directory), name)
        let store = try ConfigStore.read(base: base, what: "\(kind) '\(name)'")
        return (store, store.files.first { $0 == base + ".conf" } ?? store.files.first ?? base + ".conf")
    }
}
