import Configuration
import Control
import Core
import Filter
import Firewall
import Jail
import LogSource

/// Everything the daemon needs to run one jail, built from its `JailConfiguration` when the configuration loads.
/// Building it is where configuration mistakes surface, each naming the jail and the key.
public struct JailSetup: Sendable {
    /// The jail's name.
    public var name: String
    /// The resolved configuration.
    public var configuration: JailConfiguration
    /// Failure counting and ban length.
    public var policy: BanPolicy
    /// Addresses never banned.
    public var ignore: IgnoreList
    /// The compiled filter (shared; each reader makes its own processor).
    public var filter: CompiledFilter
    /// The native nftables rule, nil when the jail has no firewall action.
    public var firewall: JailFirewall?
    /// Actions from action.d run as commands.
    public var commandActions: [CommandAction]
    /// Log files (globs allowed); empty with the journal backend.
    public var logPaths: [String]
    /// `backend` parsed: files (with the wake-up method) or the journal (with its location).
    public var source: LogBackend
    /// Journal matches for the systemd backend (alternatives of FIELD=value lists).
    public var journalMatch: [[String]]
    /// Warnings to log at start (e.g. an iptables banaction served by nftables).
    public var warnings: [String]
    /// For a warning of `warnings`, the option it is about (`banaction`, `ignorecommand`), so that
    /// `portcullis check` can name the file and line.
    public var warningOptions: [String: String] = [:]
    /// `maxtracked`: most addresses with failures below `maxretry` the jail keeps (oldest forgotten first);
    /// nil = no limit (`maxtracked = 0`).
    public var maxTracked: Int? = JailSetup.defaultMaxTracked
    /// Log files added at run time with `head` (`set JAIL addlogpath FILE`): read from their beginning when
    /// nothing reads them yet, as fail2ban does; the others start at their end (or their stored position).
    public var headPaths: Set<String> = []
    /// The filter definition `filter` was compiled from (runtime changes edit it and compile again).
    public var filterDefinition: FilterConfiguration
    /// The options `filter` was compiled with.
    public var filterOptions: FilterOptions
    /// Values `get JAIL …` shows that `set JAIL …` may change at run time.
    public var settings: JailSettings
    /// The jail's actions as fail2ban lists them (`get JAIL actions`), with their properties.
    public var actionProperties: [ActionProperties] = []

    /// `maxtracked` when the configuration does not say: 200,000 addresses, about 60 MB at most
    /// (bench/bounds.sh measures the cost per address).
    public static let defaultMaxTracked = 200_000

