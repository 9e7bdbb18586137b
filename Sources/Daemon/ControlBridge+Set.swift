import Configuration
import Control
import Core
import Filter
import Jail

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// `set …`: runtime changes, answered as fail2ban-server answers them. A change to a jail is one call on the
/// coordinator, which owns the jail: it takes effect at once (`set sshd maxretry 4` changes the counting of the
/// next failure) and lasts until the next reload. Bad input changes nothing and gets fail2ban's error.
extension ControlBridge {
    typealias Edit = @Sendable (inout JailSetup) -> Result<ControlValue, ControlError>

    /// Applies `edit` to `jail` on the coordinator and restarts the log sources when it changed them.
    func mutate(_ jail: String, _ edit: Edit) async -> ControlResponse {
        let change = await coordinator.change(jail: jail, edit)
        if change.sourcesChanged { await refreshSources() }
        return change.response
    }

    func set(_ c: [String]) async -> ControlResponse {
        guard c.count >= 3 else { return .failure(Self.missingArgument) }
        let name = c[1]
        if Self.serverSettings.contains(name) {
            guard let server else {
                return .failure(ControlError(.failed, "the server's settings cannot change here"))
            }
            let jails = await coordinator.jailNames.count
            return server.set(name, c[2], jailCount: jails) ?? .failure(Self.unknownProperty)
        }
        if name == "allowipv6" { return .success(.string(c[2])) }
        let property = c[2]
        let args = Array(c.dropFirst(3))
        switch property {
        case "banip": return await banIP(name, args)
        case "unbanip": return await unbanIP(name, args)
        case "attempt": return await attempt(name, args)
        case "idle":
            guard let v = args.first else { return .failure(Self.missingArgument) }
            guard v == "on" || v == "off" else {
                return .failure(ControlError(.failed, "Invalid idle option, must be 'on' or 'off'"))
            }
            guard let now = await coordinator.setIdle(jail: name, v == "on") else {
                return .failure(.unknownJail(name))
            }
            return .success(.bool(now))
        case "addignoreip":
            // Host names are resolved here, on a thread of their own: never on the coordinator or the pool.
            let resolved = await resolveNames(args)
            return await mutate(name) { s in
                for (word, addresses) in zip(args, resolved) { s.ignore.add(word, resolved: addresses) }
                return .success(Self.strings(s.ignore.entries))
            }
        case "addlogpath":
            guard let path = args.first else { return .failure(Self.missingArgument) }
            if args.count > 2 {
                return .failure(ControlError(.invalidArgument, "Only one file can be added at a time"))
            }
            let option = args.count == 2 ? args[1].lowercased() : "head"
            guard option == "head" || option == "tail" else {
                return .failure(ControlError(.invalidArgument, "File option must be 'head' or 'tail'"))
            }
            let tail = option == "tail"
            let exists = path.contains(where: { "*?[".contains($0) }) || access(path, F_OK) == 0
            return await mutate(name) { s in
                guard !s.readsJournal else { return .success(.list([])) }
                if !s.logPaths.contains(path) {
                    guard exists else {
                        return .failure(ControlError(.fileNotFound, "No such file or directory", filename: path))
                    }
                    s.logPaths.append(path)
                    if !tail { s.headPaths.insert(path) }
                }
                return .success(Self.strings(s.logPaths))
            }
        case "delfailregex", "delignoreregex", "maxmatches", "maxretry", "maxlines":
            // fail2ban reads the number before it looks the jail up.
            guard let v = args.first else { return .failure(Self.missingArgument) }
            switch PythonValues.int(v) {
            case .failure(let e): return .failure(e)
            case .success(let n): return await mutate(name) { s in Self.setNumber(property, n, in: &s) }
            }
        default:
            if property.hasPrefix("bantime.") {
                guard let v = args.first else { return .failure(Self.missingArgument) }
                return await mutate(name) { s in Self.setBanTimeExtra(String(property.dropFirst(8)), v, in: &s) }
            }
            guard let edit = jailEdit(property, args) else {
                return .failure(
                    ControlError(
                        .invalidCommand,
                        "Invalid command \(PythonRepr.quote(property)) (no set action or not yet implemented)"))
            }
            switch edit {
            case .failure(let e): return .failure(e)
            case .success(let edit):
                let reply = await mutate(name, edit)
                // The bans in force follow the new bantime (fail2ban's bans do).
                if property == "bantime", case .success = reply { await coordinator.applyBanTime(jail: name) }
                return reply
            }
        }
    }

