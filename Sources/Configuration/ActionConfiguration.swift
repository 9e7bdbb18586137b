/// An action definition (`action.d/NAME.conf` + `.local` + `.d/`) resolved for one jail.
///
/// Commands have every static tag substituted (arguments, `[Init]`, the jail's options, `[Definition]`
/// helpers); runtime tags (`<ip>`, `<failures>`, `<bantime>`, `<matches>` …) and tags that have a per-family
/// variant in `[Init?family=inet6]` are left for the daemon to fill in at ban time, as fail2ban does.
public struct ActionConfiguration: Sendable {
    /// The action's name within the jail (fail2ban's `actname`): the file name, or `file-suffix` when the
    /// action was given another `name` (so one jail can use the same action twice).
    public var name: String
    /// The action file's name as referenced (`iptables-multiport`).
    public var file: String
    /// The path of the main `.conf` file.
    public var path: String
    /// The spec's arguments, plus `name` (defaults to the jail's name) and `actname`.
    public var arguments: [String: String]
    /// `actionstart`.
    public var actionstart: ConfigValue? { commands["actionstart"] }
    /// `actionstop`.
    public var actionstop: ConfigValue? { commands["actionstop"] }
    /// `actioncheck`.
    public var actioncheck: ConfigValue? { commands["actioncheck"] }
    /// `actionban`.
    public var actionban: ConfigValue? { commands["actionban"] }
    /// `actionunban`.
    public var actionunban: ConfigValue? { commands["actionunban"] }
    /// `actionflush`.
    public var actionflush: ConfigValue? { commands["actionflush"] }
    /// Every command option the file defines (`actionstart`, `actionstop`, `actionflush`, `actionreload`,
    /// `actioncheck`, `actionrepair`, `actionban`, `actionprolong`, `actionreban`, `actionunban`), resolved.
    public var commands: [String: ConfigValue]
    /// `actionstart_on_demand`, `actionrepair_on_unban`, `norestored` when given.
    public var flags: [String: Bool]
    /// Values for the runtime tag substitution: `[Init]` (interpolated, tags kept) overridden by the arguments.
    public var tags: [String: String]
    /// Per-condition tag values, e.g. `["family=inet6": ["iptables": "ip6tables <lockingopt>"]]`.
    public var conditionalTags: [String: [String: String]]
    /// Every resolved option of the file (DEFAULT, `[Definition]`, `[Init]`, arguments).
    public var values: [String: String]

    /// An action with every field given (for tests and actions built in code).
    public init(
        name: String, file: String, path: String = "", arguments: [String: String] = [:],
        commands: [String: ConfigValue] = [:], flags: [String: Bool] = [:], tags: [String: String] = [:],
        conditionalTags: [String: [String: String]] = [:], values: [String: String] = [:]
    ) {
        self.name = name
        self.file = file
        self.path = path
        self.arguments = arguments
        self.commands = commands
        self.flags = flags
        self.tags = tags
        self.conditionalTags = conditionalTags
        self.values = values
    }

    /// The command options fail2ban reads from `[Definition]`.
    public static let commandOptions = [
        "actionstart", "actionstop", "actionflush", "actionreload", "actioncheck", "actionrepair", "actionban",
        "actionprolong", "actionreban", "actionunban",
    ]
    /// The boolean options fail2ban reads from `[Definition]`.
    public static let flagOptions = ["actionstart_on_demand", "actionrepair_on_unban", "norestored"]
}

extension ConfigTree {
    /// Reads and resolves an action for `jail`.
    ///
    /// - Parameters:
    ///   - spec: `iptables-multiport[port="ssh", protocol=tcp]`, or a path to a `.conf` file.
    ///   - jail: the jail using it; its name, options and values feed the action's tags.
    public func loadAction(_ spec: String, jail: JailConfiguration) throws(ConfigError) -> ActionConfiguration {
        try loadAction(Spec.parse(spec, location: jail.locations["action"]), jail: jail)
    }

