/// fail2ban's progressive ban time settings (`bantime.increment`, `bantime.factor`, …) as written.
public struct BanTimeIncrementSettings: Sendable, Hashable {
    /// `bantime.increment`: whether the ban time grows with each repeated ban.
    public var enabled: Bool
    /// `bantime.factor` (a number, default 1).
    public var factor: Double?
    /// `bantime.formula`, a Python expression (evaluated by the Jail module).
    public var formula: String?
    /// `bantime.multipliers`: white-space separated multipliers.
    public var multipliers: [Double]
    /// `bantime.maxtime`.
    public var maxtime: TimeSpan?
    /// `bantime.rndtime`.
    public var rndtime: TimeSpan?
    /// `bantime.overalljails`: count bans of the address in every jail.
    public var overalljails: Bool

    /// Settings with every field given (defaults: off).
    public init(
        enabled: Bool = false, factor: Double? = nil, formula: String? = nil, multipliers: [Double] = [],
        maxtime: TimeSpan? = nil, rndtime: TimeSpan? = nil, overalljails: Bool = false
    ) {
        self.enabled = enabled
        self.factor = factor
        self.formula = formula
        self.multipliers = multipliers
        self.maxtime = maxtime
        self.rndtime = rndtime
        self.overalljails = overalljails
    }
}

/// One jail of `jail.conf` / `jail.local` / `jail.d/`, with every value resolved.
public struct JailConfiguration: Sendable {
    /// The jail's name (its section name).
    public var name: String
    /// `enabled`.
    public var enabled: Bool
    /// `filter` as written after interpolation, e.g. `sshd[mode=normal]` (empty when none).
    public var filterSpec: String
    /// The resolved filter (with the jail's own regex/datepattern/maxlines/journalmatch overrides applied);
    /// nil for disabled jails or when `filter` is empty.
    public var filter: FilterConfiguration?
    /// `logpath`, one entry per line, globs not expanded (a trailing ` head`/` tail` word removed).
    public var logpath: [String]
    /// The `logpath` entries marked ` tail` (read from the end).
    public var logpathTail: Set<String>
    /// `backend` (auto, polling, pyinotify, systemd, …), possibly with arguments `systemd[journalflags=1]`.
    public var backend: String
    /// `maxretry`.
    public var maxretry: Int
    /// `maxmatches` (defaults to maxretry).
    public var maxmatches: Int
    /// `findtime`.
    public var findtime: TimeSpan
    /// `bantime` (negative: permanent).
    public var bantime: TimeSpan
    /// `bantime.increment` and friends.
    public var banTimeIncrement: BanTimeIncrementSettings
    /// `ignoreip`: addresses, networks or host names (white space or comma separated).
    public var ignoreip: [String]
    /// `ignoreself` (default true).
    public var ignoreself: Bool
    /// `ignorecommand` (empty when none).
    public var ignorecommand: String
    /// `usedns` (yes, warn, no, raw).
    public var usedns: String
    /// `maxlines` given in the jail (overrides the filter's).
    public var maxlines: Int?
    /// `logencoding` (auto or a charset name).
    public var logencoding: String
    /// `logtimezone` when given.
    public var logtimezone: String?
    /// `port`, `protocol`, `banaction`, `banaction_allports`, `chain`, `blocktype` when defined.
    public var port: String?
    /// `protocol`.
    public var `protocol`: String?
    /// `banaction`.
    public var banaction: String?
    /// `banaction_allports`.
    public var banactionAllports: String?
    /// `chain` (often the tag `<known/chain>`, resolved in the action).
    public var chain: String?
    /// `blocktype`.
    public var blocktype: String?
    /// `action`, one spec per entry (`iptables-multiport[port="ssh", protocol="tcp", chain="<known/chain>"]`).
    public var actions: [Spec]
    /// The actions resolved for this jail, in the order of `actions` (filled by `loadJails` for enabled jails).
    public var actionConfigurations: [ActionConfiguration] = []
    /// `journalmatch` given in the jail (overrides the filter's).
    public var journalmatch: String?
    /// Every option of the jail (own and DEFAULT) that resolves, after interpolation.
    public var values: [String: String]
    /// Where each of the jail's own options (or the DEFAULT one it inherits) was written.
    public var locations: [String: SourceLocation]