    /// The edit for a property that takes one value (`set JAIL PROPERTY VALUE`); nil for an unknown property.
    func jailEdit(_ property: String, _ args: [String]) -> Result<Edit, ControlError>? {
        let known: Set<String> = [
            "ignoreself", "delignoreip", "ignorecommand", "ignorecache", "dellogpath", "logencoding", "addjournalmatch",
            "deljournalmatch", "prefregex", "addfailregex", "addignoreregex", "usedns", "findtime", "datepattern",
            "logtimezone", "bantime", "addaction", "delaction", "action",
        ]
        guard known.contains(property) else { return nil }
        guard let v = args.first else { return .failure(Self.missingArgument) }
        switch property {
        case "ignoreself":
            let own = PythonValues.bool(v) ? selfAddresses() : []
            return .success { s in
                s.settings.ignoreSelf = PythonValues.bool(v)
                s.ignore.setIgnoreSelf(s.settings.ignoreSelf, addresses: own)
                return .success(.bool(s.settings.ignoreSelf))
            }
        case "delignoreip":
            return .success { s in
                guard s.ignore.remove(v) else {
                    return .failure(ControlError(.invalidArgument, "list.remove(x): x not in list"))
                }
                return .success(Self.strings(s.ignore.entries))
            }
        case "ignorecommand":
            return .success { s in
                s.settings.ignoreCommand = .string(v)
                return .success(.string(v))
            }
        case "ignorecache":
            return .success { s in
                switch JailSettings.ignoreCache(v) {
                case .failure(let e): return .failure(e)
                case .success(let cache):
                    s.settings.ignoreCache = cache
                    return .success(cache)
                }
            }
        case "dellogpath":
            return .success { s in
                guard !s.readsJournal else { return .success(.list([])) }
                s.logPaths.removeAll { $0 == v }
                s.headPaths.remove(v)
                return .success(Self.strings(s.logPaths))
            }
        case "logencoding":
            return .success { s in
                guard JailSettings.isKnownEncoding(v) else {
                    return .failure(ControlError(.lookupError, "unknown encoding: \(v)"))
                }
                s.settings.logEncoding = JailSettings.encodingName(v)
                return .success(.string(s.settings.logEncoding))
            }
        case "addjournalmatch", "deljournalmatch":
            let adding = property == "addjournalmatch"
            return .success { s in
                guard s.readsJournal else { return .success(.list([])) }
                if adding {
                    s.journalMatch += Self.journalGroups(args)
                } else {
                    let group = args.filter { $0 != "+" }
                    guard let i = s.journalMatch.firstIndex(of: group) else {
                        return .failure(
                            ControlError(.invalidArgument, "Match \(PythonRepr.render(Self.strings(group))) not found"))
                    }
                    s.journalMatch.remove(at: i)
                }
                return .success(ControlReplies.journalMatch(s.journalMatch))
            }
        case "prefregex":
            return .success { s in
                if let e = s.recompile({ d, _ in d.prefregex = v.isEmpty ? nil : ConfigValue(v) }) {
                    return .failure(Self.regexError(e, v))
                }
                return .success(.string(s.filter.prefregexExpanded ?? ""))
            }
        case "addfailregex", "addignoreregex":
            let fail = property == "addfailregex"
            return .success { s in
                let value = ConfigValue(v)
                if let e = s.recompile({ d, _ in
                    if fail { d.failregex.append(value) } else { d.ignoreregex.append(value) }
                }) {
                    return .failure(Self.regexError(e, v))
                }
                return .success(Self.strings(fail ? s.filter.failregexExpanded : s.filter.ignoreregexExpanded))
            }
        case "usedns":
            return .success { s in
                let mode = JailSettings.useDNS(v)
                if let e = s.recompile({ _, o in o.setDNS(mode) }) { return .failure(ControlError(.failed, e.message)) }
                s.settings.useDNS = mode
                return .success(.string(mode))
            }
        case "findtime":
            return .success { s in
                switch PythonValues.seconds(v) {
                case .failure(let e): return .failure(e)
                case .success(let t):
                    s.settings.findTime = t.value
                    s.policy.findTime = t.seconds
                    return .success(t.value)
                }
            }
        case "bantime":
            return .success { s in
                switch PythonValues.wholeSeconds(v) {
                case .failure(let e): return .failure(e)
                case .success(let t):
                    s.policy.banTime = t.seconds
                    return .success(t.value)
                }
            }
        case "datepattern":
            return .success { s in
                if let e = s.recompile({ _, o in o.datePattern = v.isEmpty ? nil : v }) {
                    return .failure(ControlError(.invalidArgument, e.message))
                }
                let d = s.filter.datePatternDescription
                return .success(.tuple([d.pattern.map { .string($0) } ?? .null, .string(d.name)]))
            }
        case "logtimezone":
            return .success { s in
                if s.recompile({ _, o in o.timeZone = v }) != nil {
                    return .failure(
                        ControlError(.invalidArgument, "Unknown or unsupported time zone: \(PythonRepr.quote(v))"))
                }
                s.settings.logTimeZone = .string(v)
                return .success(.string(v))
            }
        case "addaction":
            if args.count > 1 {
                guard args.count >= 3 else { return .failure(Self.missingArgument) }
                return .failure(
                    ControlError(.runtimeError, "Portcullis runs no Python actions: \(v) (\(args[1])) was not added"))
            }
            return .success { s in
                guard !s.actionProperties.contains(where: { $0.name == v }) else {
                    return .failure(ControlError(.invalidArgument, "Action \(v) already exists"))
                }
                s.actionProperties.append(ActionProperties(name: v))
                s.commandActions.append(CommandAction(name: v, commands: [:]))
                return .success(.string(v))
            }
        case "delaction":
            return .success { s in
                guard let i = s.actionProperties.firstIndex(where: { $0.name == v }) else {
                    return .failure(ControlError(.keyError, "Invalid Action name: \(v)"))
                }
                s.actionProperties.remove(at: i)
                if let j = s.commandActions.firstIndex(where: { $0.name == v }) {
                    s.commandActions.remove(at: j)
                } else if JailConfiguration.isNativeBanAction(v) {
                    // The native nftables action: the jail's sets go.
                    s.firewall = nil
                }
                return .success(.null)
            }
        default:  // "action"
            guard args.count >= 2 else { return .failure(Self.missingArgument) }
            let key = args[1]
            if ActionProperties.methods.contains(key) {
                return .failure(
                    ControlError(.failed, "Portcullis does not call action methods from the control socket (\(key))"))
            }
            guard args.count >= 3 else { return .failure(Self.missingArgument) }
            let value = args[2]
            let timeout: (seconds: Double, value: ControlValue)?
            if key == "timeout" {
                switch PythonValues.seconds(value) {
                case .failure(let e): return .failure(e)
                case .success(let t):
                    guard t.seconds > 0, t.seconds <= 86_400 else {
                        return .failure(ControlError(.invalidArgument, "timeout must be between 0 and 86400 seconds"))
                    }
                    timeout = t
                }
            } else {
                timeout = nil
            }
            return .success { s in
                guard let i = s.actionProperties.firstIndex(where: { $0.name == v }) else {
                    return .failure(ControlError(.keyError, "Invalid Action name: \(v)"))
                }
                let reply: ControlValue = timeout?.value ?? .string(value)
                s.actionProperties[i].properties[key] = reply
                if let j = s.commandActions.firstIndex(where: { $0.name == v }) {
                    if let timeout {
                        s.commandActions[j].timeout = timeout.seconds
                    } else if ActionConfiguration.commandOptions.contains(key) {
                        s.commandActions[j].commands[key] = value
                    } else {
                        s.commandActions[j].staticTags[key] = value
                    }
                }
                return .success(reply)
            }
        }
    }

