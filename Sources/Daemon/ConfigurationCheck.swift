import Configuration
import Core
import Filter
import Firewall
import Fleet
import Jail
import LogSource
import Policy

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// One problem `portcullis check` found: where it was written, what is wrong and what to do.
public struct CheckFinding: Sendable, Hashable, CustomStringConvertible {
    /// How bad it is.
    public enum Severity: String, Sendable, Hashable, Comparable {
        /// The daemon starts, but something does not work as written or puts the host at risk.
        case warning
        /// The daemon does not start, or a jail does not run or can never ban.
        case error

        public static func < (a: Severity, b: Severity) -> Bool { a == .warning && b == .error }
    }

    /// How bad it is.
    public var severity: Severity
    /// Where the offending value was written (nil when it comes from no file).
    public var location: SourceLocation?
    /// The jail concerned, if any.
    public var jail: String?
    /// The jails concerned when one finding stands for several (the same problem at the same place).
    public var jails: [String] = []
    /// What is wrong.
    public var message: String
    /// What to do (may be empty).
    public var hint: String

    /// A finding.
    public init(
        _ severity: Severity, _ message: String, at location: SourceLocation?, jail: String? = nil, hint: String = ""
    ) {
        self.severity = severity
        self.message = message
        self.location = location
        self.jail = jail
        self.hint = hint
    }

    /// `FILE:LINE: error: message (hint)`, like a compiler.
    public var description: String {
        var text = location.map { "\($0): " } ?? ""
        text += "\(severity.rawValue): \(message)"
        if !hint.isEmpty { text += " (\(hint))" }
        return text
    }

    /// The finding as a JSON object with stable keys: severity, file, line, jail, message, hint.
    public var json: JSON {
        .object([
            ("severity", .string(severity.rawValue)),
            ("file", location.map { .string($0.file) } ?? .null),
            ("line", location.map { .int($0.line) } ?? .null),
            ("jail", jail.map { .string($0) } ?? .null),
            ("jails", .array((jail.map { [$0] } ?? jails).map { .string($0) })),
            ("message", .string(message)),
            ("hint", .string(hint)),
        ])
    }
}

/// What `portcullis check` found in a configuration tree.
public struct CheckReport: Sendable {
    /// Every problem, fatal ones first, then per jail in file order.
    public var findings: [CheckFinding] = []
    /// The enabled jails, and how many of them build (would run).
    public var jailsEnabled = 0
    public var jailsResolved = 0
    /// The distinct filters the enabled jails use (`sshd[mode=aggressive]` counts apart from `sshd`), and how
    /// many of them load and compile.
    public var filters = 0
    public var filtersCompiled = 0
    /// The main configuration file read.
    public var mainFile: String?
    /// What the check found out that is not a problem but decides behaviour: which jails ban forwarded
    /// connections and why, what the host policy does with forwarded packets. Printed before the summary.
    public var notes: [String] = []

    /// Number of errors.
    public var errors: Int { findings.filter { $0.severity == .error }.count }
    /// Number of warnings.
    public var warnings: Int { findings.filter { $0.severity == .warning }.count }

    /// 0 clean, 1 warnings only, 2 errors.
    public var exitStatus: Int32 { errors > 0 ? 2 : (warnings > 0 ? 1 : 0) }

    /// `check: 12 jails enabled, 11 resolve; 10 filters, 10 compile; 1 error, 3 warnings`.
    public var summary: String {
        func n(_ count: Int, _ word: String) -> String { "\(count) \(word)\(count == 1 ? "" : "s")" }
        return "check: \(n(jailsEnabled, "jail")) enabled, \(jailsResolved) resolve; \(n(filters, "filter")), "
            + "\(filtersCompiled) compile; \(n(errors, "error")), \(n(warnings, "warning"))"
    }

    /// The report as JSON: `{"findings": [...], "summary": {...}, "status": N}`.
    public var json: JSON {
        .object([
            ("findings", .array(findings.map(\.json))),
            (
                "summary",
                .object([
                    ("jails_enabled", .int(jailsEnabled)),
                    ("jails_resolved", .int(jailsResolved)),
                    ("filters", .int(filters)), ("filters_compiled", .int(filtersCompiled)),
                    ("errors", .int(errors)), ("warnings", .int(warnings)),
                ])
            ),
            ("notes", .array(notes.map { .string($0) })),
            ("status", .int(Int(exitStatus))),
        ])
    }
}