    /// The options a jail passes to its filter, replacing the filter's own values.
    public static let filterOverrideOptions = FilterConfiguration.definitionOptions

    /// A jail with fail2ban's defaults for everything not given (for tests and for jails built in code).
    public init(
        name: String, enabled: Bool = true, filterSpec: String = "", filter: FilterConfiguration? = nil,
        logpath: [String] = [], logpathTail: Set<String> = [], backend: String = "auto", maxretry: Int = 5,
        maxmatches: Int? = nil, findtime: TimeSpan = TimeSpan(seconds: 600), bantime: TimeSpan = TimeSpan(seconds: 600),
        banTimeIncrement: BanTimeIncrementSettings = BanTimeIncrementSettings(), ignoreip: [String] = [],
        ignoreself: Bool = true, ignorecommand: String = "", usedns: String = "warn", maxlines: Int? = nil,
        logencoding: String = "auto", logtimezone: String? = nil, port: String? = nil, protocol: String? = nil,
        banaction: String? = nil, banactionAllports: String? = nil, chain: String? = nil, blocktype: String? = nil,
        actions: [Spec] = [], actionConfigurations: [ActionConfiguration] = [], journalmatch: String? = nil,
        values: [String: String] = [:], locations: [String: SourceLocation] = [:]
    ) {
        self.name = name
        self.enabled = enabled
        self.filterSpec = filterSpec
        self.filter = filter
        self.logpath = logpath
        self.logpathTail = logpathTail
        self.backend = backend
        self.maxretry = maxretry
        self.maxmatches = maxmatches ?? maxretry
        self.findtime = findtime
        self.bantime = bantime
        self.banTimeIncrement = banTimeIncrement
        self.ignoreip = ignoreip
        self.ignoreself = ignoreself
        self.ignorecommand = ignorecommand
        self.usedns = usedns
        self.maxlines = maxlines
        self.logencoding = logencoding
        self.logtimezone = logtimezone
        self.port = port
        self.protocol = `protocol`
        self.banaction = banaction
        self.banactionAllports = banactionAllports
        self.chain = chain
        self.blocktype = blocktype
        self.actions = actions
        self.actionConfigurations = actionConfigurations
        self.journalmatch = journalmatch
        self.values = values
        self.locations = locations
    }
}

/// The outcome of reading every jail: the jails that resolved, and an error for each jail that did not.
public struct JailsLoadResult: Sendable {
    /// Jails in file order (enabled and disabled; disabled jails are resolved leniently, without filter).
    public var jails: [JailConfiguration]
    /// Errors by jail name, for enabled jails that could not be resolved (other jails still load), and under
    /// the key `""` an error that prevented reading the jail files at all.
    public var errors: [String: ConfigError]

    /// A result with jails and errors.
    public init(jails: [JailConfiguration] = [], errors: [String: ConfigError] = [:]) {
        self.jails = jails
        self.errors = errors
    }

    /// The enabled jails.
    public var enabled: [JailConfiguration] { jails.filter(\.enabled) }
}

extension ConfigTree {
    /// Reads `jail.conf`, `jail.d/*.conf`, `jail.local`, `jail.d/*.local` and resolves every jail.
    ///
    /// A jail that cannot be resolved (bad value, unknown filter, broken interpolation) gets an entry in
    /// `errors`; the other jails still load.
    public func loadJails() -> JailsLoadResult {
        let store: ConfigStore
        do {
            store = try ConfigStore.read(base: Path.join(root, "jail"), what: "jail configuration")
        } catch {
            return JailsLoadResult(jails: [], errors: ["": error])
        }
        var result = JailsLoadResult()
        for name in store.sectionOrder where name != "INCLUDES" {
            do {
                let jail = try resolveJail(name, store: store, strict: true)
                result.jails.append(jail)
            } catch {
                // Errors only count for enabled jails; fail2ban does not look further at disabled ones.
                if let lenient = try? resolveJail(name, store: store, strict: false), !lenient.enabled {
                    result.jails.append(lenient)
                } else {
                    result.errors[name] = error
                }
            }
        }
        return result
    }

