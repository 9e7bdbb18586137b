import Control
import Core
import Jail

/// `get …`: the server's settings and each jail's, as fail2ban-server answers them.
extension ControlBridge {
    static let serverSettings: Set<String> = [
        "loglevel", "logtarget", "syslogsocket", "dbfile", "dbmaxmatches", "dbpurgeage",
    ]

    /// fail2ban-server's reply to `get` of a property it does not know.
    static let unknownProperty = ControlReplies.invalidCommand

    func get(_ c: [String]) async -> ControlResponse {
        guard c.count >= 2 else { return .failure(Self.missingArgument) }
        if Self.serverSettings.contains(c[1]) {
            if let server, let reply = server.get(c[1]) { return reply }
            return .success(Self.defaultServerSetting(c[1]))
        }
        guard c.count >= 3 else { return .failure(Self.missingArgument) }
        let jail = c[1]
        let property = c[2]
        switch property {
        case "banned":
            let ids = Array(c.dropFirst(3))
            guard let banned = await coordinator.status(jail: jail)?.banned else { return .failure(.unknownJail(jail)) }
            if ids.isEmpty { return .success(Self.strings(banned.map(\.description))) }
            let flags = ids.map { id -> ControlValue in .int(IPAddress(id).map { banned.contains($0) ? 1 : 0 } ?? 0) }
            return .success(flags.count == 1 ? flags[0] : .list(flags))
        case "banip":
            guard let bans = await coordinator.bansByEnd(jail: jail) else { return .failure(.unknownJail(jail)) }
            if c.count > 3 && c[3] == "--with-time" {
                return .success(Self.strings(bans.map { Self.withTime($0.address, $0.ban) }))
            }
            return .success(Self.strings(bans.map(\.address.description)))
        case "action", "actionproperties", "actionmethods":
            return await actionProperty(c)
        default:
            guard Self.jailProperties.contains(property) || property.hasPrefix("bantime.") else {
                return .failure(Self.unknownProperty)
            }
            guard let setup = await coordinator.setup(jail: jail) else { return .failure(.unknownJail(jail)) }
            return .success(Self.value(of: property, in: setup))
        }
    }

    static let jailProperties: Set<String> = [
        "logpath", "logencoding", "journalmatch", "ignoreself", "ignoreip", "ignorecommand", "ignorecache",
        "prefregex", "failregex", "ignoreregex", "usedns", "findtime", "datepattern", "logtimezone", "maxmatches",
        "maxretry", "maxlines", "bantime", "actions",
    ]

    /// A jail property's value (one of `jailProperties` or `bantime.*`).
    static func value(of property: String, in s: JailSetup) -> ControlValue {
        switch property {
        case "logpath": return strings(s.readsJournal ? [] : s.logPaths)
        case "logencoding": return .string(s.settings.logEncoding)
        case "journalmatch": return s.readsJournal ? ControlReplies.journalMatch(s.journalMatch) : .list([])
        case "ignoreself": return .bool(s.settings.ignoreSelf)
        case "ignoreip": return strings(s.ignore.entries)
        case "ignorecommand": return s.settings.ignoreCommand
        case "ignorecache": return s.settings.ignoreCache
        case "prefregex": return .string(s.filter.prefregexExpanded ?? "")
        case "failregex": return strings(s.filter.failregexExpanded)
        case "ignoreregex": return strings(s.filter.ignoreregexExpanded)
        case "usedns": return .string(s.settings.useDNS)
        case "findtime": return s.settings.findTime
        case "datepattern":
            let d = s.filter.datePatternDescription
            return .tuple([d.pattern.map { .string($0) } ?? .null, .string(d.name)])
        case "logtimezone": return s.settings.logTimeZone
        case "maxmatches": return .int(s.policy.maxMatches)
        case "maxretry": return .int(s.settings.maxRetry)
        case "maxlines": return .int(s.filter.maxLines)
        case "bantime": return .int(Int(saturating: s.policy.banTime))
        case "actions": return strings(s.actionProperties.map(\.name))
        default:
            return s.settings.banTimeExtra(String(property.dropFirst("bantime.".count)))
        }
    }

    /// `get JAIL action ACT PROP`, `get JAIL actionproperties ACT`, `get JAIL actionmethods ACT`.
    func actionProperty(_ c: [String]) async -> ControlResponse {
        let needed = c[2] == "action" ? 5 : 4
        guard c.count >= needed else { return .failure(Self.missingArgument) }
        guard let setup = await coordinator.setup(jail: c[1]) else { return .failure(.unknownJail(c[1])) }
        guard let action = setup.actionProperties.first(where: { $0.name == c[3] }) else {
            return .failure(ControlError(.keyError, "Invalid Action name: \(c[3])"))
        }
        switch c[2] {
        case "actionproperties": return .success(Self.strings(action.propertyNames))
        case "actionmethods": return .success(Self.strings(ActionProperties.methods))
        default:
            if let v = action.properties[c[4]] { return .success(v) }
            if ActionProperties.methods.contains(c[4]) || ActionProperties.constantProperties.contains(c[4]) {
                // fail2ban would try to send the method (or compiled regex) itself, which cannot be pickled.
                return .failure(ControlError(.failed, "\(c[4]) of action \(c[3]) is not a value: call it with set"))
            }
            return .failure(
                ControlError(.attributeError, "'CommandAction' object has no attribute \(PythonRepr.quote(c[4]))"))
        }
    }

    /// One line of `get JAIL banip --with-time`: `ADDR \tSTART + BANTIME = END` (fail2ban's layout; a permanent
    /// ban ends `9999-12-31 23:59:59`).
    static func withTime(_ address: IPAddress, _ ban: JailState.Ban) -> String {
        let start = BanCoordinator.timestamp(ban.start)
        guard let end = ban.end else { return "\(address) \t\(start) + -1 = 9999-12-31 23:59:59" }
        return "\(address) \t\(start) + \(Int(saturating: end - ban.start)) = \(BanCoordinator.timestamp(end))"
    }

    /// Server settings without ``ServerControls`` (a coordinator in a test): fail2ban's defaults.
    static func defaultServerSetting(_ name: String) -> ControlValue {
        switch name {
        case "loglevel": return "INFO"
        case "logtarget": return "STDERR"
        case "syslogsocket": return "auto"
        default: return .null
        }
    }
}