/// `portcullis check`: loads a configuration tree exactly as a start does (`PortcullisDaemon.loadJails`, the
/// same main configuration, port resolver and action loader), so check and start cannot disagree, and adds
/// what a start would only find out later: log files that do not exist, the admin's own SSH address not
/// covered by `ignoreip`, `maxretry`/`findtime`/`bantime` values that cannot work, translated banactions.
///
/// ```swift
/// let report = ConfigurationCheck(configDirectory: "/etc/fail2ban").run()
/// for f in report.findings { print(f) }   // /etc/fail2ban/jail.conf:208: warning: jail 'sshd': banaction …
/// exit(report.exitStatus)                  // 0 clean, 1 warnings, 2 errors
/// ```
public struct ConfigurationCheck: Sendable {
    /// The tree (`-c`).
    public var configDirectory: String
    /// `/etc/services`, for port names.
    public var servicesPath: String
    /// The address the admin's SSH session comes from (`sshClientAddress(environment:)`), nil when none.
    public var sshClient: IPAddress?
    /// The clock the filters are compiled with.
    public var clock: @Sendable () -> Double
    /// Whether the host forwards (sysctls, Docker's chains), which decides `banforward = auto` and the host
    /// policy's `forward = auto`; nil when unknown (then the check says what each setting would do either way).
    public var forwarding: ForwardingState?

    /// A check of `configDirectory`.
    public init(
        configDirectory: String, servicesPath: String = "/etc/services", sshClient: IPAddress? = nil,
        forwarding: ForwardingState? = nil, clock: @escaping @Sendable () -> Double = { FilterClock.now() }
    ) {
        self.configDirectory = configDirectory
        self.servicesPath = servicesPath
        self.sshClient = sshClient
        self.forwarding = forwarding
        self.clock = clock
    }

    /// The client address of the SSH session this process runs in: the first word of `SSH_CONNECTION`
    /// (`CLIENT CPORT SERVER SPORT`), else of `SSH_CLIENT` (`CLIENT CPORT SPORT`).
    public static func sshClientAddress(environment: [String: String]) -> IPAddress? {
        for name in ["SSH_CONNECTION", "SSH_CLIENT"] {
            if let word = environment[name]?.split(separator: " ").first, let a = IPAddress(String(word)) { return a }
        }
        return nil
    }

