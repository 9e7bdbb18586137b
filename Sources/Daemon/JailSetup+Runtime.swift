import Configuration
import Control
import Core
import Filter
import Jail
import LogSource

extension JailSetup {
    /// A jail as `add NAME BACKEND` creates it: fail2ban's defaults (maxretry 3, findtime and bantime 600), no
    /// regex, no log, no action; `set NAME …` configures it and `start NAME` starts it.
    static func added(
        name: String, backend: String, now: @escaping @Sendable () -> Double, selfAddresses: [IPAddress]
    ) -> Result<JailSetup, ControlError> {
        let source: LogBackend
        do {
            source = try LogBackend(parsing: backend)
        } catch {
            return .failure(
                ControlError(
                    .invalidArgument,
                    "Unknown backend \(backend). Must be among ['pyinotify', 'gamin', 'polling', 'systemd'] or 'auto'"))
        }
        let definition = FilterConfiguration(name: name, file: "")
        var options = FilterOptions(now: now)
        options.setDNS("warn")
        let filter: CompiledFilter
        do {
            filter = try CompiledFilter(definition, options: options)
        } catch {
            return .failure(ControlError(.failed, "cannot set up the filter of \(name): \(error.message)"))
        }
        let configuration = JailConfiguration(
            name: name, backend: backend, maxretry: 3, maxmatches: JailSettings.defaultMaxMatches)
        let ignore = IgnoreList(selfAddresses: selfAddresses)
        return .success(
            JailSetup(
                name: name, configuration: configuration,
                policy: BanPolicy(maxRetry: 3, findTime: 600, banTime: 600, maxMatches: JailSettings.defaultMaxMatches),
                ignore: ignore, filter: filter, firewall: nil, commandActions: [], logPaths: [], source: source,
                journalMatch: [], warnings: [], filterDefinition: definition, filterOptions: options,
                settings: JailSettings(backend: backend)))
    }

    /// Compiles the filter again after `edit` changed its definition or options. Nothing changes when the new
    /// filter does not compile; the error says why.
    mutating func recompile(_ edit: (inout FilterConfiguration, inout FilterOptions) -> Void) -> FilterError? {
        var definition = filterDefinition
        var options = filterOptions
        edit(&definition, &options)
        do {
            filter = try CompiledFilter(definition, options: options)
        } catch {
            return error
        }
        filterDefinition = definition
        filterOptions = options
        return nil
    }

    /// True when the jail reads the systemd journal.
    var readsJournal: Bool { source.isJournal }

    /// The ban policy with `bantime.*` as `settings.banTimeExtra` says (fail2ban's rules: `increment` switches it,
    /// `multipliers` win over `formula`). A formula that does not parse is refused.
    static func increment(_ extra: [(key: String, value: ControlValue)]) -> Result<BanTimeIncrement?, ControlError> {
        func text(_ key: String) -> String? {
            guard let v = extra.first(where: { $0.key == key })?.value else { return nil }
            switch v {
            case .string(let s): return s
            case .int(let i): return String(i)
            case .double(let d): return String(d)
            case .bool(let b): return b ? "true" : "false"
            default: return nil
            }
        }
        guard case .bool(true)? = extra.first(where: { $0.key == "increment" })?.value else { return .success(nil) }
        var formula: BanTimeFormula? = nil
        if let f = text("formula"), !f.isEmpty {
            do {
                formula = try BanTimeFormula(f)
            } catch {
                return .failure(ControlError(.syntaxError, "invalid syntax (~inline-conf-expr~, line 1)"))
            }
        }
        let factor = text("factor").flatMap(Double.init).flatMap { $0.isFinite && abs($0) <= 1e12 ? $0 : nil } ?? 1
        let multipliers = (text("multipliers") ?? "").split(separator: " ").compactMap { Double($0) }.filter(\.isFinite)
        func seconds(_ key: String) -> Double? {
            guard let v = extra.first(where: { $0.key == key })?.value else { return nil }
            switch v {
            case .int(let i): return Double(i)
            case .double(let d): return d
            default: return nil
            }
        }
        let overall = text("overalljails").map(PythonValues.bool) ?? false
        return .success(
            BanTimeIncrement(
                factor: factor, formula: formula, multipliers: multipliers, maxTime: seconds("maxtime"),
                randomTime: seconds("rndtime"), overallJails: overall))
    }
}