    /// Resolves one jail of `store`. With `strict` false, the filter is not loaded and values are not checked
    /// beyond what is needed to know whether the jail is enabled.
    func resolveJail(_ name: String, store: ConfigStore, strict: Bool) throws(ConfigError) -> JailConfiguration {
        var interp = Interpolator(store: store)
        interp.fallback = builtinDefaults
        var values: [String: String] = [:]
        var locations: [String: SourceLocation] = [:]
        var names = store.options(in: ConfigStore.defaultSection)
        for option in store.options(in: name) where !names.contains(option) { names.append(option) }
        for option in names {
            if let v = try? interp.get(name, option) { values[option] = v }
            if let (raw, _) = interp.find(option, in: name) { locations[option] = raw.location }
        }

        /// The resolved value, throwing the interpolation error when it does not resolve.
        func get(_ option: String) throws(ConfigError) -> String? {
            if let v = values[option] { return v }
            return try interp.get(name, option)
        }
        func bool(_ option: String, default def: Bool) throws(ConfigError) -> Bool {
            guard let text = try get(option) else { return def }
            switch text.trimmedWhitespace().lowercased() {
            case "1", "yes", "true", "on": return true
            case "0", "no", "false", "off": return false
            default:
                throw ConfigError(
                    .badValue, "[\(name)] \(option) must be true or false, not '\(text)'", at: locations[option],
                    hint: "write true or false")
            }
        }
        func int(_ option: String) throws(ConfigError) -> Int? {
            guard let text = try get(option) else { return nil }
            guard let n = Int(text.trimmedWhitespace()) else {
                throw ConfigError(
                    .badValue, "[\(name)] \(option) must be a whole number, not '\(text)'", at: locations[option],
                    hint: "write e.g. \(option) = 5")
            }
            return n
        }
        func time(_ option: String) throws(ConfigError) -> TimeSpan? {
            guard let text = try get(option) else { return nil }
            do {
                return try TimeSpan.parse(text, location: locations[option])
            } catch {
                var e = error
                e.message = "[\(name)] \(option): " + e.message
                throw e
            }
        }
        func double(_ option: String) throws(ConfigError) -> Double? {
            guard let text = try get(option) else { return nil }
            // Swift's Double() also reads "nan", "inf" and 1e999: none of them is a usable number here.
            guard let d = Double(text.trimmedWhitespace()), d.isFinite, abs(d) <= 1e12 else {
                throw ConfigError(
                    .badValue, "[\(name)] \(option) must be a finite number (at most 10^12), not '\(text)'",
                    at: locations[option], hint: "write e.g. \(option) = 2")
            }
            return d
        }

        let enabled = try bool("enabled", default: false)
        let filterSpec = try get("filter")?.trimmedWhitespace() ?? ""
        let maxretry = strict ? try int("maxretry") ?? 3 : 3
        var jail = JailConfiguration(
            name: name, enabled: enabled, filterSpec: filterSpec,
            backend: (try? get("backend"))??.trimmedWhitespace() ?? "auto", maxretry: maxretry, port: values["port"],
            protocol: values["protocol"], banaction: values["banaction"],
            banactionAllports: values["banaction_allports"], chain: values["chain"], blocktype: values["blocktype"],
            values: values, locations: locations)
        guard strict else { return jail }

        if maxretry < 0 {
            throw ConfigError(
                .badValue, "[\(name)] maxretry must be 0 or more, not \(maxretry)", at: locations["maxretry"],
                hint: "write e.g. maxretry = 5")
        }
        jail.maxmatches = try int("maxmatches") ?? maxretry
        if jail.maxmatches < 0 {
            throw ConfigError(
                .badValue, "[\(name)] maxmatches must be 0 or more, not \(jail.maxmatches)",
                at: locations["maxmatches"], hint: "write e.g. maxmatches = 5")
        }
        jail.findtime = try time("findtime") ?? TimeSpan(seconds: 600)
        jail.bantime = try time("bantime") ?? TimeSpan(seconds: 600)
        jail.banTimeIncrement = BanTimeIncrementSettings(
            enabled: try bool("bantime.increment", default: false), factor: try double("bantime.factor"),
            formula: try get("bantime.formula"),
            multipliers: try get("bantime.multipliers").map { text throws(ConfigError) in
                var out: [Double] = []
                for word in text.split(whereSeparator: { $0.isWhitespace }) {
                    guard let d = Double(word), d.isFinite, abs(d) <= 1e12 else {
                        throw ConfigError(
                            .badValue,
                            "[\(name)] bantime.multipliers: '\(word)' is not a finite number (at most 10^12)",
                            at: locations["bantime.multipliers"], hint: "write e.g. bantime.multipliers = 1 2 4 8")
                    }
                    out.append(d)
                }
                return out
            } ?? [],
            maxtime: try time("bantime.maxtime"), rndtime: try time("bantime.rndtime"),
            overalljails: try bool("bantime.overalljails", default: false))
        if let text = try get("logpath") {
            for line in text.split(separator: "\n") {
                var path = line.trimmedWhitespace()
                guard !path.isEmpty else { continue }
                if let space = path.lastIndex(of: " ") {
                    let word = path[path.index(after: space)...]
                    if word == "tail" || word == "head" {
                        let rest = path[..<space].trimmedWhitespace()
                        if word == "tail" { jail.logpathTail.insert(rest) }
                        path = rest
                    }
                }
                jail.logpath.append(path)
            }
        }
        jail.ignoreip = (try get("ignoreip") ?? "").split(whereSeparator: { $0.isWhitespace || $0 == "," }).map(
            String.init)
        jail.ignoreself = try bool("ignoreself", default: true)
        jail.ignorecommand = try get("ignorecommand") ?? ""
        jail.usedns = try get("usedns")?.trimmedWhitespace() ?? "warn"
        jail.maxlines = try int("maxlines")
        jail.logencoding = try get("logencoding")?.trimmedWhitespace() ?? "auto"
        jail.logtimezone = try get("logtimezone")
        jail.journalmatch = try get("journalmatch")
        for item in Spec.splitList(try get("action") ?? "") {
            jail.actions.append(try Spec.parse(item, location: locations["action"]))
        }
        if enabled, !filterSpec.isEmpty {
            var overrides: [String: String] = [:]
            for option in JailConfiguration.filterOverrideOptions {
                if let v = try get(option) { overrides[option] = v }
            }
            do {
                jail.filter = try loadFilter(filterSpec, overrides: overrides)
            } catch {
                var e = error
                e.message = "[\(name)] filter '\(filterSpec)': " + e.message
                if e.location == nil { e.location = locations["filter"] }
                throw e
            }
        }
        if enabled {
            for spec in jail.actions {
                do {
                    jail.actionConfigurations.append(try loadAction(spec, jail: jail))
                } catch  where error.code == .notFound && JailConfiguration.isNativeBanAction(spec.name) {
                    // Portcullis bans natively in nftables; the action file is optional for these.
                } catch {
                    var e = error
                    let banaction = jail.banaction.map { Spec.splitList($0).first ?? $0 }?.trimmedWhitespace()
                    let isBanaction = banaction.map { (try? Spec.parse($0))?.name == spec.name } ?? false
                    if e.location == nil { e.location = isBanaction ? locations["banaction"] : locations["action"] }
                    if e.code == .notFound, isBanaction {
                        // Most often a banaction of another firewall (shorewall, ufw, pf, …) with no action.d file.
                        e.message = "[\(name)] banaction '\(spec.name)': " + e.message
                        e.hint =
                            "Portcullis bans with nftables: write banaction = nftables-multiport and "
                            + "banaction_allports = nftables-allports (iptables-* and firewallcmd-* are translated)"
                    }
                    throw e
                }
            }
        }
        return jail
    }
}

extension JailConfiguration {
    /// Ban actions Portcullis performs itself in nftables (their action.d file, when present, is not run).
    public static func isNativeBanAction(_ name: String) -> Bool {
        let n = name.lowercased()
        return n.hasPrefix("nftables") || n.hasPrefix("iptables") || n.hasPrefix("ip6tables")
            || n.hasPrefix("firewallcmd") || n == "portcullis"
    }
}