    /// Runs every check.
    public func run() -> CheckReport {
        var report = CheckReport()
        let tree = ConfigTree(root: configDirectory)

        // The main configuration: a start stops on any error in it.
        var main: MainConfiguration? = nil
        do {
            main = try tree.loadMain()
            report.mainFile = main?.file
        } catch {
            report.findings.append(Self.finding(error, severity: .error))
        }
        if let main { report.findings += mainFindings(main) }

        let ports: PortResolver
        do {
            ports = try PortResolver(servicesPath: servicesPath)
        } catch {
            report.findings.append(
                CheckFinding(.error, error.message, at: nil, hint: "install netbase, or write port numbers"))
            ports = PortResolver(servicesText: "", source: servicesPath)
        }

        let loaded = PortcullisDaemon.loadJails(tree, ports: ports, clock: clock)
        for error in loaded.fatal {
            var f = Self.finding(error, severity: .error)
            f.hint = f.hint.isEmpty ? "a start refuses the whole configuration: fix this first" : f.hint
            report.findings.append(f)
        }
        let setups = Dictionary(loaded.setups.map { ($0.name, $0) }, uniquingKeysWith: { a, _ in a })
        let resolved = Dictionary(
            loaded.configurations.map { ($0.name, $0) }, uniquingKeysWith: { a, _ in a })

        // Jails in file order: those that resolved, then those whose section did not (they are not listed).
        var names = loaded.configurations.filter(\.enabled).map(\.name)
        for name in loaded.brokenErrors.keys.sorted() where !names.contains(name) { names.append(name) }
        report.jailsEnabled = names.count
        report.jailsResolved = names.filter { setups[$0] != nil }.count

        var filterVerdicts: [String: Bool] = [:]
        for name in names {
            let jail = resolved[name]
            var found: [CheckFinding] = []
            if let error = loaded.brokenErrors[name] {
                var f = Self.finding(error, severity: .error, jail: name)
                if f.location == nil { f.location = jail?.locations["enabled"] }
                f.hint =
                    f.hint.isEmpty ? "the jail does not start; the others do" : f.hint + "; the jail does not start"
                found.append(f)
            }
            if let jail {
                let filterFindings = filterProblems(jail)
                if !jail.filterSpec.isEmpty {
                    let ok = jail.filter != nil && filterFindings.isEmpty
                    filterVerdicts[jail.filterSpec] = (filterVerdicts[jail.filterSpec] ?? true) && ok
                }
                found += filterFindings
                found += firewallProblems(jail, ports: ports)
                found += timeProblems(jail, main: main)
            }
            if let setup = setups[name] {
                found += warnings(of: setup)
                found += logProblems(setup)
            }
            // The load's own error and the detailed probes often say the same thing: once is enough.
            for f in found
            where !report.findings.contains(where: { $0.message == f.message && $0.location == f.location }) {
                report.findings.append(f)
            }
        }
        report.findings = Self.merged(report.findings)
        if let sshClient {
            report.findings += sshFindings(sshClient, jails: names.compactMap { setups[$0] })
        }
        let running = names.compactMap { setups[$0] }
        if let main { report.findings += fleetFindings(main, jails: names) }
        report.findings += forwardFindings(running, notes: &report.notes)
        report.findings += policyFindings(tree, ports: ports, notes: &report.notes)
        if names.isEmpty && loaded.fatal.isEmpty {
            report.findings.append(
                CheckFinding(
                    .warning, "no jail is enabled: the daemon would watch nothing",
                    at: SourceLocation(file: tree.root + "/jail.conf", line: 0),
                    hint: "write enabled = true in the jails to use, in jail.local or jail.d/*.local"))
        }
        report.filters = filterVerdicts.count
        report.filtersCompiled = filterVerdicts.values.filter { $0 }.count
        return report
    }

    /// Findings that differ only in the jail (`jail 'a': X`, `jail 'b': X`, same place and hint) become one
    /// (`jails a, b: X`): a `[DEFAULT]` value that all jails inherit is reported once, at its line.
    static func merged(_ findings: [CheckFinding]) -> [CheckFinding] {
        struct Key: Hashable {
            var severity: CheckFinding.Severity
            var location: SourceLocation?
            var hint: String
            var rest: String
        }
        var out: [CheckFinding] = []
        var index: [Key: Int] = [:]
        for f in findings {
            guard let jail = f.jail, case let prefix = "jail '\(jail)': ", f.message.hasPrefix(prefix) else {
                out.append(f)
                continue
            }
            let key = Key(
                severity: f.severity, location: f.location, hint: f.hint,
                rest: String(f.message.dropFirst(prefix.count)))
            if let i = index[key] {
                var g = out[i]
                if let first = g.jail {
                    g.jails = [first]
                    g.jail = nil
                }
                g.jails.append(jail)
                g.message = "jails \(g.jails.joined(separator: ", ")): \(key.rest)"
                out[i] = g
            } else {
                index[key] = out.count
                out.append(f)
            }
        }
        return out
    }

    /// A time for a person: `1w`, `2d`, `90m`, `45s`.
    static func span(_ seconds: Double) -> String {
        let s = Int(saturating: seconds)
        for (unit, size) in [("w", 604_800), ("d", 86_400), ("h", 3_600), ("m", 60)] where s >= size && s % size == 0 {
            return "\(s / size)\(unit)"
        }
        return "\(TimeSpan(seconds: seconds))s"
    }

    // MARK: The checks

    static func finding(_ error: ConfigError, severity: CheckFinding.Severity, jail: String? = nil) -> CheckFinding {
        CheckFinding(severity, error.message, at: error.location, jail: jail, hint: error.hint)
    }

    /// `[Definition]` of the main configuration: a database that forgets bans, metrics open beyond loopback.
    func mainFindings(_ main: MainConfiguration) -> [CheckFinding] {
        var out: [CheckFinding] = []
        if let metrics = main.metrics, !metrics.isLoopback {
            out.append(
                CheckFinding(
                    .warning, "metrics = \(metrics) serves /metrics to other hosts (jail names, ban counts)",
                    at: main.locations["metrics"],
                    hint:
                        "keep 127.0.0.1:PORT and let a local Prometheus or a reverse proxy with access control read it")
            )
        }
        return out
    }

