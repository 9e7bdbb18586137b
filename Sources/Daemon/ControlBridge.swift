import Control
import Core
import Jail

/// What `reload` asks for: fail2ban-client sends `["reload", JAIL or "--all", OPTION…]`.
public struct ReloadRequest: Sendable, Hashable {
    /// The jail to reload; nil for every jail (`--all`).
    public var jail: String?
    /// `--restart`: the jail starts afresh (counters reset, bans restored from the store).
    public var restart = false
    /// `--unban`: the jail's bans are lifted first (and not restored).
    public var unban = false
    /// `--if-exists`: a jail that does not run is not an error.
    public var ifExists = false

    /// A request for `jail` (nil: all).
    public init(jail: String?, restart: Bool = false, unban: Bool = false, ifExists: Bool = false) {
        self.jail = jail
        self.restart = restart
        self.unban = unban
        self.ifExists = ifExists
    }

    /// Parses the words after `reload`: options (`--restart`, `--unban`, `--if-exists`, `--all`) and at most one
    /// jail name, in any order.
    static func parse(_ words: ArraySlice<String>) -> Result<ReloadRequest, ControlError> {
        var request = ReloadRequest(jail: nil)
        var names: [String] = []
        for w in words {
            switch w {
            case "--all": continue
            case "--restart": request.restart = true
            case "--unban": request.unban = true
            case "--if-exists": request.ifExists = true
            default: names.append(w)
            }
        }
        guard names.count <= 1 else {
            return .failure(
                ControlError(
                    .invalidArgument,
                    "Unexpected argument(s) for reload: \(PythonRepr.render(.list(names.map { .string($0) })))"))
        }
        request.jail = names.first
        return .success(request)
    }
}

/// Answers control-socket commands (fail2ban-client 1.0.2's whole grammar) from the running daemon, in the shapes
/// fail2ban-server replies with, so the real fail2ban-client prints the same text and exits the same. Runtime
/// changes go to the coordinator, which owns every jail; the server's own settings to ``ServerControls``.
public struct ControlBridge: ControlHandler {
    let coordinator: BanCoordinator
    let server: ServerControls?
    let onStop: @Sendable () -> Void
    let onReload: @Sendable (ReloadRequest) async -> ControlResponse
    let refreshSources: @Sendable () async -> Void
    let lineCounts: @Sendable (String) -> LineCounts
    let selfAddresses: @Sendable () -> [IPAddress]
    let resolve: @Sendable (String) -> [IPAddress]

    /// A bridge to `coordinator`; `server` serves the server-wide settings (nil: they read as fail2ban's defaults
    /// and cannot change); `onStop` ends the daemon, `onReload` reloads; `refreshSources` restarts the log sources
    /// after a runtime change to a jail's files, journal matches or filter; `lineCounts` gives a jail's
    /// skipped-line counters for `status JAIL`.
    public init(
        coordinator: BanCoordinator, server: ServerControls? = nil, onStop: @escaping @Sendable () -> Void,
        onReload: @escaping @Sendable (ReloadRequest) async -> ControlResponse,
        refreshSources: @escaping @Sendable () async -> Void = {},
        lineCounts: @escaping @Sendable (String) -> LineCounts = { _ in LineCounts() },
        selfAddresses: @escaping @Sendable () -> [IPAddress] = { HostAddresses.own() },
        resolve: @escaping @Sendable (String) -> [IPAddress] = { HostAddresses.resolve($0) }
    ) {
        self.coordinator = coordinator
        self.server = server
        self.onStop = onStop
        self.onReload = onReload
        self.refreshSources = refreshSources
        self.lineCounts = lineCounts
        self.selfAddresses = selfAddresses
        self.resolve = resolve
    }

    /// fail2ban-server's reply to a command it does not know.
    static let unknownCommand = ControlError(.invalidCommand, "Invalid command")
    /// fail2ban-server's reply to a command that lacks an argument (the client prints "Sorry but the command is
    /// invalid").
    static let missingArgument = ControlReplies.incompleteCommand

    static func strings(_ s: [String]) -> ControlValue { .list(s.map { .string($0) }) }

    /// `ping`, `version` and `echo` need no daemon state: the server answers them on the connection's thread.
    public func immediateReply(to command: [String]) -> ControlResponse? {
        switch command.first {
        case "ping": return .success("pong")
        case "version": return .success("1.0.2")
        case "echo": return .success(Self.strings(Array(command.dropFirst())))
        default: return nil
        }
    }

    public func handle(_ command: [String]) async -> ControlResponse {
        guard let verb = command.first else { return .failure(Self.missingArgument) }
        if let reply = immediateReply(to: command) { return reply }
        switch verb {
        case "server-status": return .success("Server ready")
        case "stop": return await stop(command)
        case "start": return await start(command)
        case "add": return await add(command)
        case "reload":
            switch ReloadRequest.parse(command.dropFirst()) {
            case .failure(let e): return .failure(e)
            case .success(let request): return await onReload(request)
            }
        case "status": return await status(command)
        case "banned": return await banned(command)
        case "unban": return await unban(command)
        case "flushlogs":
            guard let server else { return .success("flushed") }
            return server.flushLogs()
        case "set": return await set(command)
        case "get": return await get(command)
        default: return .failure(Self.unknownCommand)
        }
    }

    // MARK: Jail control

    func stop(_ c: [String]) async -> ControlResponse {
        if c.count == 1 {
            onStop()
            return .success(.null)
        }
        let jail = c[1] == "--all" ? nil : c[1]
        do {
            guard try await coordinator.stop(jail: jail) else { return .failure(.unknownJail(c[1])) }
        } catch {
            return .failure(ControlError(.failed, "cannot stop \(c[1]): \(error)"))
        }
        await refreshSources()
        return .success(.null)
    }

