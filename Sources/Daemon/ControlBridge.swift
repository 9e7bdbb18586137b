import Control
import Core

/// Answers control-socket commands (fail2ban-client's grammar) from the running daemon's state, in the shapes
/// fail2ban-server replies with, so the real fail2ban-client prints the same.
public struct ControlBridge: ControlHandler {
    let coordinator: BanCoordinator
    let onStop: @Sendable () -> Void
    let onReload: @Sendable (String?) async -> ControlResponse
    let lineCounts: @Sendable (String) -> LineCounts

    /// A bridge to `coordinator`; `onStop` ends the daemon, `onReload` reloads all jails or one; `lineCounts`
    /// gives a jail's skipped-line counters (too long, match limit) for `status JAIL`.
    public init(
        coordinator: BanCoordinator, onStop: @escaping @Sendable () -> Void,
        onReload: @escaping @Sendable (String?) async -> ControlResponse,
        lineCounts: @escaping @Sendable (String) -> LineCounts = { _ in LineCounts() }
    ) {
        self.coordinator = coordinator
        self.onStop = onStop
        self.onReload = onReload
        self.lineCounts = lineCounts
    }

    static func invalid() -> ControlResponse { .failure(ControlReplies.invalidCommand) }

    static func strings(_ s: [String]) -> ControlValue { .list(s.map { .string($0) }) }

    public func handle(_ command: [String]) async -> ControlResponse {
        guard let verb = command.first else { return .failure(ControlError(.incompleteCommand, "empty command")) }
        switch verb {
        case "ping":
            return .success("pong")
        case "version":
            return .success("1.0.2")
        case "echo":
            return .success(Self.strings(Array(command.dropFirst())))
        case "stop":
            onStop()
            return .success(.null)
        case "reload":
            // fail2ban-client sends ["reload", "--all" | JAIL, options, config stream]; the daemon rereads its own tree.
            let target = command.count > 1 && command[1] != "--all" && !command[1].hasPrefix("-") ? command[1] : nil
            return await onReload(target)
        case "status":
            return await status(command)
        case "banned":
            return await banned(command)
        case "unban":
            guard command.count > 1 else { return .failure(ControlError(.incompleteCommand, "list index out of range")) }
            if command[1] == "--all" { return .success(.int(await coordinator.unbanAll())) }
            return await unban(words: command.dropFirst(), jail: nil)
        case "set":
            return await set(command)
        case "get":
            return await get(command)
        default:
            return Self.invalid()
        }
    }

    func status(_ c: [String]) async -> ControlResponse {
        if c.count == 1 {
            var reply = ControlReplies.serverStatus(jails: await coordinator.jailNames)
            // Only while something is wrong, so the usual reply stays byte for byte fail2ban-server's.
            if let store = await coordinator.storeHealth(), let error = store.health.error, case .list(var items) = reply {
                items.append(
                    .tuple([
                        "Database error",
                        .string("\(store.path): \(error) (\(store.health.queued) changes held in memory, retrying)"),
                    ]))
                reply = .list(items)
            }
            return .success(reply)
        }
        guard let s = await coordinator.status(jail: c[1]) else {
            if let why = await coordinator.brokenJails[c[1]] {
                return .failure(ControlError(.failed, "jail '\(c[1])' is not running: \(why)"))
            }
            return .failure(.unknownJail(c[1]))
        }
        return .success(
            ControlReplies.jailStatus(
                currentlyFailed: s.currentlyFailed, totalFailed: s.totalFailed,
                source: s.usesJournal ? .journal(s.journalMatch) : .files(s.logPaths),
                currentlyBanned: s.currentlyBanned, totalBanned: s.totalBanned,
                bannedAddresses: s.banned.map(\.description), skipped: lineCounts(c[1]).statusEntries,
                actionsDropped: (await coordinator.actionCounters(jail: c[1])).map { $0.dropped + $0.abandoned } ?? 0,
                extraActions: await extraStatus(jail: c[1])))
    }