    /// Every regex of the jail's filter that does not compile (the load reports only the first).
    func filterProblems(_ jail: JailConfiguration) -> [CheckFinding] {
        guard jail.enabled, let filter = jail.filter else { return [] }
        let options = JailSetup.filterOptions(jail, now: clock)
        return CompiledFilter.problems(filter, options: options).map { error in
            CheckFinding(
                .error, "jail '\(jail.name)': \(error.message)", at: error.location ?? jail.locations["filter"],
                jail: jail.name, hint: "the jail does not start")
        }
    }

    /// Banactions and ports: a translated (iptables-*, firewallcmd-*) or unknown banaction, every port name
    /// that does not resolve.
    func firewallProblems(_ jail: JailConfiguration, ports: PortResolver) -> [CheckFinding] {
        var out: [CheckFinding] = []
        let banaction = jail.banaction.flatMap { try? Spec.parse($0) }?.name
        var native = false
        for action in jail.actions {
            guard JailConfiguration.isNativeBanAction(action.name) else { continue }
            native = true
            let args = action.arguments
            let where_ = action.name == banaction ? jail.locations["banaction"] : jail.locations["action"]
            var spec = action.name
            if let type = args["type"] { spec += "[type=\(type)]" }
            do {
                _ = try BanActionMapping(banaction: spec, jail: jail.name)
            } catch {
                out.append(
                    CheckFinding(
                        .error, error.message, at: where_, jail: jail.name,
                        hint: "write banaction = nftables-multiport; the jail does not start"))
                continue
            }
            // Each item on its own, so every unknown name is listed (the load stops at the first).
            let portText = args["port"] ?? jail.port ?? "0:65535"
            let fromJail = args["port"] == nil || args["port"] == jail.values["port"]
            let portWhere = fromJail ? jail.locations["port"] : jail.locations["action"]
            let items = portText.split(whereSeparator: { $0 == "," || $0 == " " || $0 == "\t" || $0 == "\n" })
            for item in items {
                do {
                    _ = try ports.resolve(String(item), jail: jail.name)
                } catch {
                    out.append(
                        CheckFinding(
                            .error, error.message, at: portWhere ?? where_, jail: jail.name,
                            hint: "the jail does not start"))
                }
            }
        }
        if !native, let banaction, jail.actions.contains(where: { $0.name == banaction }) {
            out.append(
                CheckFinding(
                    .warning,
                    "jail '\(jail.name)': banaction '\(banaction)' is not a firewall Portcullis drives: its action.d "
                        + "commands run as a shell action and nothing is banned in nftables",
                    at: jail.locations["banaction"], jail: jail.name,
                    hint: "write banaction = nftables-multiport (and banaction_allports = nftables-allports)"))
        }
        return out
    }