    /// Builds a jail. `loadAction` loads a non-native action from action.d (nil = skip command actions).
    public static func build(
        _ jail: JailConfiguration, ports: PortResolver, now: @escaping @Sendable () -> Double,
        selfAddresses: @autoclosure () -> [IPAddress], resolve: (String) -> [IPAddress],
        loadAction: ((Spec, JailConfiguration) throws -> CommandAction?)? = nil
    ) throws(ConfigError) -> JailSetup {
        let name = jail.name
        let location = jail.locations["filter"]
        guard let filterConfiguration = jail.filter else {
            throw ConfigError(
                .notFound, "jail '\(name)': filter '\(jail.filterSpec)' could not be loaded", at: location)
        }
        let usedns = JailSettings.useDNS(jail.usedns)
        let options = filterOptions(jail, now: now)
        let filter: CompiledFilter
        do throws(FilterError) {
            filter = try CompiledFilter(filterConfiguration, options: options)
        } catch {
            throw ConfigError(.badValue, "jail '\(name)': \(error.message)", at: error.location ?? location)
        }

        let ignore: IgnoreList
        do {
            ignore = try IgnoreList(
                entries: jail.ignoreip, selfAddresses: jail.ignoreself ? selfAddresses() : [], resolve: resolve)
        } catch {
            throw ConfigError(.badValue, "jail '\(name)': \(error)", at: jail.locations["ignoreip"])
        }

        var increment: BanTimeIncrement? = nil
        let inc = jail.banTimeIncrement
        if inc.enabled {
            var formula: BanTimeFormula? = nil
            if let text = inc.formula, !text.isEmpty {
                do {
                    formula = try BanTimeFormula(text)
                } catch {
                    throw ConfigError(.badValue, "jail '\(name)': \(error)", at: jail.locations["bantime.formula"])
                }
            }
            increment = BanTimeIncrement(
                factor: inc.factor ?? 1, formula: formula, multipliers: inc.multipliers, maxTime: inc.maxtime?.seconds,
                randomTime: inc.rndtime?.seconds, overallJails: inc.overalljails)
        }
        // fail2ban keeps 5 matches per ticket unless `maxmatches` is set (the stock jail.conf sets it to maxretry).
        var policy = BanPolicy(
            maxRetry: jail.maxretry, findTime: jail.findtime.seconds, banTime: jail.bantime.seconds,
            increment: increment,
            maxMatches: jail.values["maxmatches"] == nil ? JailSettings.defaultMaxMatches : jail.maxmatches)
        policy.prefix = try prefixPolicy(jail)

        var warnings: [String] = []
        var warningOptions: [String: String] = [:]
        if !jail.ignorecommand.allSatisfy(\.isWhitespace) {
            // Running a command per failure would sit on the counting path; say so rather than ban silently.
            let text =
                "ignorecommand is not run by Portcullis: addresses it would spare can be banned "
                + "(list them in ignoreip instead)"
            warnings.append(text)
            warningOptions[text] = "ignorecommand"
        }
        var firewall: JailFirewall? = nil
        var commands: [CommandAction] = []
        for action in jail.actions {
            if JailConfiguration.isNativeBanAction(action.name) {
                guard firewall == nil else { continue }
                let args = action.arguments
                var banaction = action.name
                if let type = args["type"] { banaction += "[type=\(type)]" }
                do {
                    let (rule, warning) = try JailFirewall.fromSettings(
                        jail: name, banaction: banaction, port: args["port"] ?? jail.port ?? "0:65535",
                        protocol: args["protocol"] ?? jail.protocol ?? "tcp",
                        blocktype: args["blocktype"] ?? jail.blocktype ?? "reject",
                        banforward: args["banforward"] ?? jail.values["banforward"] ?? "auto", resolver: ports)
                    firewall = rule
                    if let warning {
                        warnings.append(warning)
                        let banaction = jail.banaction.flatMap { try? Spec.parse($0) }?.name
                        warningOptions[warning] = action.name == banaction ? "banaction" : "action"
                    }
                } catch {
                    // The line of the value at fault when the jail gives it, else the action line.
                    let option: String?
                    switch error.code {
                    case .unknownPort, .invalidPort: option = "port"
                    case .invalidProtocol: option = "protocol"
                    case .invalidBlockType: option = "blocktype"
                    case .unsupportedBanAction: option = "banaction"
                    case .invalidForwardBanning: option = "banforward"
                    default: option = nil
                    }
                    // The jail's own option, unless the action passes a value of its own.
                    let fromJail = option.map { args[$0] == nil || args[$0] == jail.values[$0] } ?? false
                    let at = (fromJail ? option.flatMap { jail.locations[$0] } : nil) ?? jail.locations["action"]
                    throw ConfigError(.badValue, error.message, at: at ?? jail.locations["port"])
                }
            } else if let loadAction {
                do {
                    if let command = try loadAction(action, jail) { commands.append(command) }
                } catch let error as ConfigError {
                    throw error
                } catch {
                    throw ConfigError(
                        .badValue, "jail '\(name)': action '\(action.name)': \(error)", at: jail.locations["action"])
                }
            }
        }
        let source: LogBackend
        do {
            source = try LogBackend(parsing: jail.backend)
        } catch {
            throw ConfigError(.badValue, "jail '\(name)': \(error.message)", at: jail.locations["backend"])
        }
        var maxTracked: Int? = defaultMaxTracked
        if let raw = jail.values["maxtracked"], case let text = String(raw.filter { $0 != " " && $0 != "\t" }),
            !text.isEmpty
        {
            guard let n = Int(text), n >= 0 else {
                throw ConfigError(
                    .badValue,
                    "jail '\(name)': maxtracked must be a whole number of addresses (0 = no limit), not '\(text)'",
                    at: jail.locations["maxtracked"], hint: "write e.g. maxtracked = 200000")
            }
            maxTracked = n == 0 ? nil : n
        }
        // Prefix bans need the jail's interval sets (only when escalation can happen, so other jails' tables stay
        // as they were).
        if policy.prefix.bans > 0, policy.prefix.prefix4 < 32 || policy.prefix.prefix6 < 128 {
            firewall?.prefixSets = true
        }
        var setup = JailSetup(
            name: name, configuration: jail, policy: policy, ignore: ignore, filter: filter, firewall: firewall,
            commandActions: commands, logPaths: source.isJournal ? [] : jail.logpath, source: source,
            journalMatch: filterConfiguration.journalmatch, warnings: warnings, filterDefinition: filterConfiguration,
            filterOptions: options, settings: JailSettings(jail, useDNS: usedns))
        setup.maxTracked = maxTracked
        setup.warningOptions = warningOptions
        setup.actionProperties = jail.actionConfigurations.map(ActionProperties.init)
        return setup
    }
}

extension JailSetup {
    /// The options the jail's filter is compiled with: its `usedns`, `logtimezone`, `datepattern`, `maxlines`.
    static func filterOptions(_ jail: JailConfiguration, now: @escaping @Sendable () -> Double) -> FilterOptions {
        // `usedns`: host names in log lines are resolved (yes/warn) or not (no/raw), as fail2ban does.
        let datePattern: String? = jail.values["datepattern"].flatMap { $0.isEmpty ? nil : $0 }
        var options = FilterOptions(
            timeZone: jail.logtimezone, now: now, datePattern: datePattern, maxLines: jail.maxlines)
        options.setDNS(JailSettings.useDNS(jail.usedns))
        return options
    }
}

extension LogBackend {
    /// True for the systemd journal.
    var isJournal: Bool {
        if case .journal = self { return true }
        return false
    }
}