    /// Reads and resolves an already parsed action spec for `jail`.
    public func loadAction(_ spec: Spec, jail: JailConfiguration) throws(ConfigError) -> ActionConfiguration {
        let fileName = spec.name
        if !fileName.contains("/"), !FileSystem.isFile(Path.join(root, "action.d/\(fileName).conf")),
            !FileSystem.isFile(Path.join(root, "action.d/\(fileName).local")),
            FileSystem.isFile(Path.join(root, "action.d/\(fileName).py"))
        {
            throw ConfigError(
                .notFound, "[\(jail.name)] action '\(fileName)' is a Python action, which Portcullis does not run",
                at: jail.locations["action"], hint: "use a command action (.conf) instead")
        }
        let (store, path) = try readDefinition(fileName, directory: "action.d", kind: "action")

        var arguments = spec.arguments
        if arguments["name"] == nil { arguments["name"] = jail.name }
        if arguments["actname"] == nil {
            let given = arguments["name"]!
            if given == jail.name {
                arguments["actname"] = Path.base(of: fileName)
            } else {
                let suffix = given.hasPrefix(jail.name + "-") ? String(given.dropFirst(jail.name.count + 1)) : given
                arguments["actname"] = Path.base(of: fileName) + "-" + suffix
            }
        }

        // Per-family variants: their tags are left for the daemon.
        var conditional: [String: [String: String]] = [:]
        var ignored: Set<String> = ["bantime"]
        var plain = Interpolator(store: store)
        plain.fallback = builtinDefaults
        for section in store.sectionOrder where section.hasPrefix("Init?") {
            let condition = String(section.dropFirst("Init?".count))
            for option in store.options(in: section) {
                conditional[condition, default: [:]][option] = try plain.get(section, option) ?? ""
                ignored.insert(option)
            }
        }

        let jailOptions = jail.actionTagValues()
        var resolver = try DefinitionResolver(
            store: store, arguments: arguments, extraTags: jailOptions, extraVars: jailOptions, ignored: ignored,
            fallback: builtinDefaults)
        var commands: [String: ConfigValue] = [:]
        var flags: [String: Bool] = [:]
        do throws(ConfigError) {
            for option in ActionConfiguration.commandOptions {
                if let v = try resolver.value(option) { commands[option] = v }
            }
            for option in ActionConfiguration.flagOptions {
                guard let v = try resolver.value(option) else { continue }
                switch v.value.trimmedWhitespace().lowercased() {
                case "1", "yes", "true", "on": flags[option] = true
                case "0", "no", "false", "off": flags[option] = false
                default:
                    throw ConfigError(
                        .badValue, "\(option) must be true or false, not '\(v.value)'", at: v.location,
                        hint: "write true or false")
                }
            }
        } catch {
            var e = error
            e.message = "[\(jail.name)] action '\(fileName)': " + e.message
            if e.location == nil { e.location = jail.locations["action"] }
            throw e
        }
        var tags = resolver.initValues
        for (k, v) in arguments { tags[k] = v }
        for option in ActionConfiguration.commandOptions + ActionConfiguration.flagOptions { tags[option] = nil }
        return ActionConfiguration(
            name: arguments["actname"]!, file: fileName, path: path, arguments: arguments, commands: commands,
            flags: flags, tags: tags, conditionalTags: conditional, values: resolver.allValues())
    }
}

extension JailConfiguration {
    /// The jail's options as fail2ban hands them to its actions (`<logpath>`, `<name>` …): the options of
    /// fail2ban's jail schema that are set, typed values written as Python prints them (`True`, `5`).
    /// `bantime` is left out: `<bantime>` is a runtime tag (the ban's actual length).
    func actionTagValues() -> [String: String] {
        var out: [String: String] = [:]
        let strings = [
            "findtime", "bantime.factor", "bantime.formula", "bantime.multipliers", "bantime.maxtime",
            "bantime.rndtime", "ignorecommand", "ignoreip", "ignorecache", "logtimezone", "logencoding", "logpath",
            "usedns", "prefregex", "ignoreregex", "failregex", "datepattern", "journalmatch",
        ]
        for key in strings { if let v = values[key] { out[key] = v } }
        out["backend"] = backend
        out["filter"] = values["filter"] ?? ""
        out["action"] = values["action"] ?? ""
        out["enabled"] = enabled ? "True" : "False"
        for key in ["bantime.increment", "bantime.overalljails", "ignoreself"] where values[key] != nil {
            let on: Bool
            switch key {
            case "bantime.increment": on = banTimeIncrement.enabled
            case "bantime.overalljails": on = banTimeIncrement.overalljails
            default: on = ignoreself
            }
            out[key] = on ? "True" : "False"
        }
        if values["maxretry"] != nil { out["maxretry"] = String(maxretry) }
        if values["maxmatches"] != nil { out["maxmatches"] = String(maxmatches) }
        if let maxlines { out["maxlines"] = String(maxlines) }
        return out
    }
}