    /// `maxretry`, `findtime`, `bantime` that cannot work together.
    func timeProblems(_ jail: JailConfiguration, main: MainConfiguration?) -> [CheckFinding] {
        var out: [CheckFinding] = []
        let name = jail.name
        let findtime = jail.findtime.seconds
        let bantime = jail.bantime.seconds
        if findtime < 0 {
            out.append(
                CheckFinding(
                    .error, "jail '\(name)': findtime \(Self.span(findtime)) is negative: no failure is ever inside it",
                    at: jail.locations["findtime"], jail: name, hint: "write e.g. findtime = 10m"))
        } else if findtime == 0, jail.maxretry > 1 {
            out.append(
                CheckFinding(
                    .error,
                    "jail '\(name)': maxretry = \(jail.maxretry) can never be reached with findtime = 0: failures "
                        + "only count within findtime of each other",
                    at: jail.locations["findtime"] ?? jail.locations["maxretry"], jail: name,
                    hint: "write e.g. findtime = 10m, or maxretry = 1 to ban at the first failure"))
        } else if findtime > 0, findtime < 1, jail.maxretry > 1 {
            out.append(
                CheckFinding(
                    .warning,
                    "jail '\(name)': findtime \(findtime) s is shorter than a second, finer than log time stamps: "
                        + "maxretry = \(jail.maxretry) is reached only by failures logged within the same second",
                    at: jail.locations["findtime"], jail: name, hint: "write e.g. findtime = 10m"))
        }
        if jail.maxretry <= 0 {
            out.append(
                CheckFinding(
                    .warning, "jail '\(name)': maxretry = \(jail.maxretry) bans at the first failure, as 1 does",
                    at: jail.locations["maxretry"], jail: name, hint: "write maxretry = 1 to say so, or e.g. 5"))
        }
        if bantime == 0 {
            out.append(
                CheckFinding(
                    .error, "jail '\(name)': bantime = 0 lifts every ban at once: the jail never blocks anyone",
                    at: jail.locations["bantime"], jail: name, hint: "write e.g. bantime = 1h, or -1 for permanent"))
        }
        if let maxtime = jail.banTimeIncrement.maxtime?.seconds, jail.banTimeIncrement.enabled, bantime > 0,
            maxtime > 0, maxtime < bantime
        {
            out.append(
                CheckFinding(
                    .warning,
                    "jail '\(name)': bantime.maxtime \(Self.span(maxtime)) is shorter than bantime "
                        + "\(Self.span(bantime)): every ban is cut to bantime.maxtime",
                    at: jail.locations["bantime.maxtime"], jail: name,
                    hint: "make bantime.maxtime longer than bantime"))
        }
        if let main, main.dbfile.lowercased() != "none", main.dbfile != ":memory:", bantime > 0 {
            let purge = main.dbpurgeage.seconds
            let longest = jail.banTimeIncrement.enabled ? (jail.banTimeIncrement.maxtime?.seconds ?? bantime) : bantime
            if purge > 0, longest > purge {
                out.append(
                    CheckFinding(
                        .warning,
                        "jail '\(name)': bans of up to \(Self.span(longest)) outlive dbpurgeage = "
                            + "\(main.dbpurgeageText) (\(main.file)): the store forgets them after that, so a restart "
                            + "drops them early",
                        at: jail.locations["bantime"], jail: name,
                        hint: "raise dbpurgeage in the main configuration's .local above the longest bantime"))
            }
        }
        return out
    }

    /// The load's warnings (iptables banaction translated, ignorecommand not run), with the file and line.
    func warnings(of setup: JailSetup) -> [CheckFinding] {
        let jail = setup.configuration
        return setup.warnings.map { text in
            let option = setup.warningOptions[text]
            var hint = ""
            switch option {
            case "banaction":
                hint =
                    "write banaction = nftables-multiport and banaction_allports = nftables-allports in [DEFAULT] "
                    + "of jail.local to say what happens"
            case "action": hint = "name an nftables-* action to say what happens"
            default: break
            }
            let message = text.hasPrefix("jail '") ? text : "jail '\(setup.name)': \(text)"
            return CheckFinding(
                .warning, message, at: option.flatMap { jail.locations[$0] } ?? jail.locations["enabled"],
                jail: setup.name, hint: hint)
        }
    }

    /// Log files that do not exist (globs that match nothing), with the journal hint where the jail's filter
    /// can read the journal (Debian 12 logs sshd only there unless rsyslog is installed).
    func logProblems(_ setup: JailSetup) -> [CheckFinding] {
        guard case .files(let wake) = setup.source else { return [] }
        let jail = setup.configuration
        let location = jail.locations["logpath"] ?? jail.locations["enabled"]
        let missing = setup.logPaths.filter { !Self.exists($0) }
        guard !missing.isEmpty else { return [] }
        let hasJournalMatch = !setup.journalMatch.isEmpty
        // SourceSet's own rule: with `auto`, a jail none of whose files exists reads the journal.
        let fallsBack = wake == .auto && SourceSet.noneExist(setup.logPaths)
        return missing.map { path in
            let what = path.contains(where: { "*?[".contains($0) }) ? "matches no file" : "does not exist"
            var message = "jail '\(setup.name)': log file \(path) \(what)"
            var hint: String
            if fallsBack {
                message +=
                    hasJournalMatch
                    ? "; with backend = auto the jail reads the systemd journal instead"
                    : "; with backend = auto the jail reads the whole systemd journal instead (its filter has no journalmatch)"
                hint =
                    hasJournalMatch
                    ? "on Debian 12 \(setup.name) logs only to the journal unless rsyslog is installed: write "
                        + "backend = systemd in [\(setup.name)] of jail.local to say so"
                    : "point logpath at the file the service writes, or write backend = systemd with a journalmatch"
            } else {
                message += "; the jail reads nothing from it until it appears"
                hint =
                    hasJournalMatch
                    ? "fix logpath, or write backend = systemd in [\(setup.name)] of jail.local if the service logs "
                        + "to the journal (Debian 12 sshd does)"
                    : "fix logpath"
            }
            return CheckFinding(.warning, message, at: location, jail: setup.name, hint: hint)
        }
    }