    func start(_ c: [String]) async -> ControlResponse {
        guard c.count >= 2 else { return .failure(Self.missingArgument) }
        guard await coordinator.start(jail: c[1]) else { return .failure(.unknownJail(c[1])) }
        await refreshSources()
        return .success(.null)
    }

    func add(_ c: [String]) async -> ControlResponse {
        guard c.count >= 2 else { return .failure(Self.missingArgument) }
        let name = c[1]
        if name == "--all" { return .failure(ControlError(.failed, "Reserved name \(PythonRepr.quote(name))")) }
        if await coordinator.setup(jail: name) != nil {
            return .failure(ControlError(.nameError, "name 'noduplicates' is not defined"))
        }
        let backend = c.count > 2 ? c[2] : "auto"
        switch JailSetup.added(name: name, backend: backend, now: coordinator.clock, selfAddresses: selfAddresses()) {
        case .failure(let e): return .failure(e)
        case .success(let setup): return await coordinator.add(setup)
        }
    }

    // MARK: Status

    func status(_ c: [String]) async -> ControlResponse {
        if c.count == 1 {
            // fail2ban lists the jails sorted by name.
            var reply = ControlReplies.serverStatus(jails: await coordinator.jailNames.sorted())
            // Only while something is wrong, so the usual reply stays byte for byte fail2ban-server's.
            if let store = await coordinator.storeHealth(), let error = store.health.error,
                case .list(var items) = reply
            {
                items.append(
                    .tuple([
                        "Database error",
                        .string("\(store.path): \(error) (\(store.health.queued) changes held in memory, retrying)"),
                    ]))
                reply = .list(items)
            }
            return .success(reply)
        }
        guard c.count <= 3 else { return .failure(ControlError(.invalidCommand, "Invalid command (no status)")) }
        let flavor = c.count == 3 ? c[2] : "basic"
        guard let s = await coordinator.status(jail: c[1]) else {
            if let why = await coordinator.brokenJails[c[1]] {
                return .failure(ControlError(.failed, "jail '\(c[1])' is not running: \(why)"))
            }
            return .failure(.unknownJail(c[1]))
        }
        var reply = ControlReplies.jailStatus(
            currentlyFailed: s.currentlyFailed, totalFailed: s.totalFailed,
            source: s.usesJournal ? .journal(s.journalMatch) : .files(s.logPaths),
            currentlyBanned: s.currentlyBanned, totalBanned: s.totalBanned,
            bannedAddresses: s.banned.map(\.description), skipped: lineCounts(c[1]).statusEntries,
            actionsDropped: (await coordinator.actionCounters(jail: c[1])).map { $0.dropped + $0.abandoned } ?? 0,
            extraActions: await extraStatus(jail: c[1]))
        if flavor == "short" { reply = ControlReplies.shortStatus(reply) }
        return .success(reply)
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

    // MARK: Unbans

    /// `unban --all` or `unban ADDR…` in every jail; a network unbans the addresses it covers. Answers how many
    /// bans were lifted (addresses that are not banned count 0, as in fail2ban).
    func unban(_ c: [String]) async -> ControlResponse {
        guard c.count >= 2 else { return .failure(Self.unknownCommand) }
        if c.count == 2 && c[1] == "--all" { return .success(.int(await coordinator.unbanAll())) }
        var count = 0
        for word in c.dropFirst() {
            count += await unbanOne(word, jail: nil)
        }
        if let still = await stillBlocked(Array(c.dropFirst()), jail: nil, lifted: count) { return .failure(still) }
        return .success(.int(count))
    }

    /// Lifts the ban of one address; for a network, its prefix ban, or else the bans of every address it covers
    /// (as fail2ban unbans a network). Returns how many bans were lifted.
    func unbanOne(_ word: String, jail: String?) async -> Int {
        if let a = IPAddress(word) { return await coordinator.unban([a], jail: jail) }
        if let net = IgnoreList.network(word) {
            // A prefix ban of exactly this network is lifted alone (its addresses keep their own bans);
            // otherwise every banned address the network covers is unbanned, as in fail2ban.
            if word.contains("/") {
                let prefixes = await coordinator.unban(prefix: net, jail: jail)
                if prefixes > 0 { return prefixes }
            }
            let covered = await coordinator.banned(in: net, jail: jail)
            return covered.isEmpty ? 0 : await coordinator.unban(covered, jail: jail)
        }
        return 0
    }

    /// An address whose own ban was lifted but that a prefix ban still blocks: the error that says so and how to
    /// lift the prefix (`lifted` bans were lifted all the same).
    func stillBlocked(_ words: [String], jail: String?, lifted: Int) async -> ControlError? {
        var still: [String] = []
        for a in words.compactMap({ IPAddress($0) }) {
            for (name, p) in await coordinator.prefixBans(covering: a, jail: jail) {
                still.append(
                    "\(a) is inside the banned prefix \(p) of jail \(name) and stays blocked; lift the prefix with "
                        + "`portcullis set \(name) unbanip \(p)`")
            }
        }
        guard !still.isEmpty else { return nil }
        let done = lifted > 0 ? "\(lifted) ban(s) lifted, but " : ""
        return ControlError(.failed, done + still.joined(separator: "; "))
    }
}

extension ControlReplies {
    /// `status JAIL short`: the Actions section without the address list (fail2ban's `short` flavor).
    static func shortStatus(_ reply: ControlValue) -> ControlValue {
        guard case .list(let sections) = reply else { return reply }
        return .list(
            sections.map { section in
                guard case .tuple(let pair) = section, pair.count == 2, pair[0] == "Actions",
                    case .list(let entries) = pair[1]
                else { return section }
                return .tuple(["Actions", .list(entries.filter { $0.elements?.first != "Banned IP list" })])
            })
    }
}
