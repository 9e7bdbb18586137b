import Control
import Core
import Firewall
import Jail
import Store

/// Runtime changes to jails (fail2ban-client's `set JAIL …`, `add`, `start`, `stop`, `idle`): the coordinator
/// owns every jail's setup and state, so each change is one call on it and takes effect at once. Changes last
/// until the next reload, which builds the jails from the configuration again.
extension BanCoordinator {
    /// Most failures an idle jail keeps for when it wakes up; later ones are dropped (and logged once).
    static let maximumHeld = 100_000

    /// The outcome of ``change(jail:_:)``.
    public struct Change: Sendable {
        /// The reply for the client.
        public var response: ControlResponse
        /// True when the jail's log sources (files, journal matches, filter) changed: the caller restarts them.
        public var sourcesChanged: Bool
    }

    /// Edits `jail`'s setup with `body` and puts the result in force: the ban policy and ignore list reach the
    /// jail's state, changed command actions get a new runner. Nothing changes when `body` fails.
    public func change(
        jail: String, _ body: @Sendable (inout JailSetup) -> Result<ControlValue, ControlError>
    ) async -> Change {
        guard let before = setups[jail] else {
            return Change(response: .failure(.unknownJail(jail)), sourcesChanged: false)
        }
        var setup = before
        let value: ControlValue
        switch body(&setup) {
        case .failure(let error): return Change(response: .failure(error), sourcesChanged: false)
        case .success(let v): value = v
        }
        setups[jail] = setup
        states[jail]?.policy = setup.policy
        states[jail]?.ignore = setup.ignore
        states[jail]?.maxTracked = setup.maxTracked
        if setup.commandActions != before.commandActions { installRunners(jailNames.compactMap { setups[$0] }) }
        if setup.firewall != before.firewall, let firewall {
            // The native action left (`delaction`): the jail's sets go, the others stay as they are.
            do {
                try await firewall.setUp(jails: runningSetups().compactMap(\.firewall))
            } catch {
                actionsLog.error("[\(jail)] cannot update the nftables table: \(error)")
            }
        }
        let sourcesChanged =
            setup.logPaths != before.logPaths || setup.headPaths != before.headPaths
            || setup.journalMatch != before.journalMatch || setup.filter !== before.filter
        return Change(response: .success(value), sourcesChanged: sourcesChanged && !notStarted.contains(jail))
    }

    /// Reads `jail`'s setup and state together (for replies that need both).
    public func read<T: Sendable>(jail: String, _ body: @Sendable (JailSetup, JailState) -> T) -> T? {
        guard let setup = setups[jail], let state = states[jail] else { return nil }
        return body(setup, state)
    }

    /// `set JAIL idle on|off`. While idle the jail's failures wait (as fail2ban leaves the lines unread); when it
    /// ends they are counted, with their own times. They wait in memory only (the positions of their lines move
    /// on): a restart while idle forgets them. Returns the new state, nil for an unknown jail.
    public func setIdle(jail: String, _ on: Bool) async -> Bool? {
        guard setups[jail] != nil else { return nil }
        if on {
            idle.insert(jail)
            return true
        }
        await releaseIdle([jail])
        return false
    }

    /// Ends idleness of `jails` and counts the failures they held.
    func releaseIdle(_ jails: Set<String>) async {
        var failures: [(jail: String, events: [FailureEvent])] = []
        for name in jails where idle.contains(name) {
            idle.remove(name)
            if let events = held.removeValue(forKey: name), !events.isEmpty { failures.append((name, events)) }
        }
        if !failures.isEmpty { await process([SourceBatch(failures: failures)]) }
    }

    /// Keeps the failures of an idle jail (called by `process`); returns false when the jail is not idle.
    func hold(jail: String, events: [FailureEvent]) -> Bool {
        guard idle.contains(jail) else { return false }
        var list = held[jail] ?? []
        let room = Self.maximumHeld - list.count
        if room < events.count, room >= 0 {
            filterLog.warning(
                "[\(jail)] idle: more than \(Self.maximumHeld) failures waiting; dropping \(events.count - room)")
        }
        list.append(contentsOf: events.prefix(max(0, room)))
        held[jail] = list
        return true
    }

    /// `add JAIL BACKEND`: a jail with fail2ban's defaults and nothing to read, configured with `set` and started
    /// with `start JAIL`. Refused with fail2ban 1.0.2's reply when the name is taken.
    public func add(_ setup: JailSetup) -> ControlResponse {
        guard !stopped else { return .failure(ControlError(.shuttingDown, "the server is stopping")) }
        guard setups[setup.name] == nil else {
            // fail2ban 1.0.2 answers a duplicate with this NameError (a slip in its code), and adds nothing.
            return .failure(ControlError(.nameError, "name 'noduplicates' is not defined"))
        }
        setups[setup.name] = setup
        states[setup.name] = Self.freshState(setup)
        jailNames.append(setup.name)
        notStarted.insert(setup.name)
        return .success(.string(setup.name))
    }