    /// A path exists, or a glob matches something.
    static func exists(_ path: String) -> Bool {
        guard path.contains(where: { "*?[".contains($0) }) else { return access(path, F_OK) == 0 }
        var g = glob_t()
        defer { globfree(&g) }
        return glob(path, 0, nil, &g) == 0 && g.gl_pathc > 0
    }

    /// `[fleet]` of the main configuration: what a start would refuse (no url or name, a bad value, no database
    /// for the outbox), and shared jails that are not enabled here.
    func fleetFindings(_ main: MainConfiguration, jails: [String]) -> [CheckFinding] {
        let configuration: FleetConfiguration?
        do {
            configuration = try FleetConfiguration.parse(main.values)
        } catch {
            return [
                CheckFinding(
                    .error, error.detail,
                    at: error.place.flatMap(Self.location) ?? main.locations["fleet.url"]
                        ?? SourceLocation(file: main.file, line: 0),
                    hint: "the daemon does not start with this [fleet]")
            ]
        }
        guard let configuration else { return [] }
        var out: [CheckFinding] = []
        let url = main.values["fleet.@url"].flatMap(Self.location) ?? SourceLocation(file: main.file, line: 0)
        let db = String(main.dbfile.filter { !$0.isWhitespace }).lowercased()
        if db.isEmpty || db == "none" || db == ":memory:" {
            out.append(
                CheckFinding(
                    .error, "[fleet] needs the database (dbfile) for its outbox, and dbfile = \(main.dbfile)",
                    at: main.locations["dbfile"] ?? url, hint: "set dbfile to a file, or remove [fleet]"))
        }
        if let problem = FleetService.clientLibraryProblem {
            out.append(CheckFinding(.error, problem, at: url, hint: "the daemon cannot reach the fleet without it"))
        }
        let place = main.values["fleet.@jails"].flatMap(Self.location) ?? url
        for jail in configuration.jails where !jails.contains(jail) {
            out.append(
                CheckFinding(
                    .warning,
                    "[fleet] jails lists '\(jail)', which is not an enabled jail here: nothing is shared from it",
                    at: place, hint: "enable the jail or remove it from the list"))
        }
        return out
    }

    /// `FILE:LINE` as `MainConfiguration.values` keeps a place.
    static func location(_ text: String) -> SourceLocation? {
        guard let colon = text.lastIndex(of: ":"), let line = Int(text[text.index(after: colon)...]) else { return nil }
        return SourceLocation(file: String(text[..<colon]), line: line)
    }

    /// Which jails' bans also refuse forwarded connections (`banforward`), as a start on this host would decide
    /// it; a warning for `banforward = no` on a host that forwards (a banned address still reaches forwarded
    /// services such as Docker's published ports).
    func forwardFindings(_ jails: [JailSetup], notes: inout [String]) -> [CheckFinding] {
        let rules = jails.compactMap { setup in setup.firewall.map { (setup, $0) } }
        guard !rules.isEmpty else { return [] }
        var out: [CheckFinding] = []
        var yes: [String] = []
        var no: [String] = []
        var auto: [String] = []
        for (setup, rule) in rules {
            switch rule.banForward {
            case .yes: yes.append(setup.name)
            case .no:
                no.append(setup.name)
                if let state = forwarding, state.forwards {
                    out.append(
                        CheckFinding(
                            .warning,
                            "jail '\(setup.name)': banforward = no while this host forwards (\(state)): a banned "
                                + "address still reaches forwarded services (Docker's published ports, routed hosts)",
                            at: setup.configuration.locations["banforward"], jail: setup.name,
                            hint: "remove banforward = no (auto follows the host's forwarding)"))
                }
            case .auto: auto.append(setup.name)
            }
        }
        func list(_ names: [String]) -> String { names.joined(separator: ", ") }
        if let state = forwarding {
            if state.forwards { yes += auto } else { no += auto }
            var text = "forwarding: \(state): "
            text +=
                yes.isEmpty
                ? "no jail bans forwarded connections" : "bans refuse forwarded connections too in \(list(yes))"
            if !yes.isEmpty && !no.isEmpty { text += "; " }
            if !no.isEmpty && !yes.isEmpty { text += "only connections to this host in \(list(no))" }
            if !auto.isEmpty {
                text += " (banforward = auto: \(state.forwards ? "the host forwards" : "the host does not forward"))"
            }
            notes.append(text)
        } else {
            var parts: [String] = []
            if !auto.isEmpty {
                parts.append("\(list(auto)): as the host's forwarding decides at start (banforward = auto)")
            }
            if !yes.isEmpty { parts.append("\(list(yes)): always (banforward = yes)") }
            if !no.isEmpty { parts.append("\(list(no)): never (banforward = no)") }
            notes.append("forwarding: not read; bans refuse forwarded connections in " + parts.joined(separator: "; "))
        }
        return out
    }