    /// The addresses of each word that is not an address or network (a host name), resolved on a dedicated thread
    /// (a DNS lookup can take seconds and must not hold a thread of the cooperative pool).
    func resolveNames(_ words: [String]) async -> [[IPAddress]] {
        guard words.contains(where: { IgnoreList.network($0) == nil }) else { return words.map { _ in [] } }
        let resolve = self.resolve
        return await withCheckedContinuation { (c: CheckedContinuation<[[IPAddress]], Never>) in
            let work: @Sendable () -> Void = {
                c.resume(returning: words.map { IgnoreList.network($0) == nil ? resolve($0) : [] })
            }
            do {
                try DedicatedThread.detached(work)
            } catch {
                work()
            }
        }
    }

    /// `delfailregex`, `delignoreregex`, `maxmatches`, `maxretry`, `maxlines` with their number read.
    static func setNumber(_ property: String, _ n: Int, in s: inout JailSetup) -> Result<ControlValue, ControlError> {
        switch property {
        case "delfailregex", "delignoreregex":
            let fail = property == "delfailregex"
            let count = fail ? s.filterDefinition.failregex.count : s.filterDefinition.ignoreregex.count
            // Python's `del list[n]`: negative counts from the end; out of range changes nothing (fail2ban logs it).
            let index = n < 0 ? count + n : n
            if (0..<count).contains(index) {
                if let e = s.recompile({ d, _ in
                    if fail { d.failregex.remove(at: index) } else { d.ignoreregex.remove(at: index) }
                }) {
                    return .failure(ControlError(.failed, e.message))
                }
            }
            return .success(strings(fail ? s.filter.failregexExpanded : s.filter.ignoreregexExpanded))
        case "maxmatches":
            s.policy.maxMatches = max(0, n)
            return .success(.int(n))
        case "maxretry":
            s.settings.maxRetry = n
            s.policy.maxRetry = max(1, n)
            return .success(.int(n))
        default:  // maxlines
            guard n > 0 else {
                return .failure(ControlError(.invalidArgument, "maxlines must be integer greater than zero"))
            }
            if let e = s.recompile({ _, o in o.maxLines = n }) {
                return .failure(ControlError(.invalidArgument, e.message))
            }
            return .success(.int(n))
        }
    }