    /// `start JAIL`: a jail added at run time starts reading (its bans are restored from the store); a running jail
    /// only leaves idle. Returns false for an unknown jail.
    public func start(jail: String) async -> Bool {
        guard setups[jail] != nil else { return false }
        if notStarted.remove(jail) != nil {
            installRunners(jailNames.compactMap { setups[$0] })
            enqueueActions(jail: jail, phase: "actionstart", ticket: nil)
            _ = await restore(jails: [jail])
        }
        await releaseIdle([jail])
        return true
    }

    /// `stop JAIL` (or every jail with nil, `stop --all`): the jail is removed until the next reload; its bans
    /// leave the kernel and stay in the store. Returns false for an unknown jail.
    public func stop(jail: String?) async throws(FirewallError) -> Bool {
        await gate.enter()
        defer { gate.leave() }
        guard !stopped else { return false }
        if let jail {
            guard setups[jail] != nil else { return false }
            _ = try await replace(with: jailNames.filter { $0 != jail }.compactMap { setups[$0] }, broken: brokenJails)
        } else {
            _ = try await replace(with: [], broken: brokenJails)
        }
        return true
    }

    /// Bans in force in `jail`, ordered by their end (fail2ban's `get JAIL banip`), nil for an unknown jail.
    public func bansByEnd(jail: String) -> [(address: IPAddress, ban: JailState.Ban)]? {
        guard let state = states[jail] else { return nil }
        let now = clock()
        return state.bansByEnd.filter { state.isBanned($0.address, now: now) }
    }

    /// The addresses banned in `jail` (nil: every jail) that `subnet` covers.
    public func banned(in subnet: Subnet, jail: String?) -> [IPAddress] {
        let now = clock()
        var out: [IPAddress] = []
        for name in jail.map({ [$0] }) ?? jailNames {
            guard let state = states[name] else { continue }
            for a in state.bannedAddresses where subnet.contains(a) && state.isBanned(a, now: now) && !out.contains(a) {
                out.append(a)
            }
        }
        return out
    }

    /// `set JAIL attempt ADDR [MATCH…]`: one failure now, standing for as many attempts as matches given (at
    /// least one), counted like a failure read from the log.
    public func attempt(jail: String, address: IPAddress, matches: [String]) async -> Bool {
        guard setups[jail] != nil else { return false }
        filterLog.info("[\(jail)] Attempt \(address) - \(Self.timestamp(clock()))")
        var event = FailureEvent(address: address, time: clock(), matches: matches, attempts: max(1, matches.count))
        event.countsOnce = true
        await process([SourceBatch(failures: [(jail, [event])])])
        return true
    }

    /// After `set JAIL bantime`: the bans in force take the new length from their start, as in fail2ban (whose
    /// bans follow the jail's bantime unless `bantime.increment` gave them their own). A ban whose new end has
    /// passed is lifted; the others get their new timeout in the kernel and the store.
    public func applyBanTime(jail: String) async {
        guard let setup = setups[jail], setup.policy.increment == nil, let state = states[jail] else { return }
        let now = clock()
        let banTime = setup.policy.banTime
        var requests: [BanRequest] = []
        var lifted: [BanKey] = []
        for (address, ban) in state.bansByEnd where state.isBanned(address, now: now) && !ban.hasOwnLength {
            let end: Double? = banTime < 0 ? nil : ban.start + banTime
            if let end, end <= now {
                if states[jail]?.noteUnbanned(address) == true { lifted.append(BanKey(address: address, jail: jail)) }
                continue
            }
            states[jail]?.noteBanned(address, until: end)
            if setup.firewall != nil {
                requests.append(
                    BanRequest(
                        address: address, jail: jail, duration: end.map { .timeout(.seconds($0 - now)) } ?? .permanent))
            }
        }
        // Every row of the jail takes the new length, then the prolonged bans get their own back.
        writer?.submit(
            [.banTime(jail: jail, address: nil, seconds: banTime)]
                + state.bansByEnd.filter(\.ban.hasOwnLength).map {
                    .banTime(jail: jail, address: $0.address, seconds: $0.ban.duration)
                })
        if let firewall, !requests.isEmpty {
            do {
                try await firewall.ban(requests)
            } catch {
                actionsLog.error("[\(jail)] nftables refused the new ban times: \(error)")
            }
        }
        await lift(lifted)
    }

    /// Puts prolonged bans in force: their new timeout in the kernel (the element is replaced) and their new
    /// length in the store.
    func extend(_ bans: [(jail: String, address: IPAddress, ban: JailState.Ban)]) async {
        guard !bans.isEmpty else { return }
        let now = clock()
        var requests: [BanRequest] = []
        for (jail, address, ban) in bans {
            actionsLog.notice("[\(jail)] \(address) already banned; ban prolonged")
            writer?.submit([.banTime(jail: jail, address: address, seconds: ban.duration)])
            if setups[jail]?.firewall != nil {
                requests.append(
                    BanRequest(
                        address: address, jail: jail,
                        duration: ban.end.map { .timeout(.seconds(max(1, $0 - now))) } ?? .permanent))
            }
        }
        if let firewall, !requests.isEmpty {
            do {
                try await firewall.ban(requests)
            } catch {
                actionsLog.error("nftables refused to prolong \(requests.count) bans: \(error)")
            }
        }
    }

    /// Jails that are idle now.
    public var idleJails: Set<String> { idle }
}