    /// The host policy (`firewall.conf`, `.local`, `firewall.d/`) when the tree has one: what `firewall plan`
    /// would refuse, and what the policy does with forwarded packets on this host.
    func policyFindings(_ tree: ConfigTree, ports: PortResolver, notes: inout [String]) -> [CheckFinding] {
        let root = tree.root
        guard
            Self.exists(root + "/firewall.conf") || Self.exists(root + "/firewall.local")
                || Self.exists(root + "/firewall.d")
        else { return [] }
        let policy: HostPolicy
        do {
            policy = try PolicyLoader.load(tree: tree, services: ports)
        } catch {
            var f = Self.finding(error, severity: .error)
            f.hint = f.hint.isEmpty ? "portcullis firewall plan refuses the host policy" : f.hint
            return [f]
        }
        let place = policy.forwardLocation ?? policy.files.first.map { SourceLocation(file: $0, line: 0) }
        let docker = forwarding?.docker ?? false
        let forwards = forwarding?.forwards
        let effect: String
        switch policy.forward {
        case .auto:
            switch forwards {
            case true?: effect = "no forward chain: the host forwards, so Docker or the router decide"
            case false?: effect = "forwarded packets are rejected (the host does not forward)"
            case nil: effect = "no forward chain if the host forwards, else forwarded packets are rejected"
            }
        case .none: effect = "no forward chain: forwarding is left to whoever set it up"
        case .reject: effect = "forwarded packets other than replies are rejected"
        case .drop: effect = "forwarded packets other than replies are dropped"
        case .accept: effect = "forwarded packets are accepted by Portcullis's table"
        }
        notes.append("host policy: forward = \(policy.forward.rawValue): \(effect)")
        if docker && (policy.forward == .reject || policy.forward == .drop) {
            return [
                CheckFinding(
                    .warning,
                    "the host policy's forward = \(policy.forward.rawValue) refuses the traffic of Docker's containers "
                        + "and published ports (Docker's chains are loaded)",
                    at: place, hint: "write forward = auto (Docker decides) or accept")
            ]
        }
        return []
    }

    /// The admin's SSH address against every jail's `ignoreip` (and `ignoreself`): one finding per place
    /// where the jails that would ban it take their `ignoreip` from.
    func sshFindings(_ address: IPAddress, jails: [JailSetup]) -> [CheckFinding] {
        let exposed = jails.filter { !$0.ignore.contains(address) }
        guard !exposed.isEmpty else { return [] }
        var groups: [(location: SourceLocation?, jails: [String])] = []
        for setup in exposed {
            let location = setup.configuration.locations["ignoreip"] ?? setup.configuration.locations["enabled"]
            if let i = groups.firstIndex(where: { $0.location == location }) {
                groups[i].jails.append(setup.name)
            } else {
                groups.append((location, [setup.name]))
            }
        }
        return groups.map { group in
            let list = group.jails.joined(separator: ", ")
            return CheckFinding(
                .warning,
                "your SSH session comes from \(address), which ignoreip does not cover in "
                    + "\(group.jails.count == 1 ? "jail" : "jails") \(list): a few failed logins from there "
                    + "would lock you out",
                at: group.location, jail: group.jails.count == 1 ? group.jails[0] : nil,
                hint: "add \(address) (or its network) to ignoreip in [DEFAULT] of jail.local")
        }
    }
}