    /// `set JAIL bantime.KEY VALUE`: fail2ban keeps the value (an empty one removes the key) and builds the
    /// increment from them; the reply is what it keeps.
    static func setBanTimeExtra(
        _ key: String, _ text: String, in s: inout JailSetup
    ) -> Result<ControlValue, ControlError> {
        var extra = s.settings.banTimeExtra
        if text.isEmpty {
            extra.removeAll { $0.key == key }
        } else {
            switch JailSettings.banTimeValue(key, text) {
            case .failure(let e): return .failure(e)
            case .success(let value):
                if let i = extra.firstIndex(where: { $0.key == key }) {
                    extra[i].value = value
                } else {
                    extra.append((key, value))
                }
            }
        }
        switch JailSetup.increment(extra) {
        case .failure(let e): return .failure(e)
        case .success(let increment): s.policy.increment = increment
        }
        s.settings.banTimeExtra = extra
        return .success(s.settings.banTimeExtra(key))
    }

    /// fail2ban's `RegexException` text for a regex that does not go in.
    static func regexError(_ e: FilterError, _ regex: String) -> ControlError {
        switch e.code {
        case .noFailureID: return ControlError(.regexError, "No failure-id group in \(PythonRepr.quote(regex))")
        case .emptyRegex: return ControlError(.regexError, "Cannot add empty regex")
        case .badRegex:
            return ControlError(.regexError, "Unable to compile regular expression '\(regex)':\n\(e.message)")
        default: return ControlError(.invalidArgument, e.message)
        }
    }

    /// Journal match words split into alternatives at `+`.
    static func journalGroups(_ words: [String]) -> [[String]] {
        var groups: [[String]] = [[]]
        for w in words {
            if w == "+" { groups.append([]) } else { groups[groups.count - 1].append(w) }
        }
        return groups.filter { !$0.isEmpty }
    }

    // MARK: Bans

    /// `set JAIL banip ADDR…` (`--force`: even the address of an admin's session, see ``AdminGuard``).
    func banIP(_ jail: String, _ all: [String]) async -> ControlResponse {
        let force = all.contains("--force")
        let words = all.filter { $0 != "--force" }
        var addresses: [IPAddress] = []
        for w in words {
            guard let a = IPAddress(w) else {
                return .failure(ControlError(.invalidArgument, "'\(w)' is not an IPv4 or IPv6 address"))
            }
            addresses.append(a)
        }
        guard await coordinator.setup(jail: jail) != nil else { return .failure(.unknownJail(jail)) }
        let client = ControlPeer.processID.flatMap { AdminGuard.sshClientAddress(pid: $0) }
        let (count, refused) = await coordinator.banManually(
            jail: jail, addresses: addresses, force: force, client: client)
        if count == 0, !refused.isEmpty {
            return .failure(ControlError(.invalidArgument, refused.joined(separator: "; ")))
        }
        return .success(.int(count))
    }

    /// `set JAIL unbanip [--report-absent] ADDR…`: a network unbans what it covers; with `--report-absent` the
    /// addresses that were not banned are an error (after the others are unbanned, as in fail2ban).
    func unbanIP(_ jail: String, _ words: [String]) async -> ControlResponse {
        guard let first = words.first else { return .failure(Self.missingArgument) }
        let report = first == "--report-absent"
        guard await coordinator.setup(jail: jail) != nil else { return .failure(.unknownJail(jail)) }
        var count = 0
        var missed: [String] = []
        for w in report ? Array(words.dropFirst()) : words {
            let n = await unbanOne(w, jail: jail)
            if n == 0 { missed.append(w) }
            count += n
        }
        if report, !missed.isEmpty {
            return .failure(ControlError(.invalidArgument, "not banned: \(PythonRepr.render(Self.strings(missed)))"))
        }
        if let still = await stillBlocked(report ? Array(words.dropFirst()) : words, jail: jail, lifted: count) {
            return .failure(still)
        }
        return .success(.int(count))
    }

    /// `set JAIL attempt ADDR [MATCH…]`.
    func attempt(_ jail: String, _ words: [String]) async -> ControlResponse {
        guard let first = words.first else { return .failure(Self.missingArgument) }
        guard let address = IPAddress(first) else {
            return .failure(ControlError(.invalidArgument, "'\(first)' is not an IPv4 or IPv6 address"))
        }
        guard await coordinator.attempt(jail: jail, address: address, matches: Array(words.dropFirst())) else {
            return .failure(.unknownJail(jail))
        }
        return .success(.int(1))
    }
}