    func banned(_ c: [String]) async -> ControlResponse {
        if c.count == 1 {
            var byJail: [(jail: String, addresses: [String])] = []
            for n in await coordinator.jailNames {
                byJail.append((n, await coordinator.status(jail: n)?.banned.map(\.description) ?? []))
            }
            return .success(ControlReplies.banned(byJail: byJail))
        }
        var perAddress: [[String]] = []
        for text in c.dropFirst() {
            var jails: [String] = []
            if let a = IPAddress(text) { jails = await coordinator.jailsBanning(a) }
            perAddress.append(jails)
        }
        return .success(ControlReplies.banned(jailsPerAddress: perAddress))
    }

    func parseAddresses(_ words: ArraySlice<String>) -> Result<[IPAddress], ControlError> {
        var out: [IPAddress] = []
        for w in words {
            guard let a = IPAddress(w) else {
                return .failure(ControlError(.invalidArgument, "'\(w)' is not an IPv4 or IPv6 address"))
            }
            out.append(a)
        }
        return .success(out)
    }

    func set(_ c: [String]) async -> ControlResponse {
        guard c.count >= 3 else { return .failure(ControlError(.incompleteCommand, "list index out of range")) }
        let jail = c[1]
        guard await coordinator.setup(jail: jail) != nil else { return .failure(.unknownJail(jail)) }
        switch c[2] {
        case "banip":
            // `--force` bans even the address of an admin's session (see AdminGuard).
            let words = c.dropFirst(3)
            let force = words.contains("--force")
            switch parseAddresses(words.filter { $0 != "--force" }[...]) {
            case .failure(let e): return .failure(e)
            case .success(let addresses):
                let client = ControlPeer.processID.flatMap { AdminGuard.sshClientAddress(pid: $0) }
                let (count, refused) = await coordinator.banManually(
                    jail: jail, addresses: addresses, force: force, client: client)
                if count == 0, !refused.isEmpty {
                    return .failure(ControlError(.invalidArgument, refused.joined(separator: "; ")))
                }
                return .success(.int(count))
            }
        case "unbanip":
            return await unban(words: c.dropFirst(3), jail: jail)
        default:
            return Self.invalid()
        }
    }

    func get(_ c: [String]) async -> ControlResponse {
        guard c.count >= 3 else { return .failure(ControlError(.incompleteCommand, "list index out of range")) }
        guard let s = await coordinator.setup(jail: c[1]) else { return .failure(.unknownJail(c[1])) }
        let j = s.configuration
        switch c[2] {
        case "maxretry": return .success(.int(j.maxretry))
        case "findtime": return .success(.int(Int(saturating: j.findtime.seconds)))
        case "bantime": return .success(.int(Int(saturating: j.bantime.seconds)))
        case "ignoreip": return .success(Self.strings(j.ignoreip.flatMap { $0.split(whereSeparator: { $0 == " " || $0 == "," }).map(String.init) }))
        case "logpath": return .success(Self.strings(s.logPaths))
        case "ignoreself": return .success(.bool(j.ignoreself))
        case "usedns": return .success(.string(j.usedns))
        case "maxmatches": return .success(.int(j.maxmatches))
        case "maxlines": return .success(.int(s.filter.maxLines))
        case "banip":
            return .success(Self.strings(await coordinator.status(jail: c[1])?.banned.map(\.description) ?? []))
        case "actions":
            var names: [String] = []
            for a in j.actions { names.append(a.name) }
            return .success(Self.strings(names))
        case "failregex":
            return .success(Self.strings(s.filter.failregexSources))
        case "ignoreregex":
            return .success(Self.strings(s.filter.ignoreregexSources))
        case "journalmatch":
            return .success(ControlReplies.journalMatch(s.journalMatch))
        case "datepattern":
            return .success(s.filter.datePattern.map { .string($0) } ?? .null)
        case "logencoding": return .success(.string(j.logencoding))
        case "bantime.increment": return .success(.bool(j.banTimeIncrement.enabled))
        default: return Self.invalid()
        }
    }
}
