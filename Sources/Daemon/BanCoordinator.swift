import Core
import Firewall
import Jail
import Logging
import MetricsExport
import Store
import Synchronization

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// Lets async callers through one at a time, in arrival order (an actor alone does not: it is reentrant
/// at every `await`).
final class SerialGate: Sendable {
    private struct State {
        var busy = false
        var waiters: [CheckedContinuation<Void, Never>] = []
    }
    private let state = Mutex(State())

    /// Waits until no one else is inside.
    func enter() async {
        await withCheckedContinuation { (c: CheckedContinuation<Void, Never>) in
            let now = state.withLock { s -> Bool in
                if s.busy {
                    s.waiters.append(c)
                    return false
                }
                s.busy = true
                return true
            }
            if now { c.resume() }
        }
    }

    /// Lets the next waiter in.
    func leave() {
        let next = state.withLock { s -> CheckedContinuation<Void, Never>? in
            if s.waiters.isEmpty {
                s.busy = false
                return nil
            }
            return s.waiters.removeFirst()
        }
        next?.resume()
    }
}

/// Owns every jail's state machine and performs what they decide: bans in the firewall (one transaction per
/// batch), the store, the log in fail2ban's format, and command actions.
///
/// Durability: the failures of a batch of log lines are recorded, their bans applied in the kernel, and then
/// bans, pending failures (counted, below maxretry) and the batch's log position go to the store's writer as one
/// change list, committed in one transaction off the coordinator. A position is therefore never stored ahead of
/// the work of the lines before it; a restart resumes counting from the stored pending failures.
public actor BanCoordinator {
    // Setups and states are kept apart so reading a jail's setup never shares (and later copies on write)
    // the state's large tables.
    var setups: [String: JailSetup] = [:]
    var states: [String: JailState] = [:]
    /// Jails in `set JAIL idle on`: their failures wait in `held` (at most `maximumHeld` each) until idle ends.
    var idle: Set<String> = []
    var held: [String: [FailureEvent]] = [:]
    /// Jails added at run time (`add JAIL`) and not started yet: shown and configurable, not reading logs.
    var notStarted: Set<String> = []
    /// Prefix bans decided while recording failures, applied with the batch's bans (BanCoordinator+Prefix).
    var prefixDecisions: [(jail: String, decision: PrefixBanDecision)] = []
    /// Addresses of the admin's sessions, never banned without `--force` (BanCoordinator+Admin).
    var adminGuard: AdminGuard?
    /// Fleet sharing, nil without `[fleet]` (BanCoordinator+Fleet).
    var fleet: FleetLink?
    /// Bans applied from fleet peers: jail → address → (host, end).
    var fleetBans: [String: [IPAddress: (host: String, end: Double?)]] = [:]
    /// Hosts banning an address now (peers trusted here, and this host), for escalation to every port.
    var fleetHosts: [IPAddress: [String: Double?]] = [:]
    /// Addresses banned on every port by escalation, with their end.
    var fleetEscalated: [IPAddress: Double?] = [:]
    /// Jail names in configuration order.
    public internal(set) var jailNames: [String] = []
    /// Jails that failed to load, with the reason (shown by `status`).
    public private(set) var brokenJails: [String: String] = [:]
    let firewall: (any FirewallBackend)?
    let store: BanStore?
    /// Writes every store change off the coordinator (nil without a store).
    let writer: StoreWriter?
    let clock: @Sendable () -> Double
    /// Start, reloads and shutdown one at a time (each awaits the firewall and command actions).
    let gate = SerialGate()
    /// Set by ``shutdown()``: nothing is banned or reloaded afterwards (the table would come back).
    var stopped = false
    /// Ban batches between their decision and the end of their firewall call; ``shutdown()`` waits for them.
    private var inFlight = 0
    private var drained: [CheckedContinuation<Void, Never>] = []
    let actionsLog: Logger
    let filterLog: Logger
    /// Writes `Ban` lines (fail2ban.actions, NOTICE), a whole batch at once when it can (one `write`).
    let banLog: @Sendable ([String]) -> Void
    /// One command-action runner per jail that has command actions; the coordinator only enqueues to them.
    var runners: [String: ActionRunner] = [:]
    /// Bans lifted (expired or unbanned) and bans restored from the store, per jail since the start (metrics).
    private var unbanTotals: [String: Int] = [:]
    private var restoreTotals: [String: Int] = [:]
    private let makeLogger: (String) -> Logger
    /// Most matched lines stored with a ban (`dbmaxmatches`, fail2ban's default 10; changed by `set dbmaxmatches`).
    public let storeMatchLimit = Atomic<Int>(10)

    /// A coordinator. `firewall` nil runs without bans in the kernel (`portcullis` in a test, or a dry run).
    public init(
        firewall: (any FirewallBackend)?, store: BanStore?, clock: @escaping @Sendable () -> Double,
        logger: @escaping (String) -> Logger, storePath: String = "the database",
        banLog: (@Sendable ([String]) -> Void)? = nil
    ) {
        let actions = logger("fail2ban.actions")
        self.banLog = banLog ?? { lines in for l in lines { actions.notice("\(l)") } }
        self.firewall = firewall
        self.store = store
        self.clock = clock
        self.actionsLog = logger("fail2ban.actions")
        self.filterLog = logger("fail2ban.filter")
        self.writer = store.map {
            StoreWriter(store: $0, path: storePath, log: logger("fail2ban.database"), clock: clock)
        }
        self.makeLogger = logger
    }

    // MARK: Start, reload, stop

    /// Says once per set-up whether bans also refuse forwarded connections, and why (`banforward`).
    private func logForwarding(_ firewall: any FirewallBackend) async {
        guard let nft = firewall as? NFTablesFirewall, let (state, jails) = try? await nft.forwarding() else { return }
        let which = jails.isEmpty ? "no jail" : jails.joined(separator: ", ")
        actionsLog.info("forwarded connections are banned for: \(which) (host: \(state))")
    }

    /// Installs the jails: sets up the firewall table and restores every still-active ban from the store
    /// in one transaction. Returns the number of bans restored.
    @discardableResult
    public func start(_ setups: [JailSetup], broken: [String: String] = [:]) async throws(FirewallError) -> Int {
        await gate.enter()
        defer { gate.leave() }
        guard !stopped else { return 0 }
        writer?.start()
        self.setups = [:]
        states = [:]
        jailNames = setups.map(\.name)
        brokenJails = broken
        for s in setups {
            self.setups[s.name] = s
            states[s.name] = Self.freshState(s)
        }
        if let firewall {
            try await firewall.setUp(jails: fleetFirewall(setups))
            await logForwarding(firewall)
        }
        installRunners(setups)
        for s in setups {
            for w in s.warnings { actionsLog.warning("[\(s.name)] \(w)") }
            enqueueActions(jail: s.name, phase: "actionstart", ticket: nil)
        }
        let restored = await restore(jails: Set(jailNames))
        await restorePrefixBans(jails: Set(jailNames))
        restorePending()
        return restored
    }

    /// Replaces the jail set (SIGHUP / `reload`). Jails that stay keep their bans and failure counters (nothing
    /// is restored or banned again); new jails restore their bans from the store; removed jails run
    /// `actionstop` and their sets are deleted. Returns the number of bans restored for new jails.
    ///
    /// Reloads and ``shutdown()`` run one at a time; failures recorded meanwhile land in the jail as it is when
    /// they are recorded.
    @discardableResult
    public func reload(
        _ setups: [JailSetup], broken: [String: String] = [:], restart: Bool = false
    ) async throws(FirewallError) -> Int {
        await gate.enter()
        defer { gate.leave() }
        guard !stopped else { return 0 }
        // Jails of the configuration run (one added at run time under the same name starts now).
        notStarted.subtract(setups.map(\.name))
        return try await replace(with: setups, broken: broken, restart: restart ? Set(jailNames) : [])
    }

    /// `reload JAIL`: rebuilds only `jail` from `setup` (nil when the new configuration no longer has it
    /// enabled: the jail stops), leaving every other jail as it runs. Returns the bans restored for it.
    @discardableResult
    public func reload(
        jail: String, setup: JailSetup?, brokenReason: String? = nil, restart: Bool = false
    ) async throws(FirewallError) -> Int {
        await gate.enter()
        defer { gate.leave() }
        guard !stopped else { return 0 }
        var next: [JailSetup] = []
        var placed = false
        for name in jailNames {
            if name == jail {
                if let setup { next.append(setup) }
                placed = true
            } else if let s = setups[name] {
                next.append(s)
            }
        }
        if !placed, let setup { next.append(setup) }
        var broken = brokenJails
        broken[jail] = brokenReason
        notStarted.remove(jail)
        return try await replace(with: next, broken: broken, restart: restart ? [jail] : [])
    }

    /// The setups of the running jails, in configuration order (what the log sources must follow).
    public func runningSetups() -> [JailSetup] {
        jailNames.filter { !notStarted.contains($0) }.compactMap { setups[$0] }
    }

    static func freshState(_ s: JailSetup) -> JailState {
        var state = JailState(name: s.name, policy: s.policy, ignore: s.ignore)
        state.maxTracked = s.maxTracked
        return state
    }

    /// The body of both reloads; the caller holds the gate.
    func replace(
        with newSetups: [JailSetup], broken: [String: String], restart: Set<String> = []
    ) async throws(FirewallError) -> Int {
        let oldSetups = setups
        // Restarted jails start afresh: counters and pending failures go, bans come back from the store.
        for name in restart where states[name] != nil {
            // As fail2ban stops a jail: its command actions' bans are lifted (flush, or unban each), then actionstop.
            if let s = oldSetups[name], let state = states[name] { enqueueFlush(setup: s, state: state) }
            if let s = oldSetups[name] { enqueueActions(setup: s, phase: "actionstop", ticket: nil) }
            states[name] = nil
            idle.remove(name)
            held[name] = nil
            writer?.submit([.prunePending(jail: name, before: .infinity)])
        }
        let names = Set(newSetups.map(\.name))
        let removed = jailNames.filter { !names.contains($0) }
        var added: Set<String> = []
        var nextSetups: [String: JailSetup] = [:]
        for s in newSetups {
            nextSetups[s.name] = s
            if states[s.name] != nil {
                // In place: the state's tables are not copied.
                states[s.name]?.policy = s.policy
                states[s.name]?.ignore = s.ignore
                states[s.name]?.maxTracked = s.maxTracked
            } else {
                states[s.name] = Self.freshState(s)
                added.insert(s.name)
            }
        }
        // A removed jail lifts its command actions' bans (flush, or unban each) before its actionstop.
        for name in removed {
            if let s = oldSetups[name], let state = states[name] { enqueueFlush(setup: s, state: state) }
        }
        for name in removed {
            states[name] = nil
            idle.remove(name)
            held[name] = nil
            notStarted.remove(name)
        }
        setups = nextSetups
        jailNames = newSetups.map(\.name)
        brokenJails = broken
        if let firewall {
            try await firewall.setUp(jails: fleetFirewall(newSetups))
            await logForwarding(firewall)
        }
        // A removed jail's actionstop runs on its runner after what it still has queued; the runner then ends.
        for name in removed {
            if let s = oldSetups[name] { enqueueActions(setup: s, phase: "actionstop", ticket: nil) }
        }
        installRunners(newSetups)
        for s in newSetups {
            for w in s.warnings { actionsLog.warning("[\(s.name)] \(w)") }
            if added.contains(s.name) { enqueueActions(jail: s.name, phase: "actionstart", ticket: nil) }
        }
        let restored = added.isEmpty ? 0 : await restore(jails: added)
        if !added.isEmpty { await restorePrefixBans(jails: added) }
        // A reload ends idleness (as fail2ban's does): what idle jails held is counted now.
        await releaseIdle(idle.intersection(names))
        return restored
    }

    /// Restores the still-active bans of `jails` from the store in one transaction.
    func restore(jails: Set<String>) async -> Int {
        guard let store, !jails.isEmpty else { return 0 }
        let now = clock()
        let timer = ContinuousClock()
        let started = timer.now
        let records: [BanRecord]
        do {
            records = try store.activeBans(now: now, ordered: false)
        } catch {
            actionsLog.error("cannot read bans from the database: \(error)")
            return 0
        }
        let fetched = timer.now
        // The kernel's transaction starts first and runs on the firewall's thread (a detached task: a child of
        // this actor would wait for it), while the state is noted and the log lines are written here; no
        // failure is counted before this method's first suspension, so none sees a restored address unbanned.
        let live = records.filter { r in
            guard jails.contains(r.jail), setups[r.jail] != nil else { return false }
            return r.end.map { $0 > now } ?? true
        }
        var requests: [BanRequest] = []
        requests.reserveCapacity(live.count)
        for r in live where setups[r.jail]?.firewall != nil {
            requests.append(
                BanRequest(
                    address: r.address, jail: r.jail,
                    duration: r.end.map { .timeout(.seconds($0 - now)) } ?? .permanent))
        }
        let log = actionsLog
        let applying = Task.detached { [firewall, requests] () -> ContinuousClock.Instant in
            if let firewall, !requests.isEmpty {
                do {
                    try await firewall.ban(requests)
                } catch {
                    log.error("cannot restore \(requests.count) bans in nftables: \(error)")
                }
            }
            return timer.now
        }
        // In the order fail2ban restores them (by address text), so the ban lists read the same.
        // The text of each address is made once (a comparison that made it would cost two strings per step).
        let restored = live.lazy
            .map { (text: Array($0.address.description.utf8), record: $0) }
            .sorted {
                $0.text == $1.text ? $0.record.jail < $1.record.jail : $0.text.lexicographicallyPrecedes($1.text)
            }
            .map(\.record)
        for r in restored {
            restoreTotals[r.jail, default: 0] += 1
            states[r.jail]?.noteBanned(r.address, until: r.end)
        }
        // Bans committed whose Ban line a crash kept from being written get it now, the others a Restore Ban.
        var unlogged: Set<BanKeyText> = []
        do {
            unlogged = try store.unloggedBans()
        } catch {
            actionsLog.error("cannot read which bans were logged from the database: \(error)")
        }
        // One batch of lines (one write to the log file), in the restore order.
        var lines: [String] = []
        lines.reserveCapacity(restored.count)
        for r in restored {
            let text = r.address.description
            let late = !unlogged.isEmpty && unlogged.contains(BanKeyText(jail: r.jail, address: text))
            lines.append("[\(r.jail)] \(late ? "Ban" : "Restore Ban") \(text)")
        }
        if !lines.isEmpty { banLog(lines) }
        if !unlogged.isEmpty { writer?.submit([.banLogged(upTo: nil)]) }
        // Command actions get the restored bans as fail2ban gives them: actionban with <restored> = 1, after the
        // jail's actionstart (an action that rebuilt its state there, an ipset say, would lose them otherwise).
        for r in restored where runners[r.jail] != nil {
            enqueueActions(
                jail: r.jail, phase: "actionban",
                ticket: ActionTicket(
                    address: r.address, time: r.timeOfBan, bantime: r.banTime, failures: r.failures,
                    bancount: r.banCount, matches: r.matches, restored: true))
        }
        let logged = timer.now
        let applied = await applying.value
        if !restored.isEmpty {
            func ms(_ d: Duration) -> Int {
                Int(d.components.seconds * 1000 + d.components.attoseconds / 1_000_000_000_000_000)
            }
            let end = timer.now
            actionsLog.info(
                "Restored \(restored.count) bans in \(ms(started.duration(to: end))) ms (database \(ms(started.duration(to: fetched))) ms, then at the same time nftables \(ms(fetched.duration(to: applied))) ms and sort, state and log \(ms(fetched.duration(to: logged))) ms)"
            )
        }
        return restored.count
    }

    /// After a damaged database was replaced by a new one: takes the bans still in the kernel's sets (they outlive
    /// the daemon) into the state and the new store, so they are shown, lifted and restored as usual. Returns how
    /// many were adopted.
    public func adoptKernelBans() async -> Int {
        guard let firewall else { return 0 }
        var adopted = 0
        for name in jailNames {
            guard setups[name]?.firewall != nil else { continue }
            let entries: [BannedEntry]
            do {
                entries = try await firewall.list(jail: name)
            } catch {
                actionsLog.error("[\(name)] cannot read its bans back from nftables: \(error)")
                continue
            }
            let now = clock()
            var changes: [StoreChange] = []
            for e in entries {
                let remaining = e.remaining.map { Double($0.components.seconds) }
                guard states[name]?.isBanned(e.address, now: now) == false else { continue }
                states[name]?.noteBanned(e.address, until: remaining.map { now + $0 })
                changes.append(
                    .banCountingHistory(
                        BanRecord(jail: name, address: e.address, timeOfBan: now, banTime: remaining ?? -1),
                        acrossJails: false))
                actionsLog.notice("[\(name)] Adopt Ban \(e.address) (in the kernel, not in the database)")
            }
            adopted += changes.count
            // Their lines (Adopt Ban) are written: mark them so, or the next start would write Ban lines.
            if !changes.isEmpty { writer?.submit(changes + [.banLogged(upTo: nil)]) }
        }
        return adopted
    }

    /// Puts back the failures counted before a restart (stored with the positions that cover them).
    func restorePending() {
        guard let store else { return }
        let records: [PendingFailureRecord]
        do {
            records = try store.pendingFailures()
        } catch {
            actionsLog.error("cannot read pending failures from the database: \(error)")
            return
        }
        let now = clock()
        var restored = 0
        for r in records where states[r.jail] != nil {
            states[r.jail]?.restorePending(r.address, JailState.Pending(times: r.times, matches: r.matches), now: now)
            restored += 1
        }
        if restored > 0 { filterLog.info("Restored pending failures of \(restored) addresses") }
    }

    /// Stops: `actionstop` for command actions and removes the firewall table.
    public func shutdown() async {
        await gate.enter()
        defer { gate.leave() }
        guard !stopped else { return }
        stopped = true
        // Bans already decided reach the kernel before the table goes.
        if inFlight > 0 { await withCheckedContinuation { drained.append($0) } }
        for name in jailNames {
            if let s = setups[name], let state = states[name] { enqueueFlush(setup: s, state: state) }
            enqueueActions(jail: name, phase: "actionstop", ticket: nil)
        }
        await finishRunners()
        if let firewall {
            do { try await firewall.tearDown() } catch {
                actionsLog.error("cannot remove the nftables table: \(error)")
            }
        }
        writer?.stop()
    }

    /// Returns once every store change made so far is written (or was tried, when writing fails).
    public func waitUntilStored() async {
        await writer?.waitUntilWritten()
    }

    /// The store writer's state: nil without a store.
    struct StoreHealth: Sendable {
        var path: String
        var health: StoreWriter.Health
    }

    func storeHealth() -> StoreHealth? {
        writer.map { StoreHealth(path: $0.path, health: $0.health) }
    }

    // MARK: Failures and bans

    /// Records failures found by `jail`'s filter; bans the addresses that reach `maxretry`, all in one transaction.
    public func record(jail: String, events: [FailureEvent]) async {
        await process([SourceBatch(failures: [(jail, events)])])
    }

    /// Records what the sources read: every batch's failures, then the bans they lead to in one nftables
    /// transaction, then one store change list with the bans, the pending failures that changed and the batches'
    /// positions, in that order (see the type's comment).
    public func process(_ batches: [SourceBatch]) async {
        guard !stopped else { return }
        var decisions: [(jail: String, decisions: [BanDecision], captures: [IPAddress: [String: String]])] = []
        var touched: [(jail: String, address: IPAddress)] = []
        var progress: [StoreChange] = []
        var prolonged: [(jail: String, address: IPAddress, ban: JailState.Ban)] = []
        let now = clock()
        for batch in batches {
            for (jail, events) in batch.failures {
                if hold(jail: jail, events: events) { continue }
                var captures: [IPAddress: [String: String]] = [:]
                let d = recordFailures(
                    jail: jail, events: events, now: now, touched: &touched, captures: &captures, prolonged: &prolonged)
                if !d.isEmpty { decisions.append((jail, d, captures)) }
            }
            if let p = batch.progress { progress.append(p) }
        }
        // Pending failures as they stand now, once per address (a banned address's row is deleted).
        var pending: [StoreChange] = []
        if writer != nil {
            var seen = Set<BanKey>()
            for (jail, address) in touched where seen.insert(BanKey(address: address, jail: jail)).inserted {
                let p = states[jail]?.pending(address)
                pending.append(
                    .pending(
                        PendingFailureRecord(
                            jail: jail, address: address, times: p?.times ?? [], matches: p?.matches ?? [])))
            }
        }
        await apply(decisions, then: pending + progress)
        await extend(prolonged)
    }

    /// Counts `events` in `jail`'s state machine; returns the bans it decided on.
    private func recordFailures(
        jail: String, events: [FailureEvent], now: Double, touched: inout [(jail: String, address: IPAddress)],
        captures: inout [IPAddress: [String: String]],
        prolonged: inout [(jail: String, address: IPAddress, ban: JailState.Ban)]
    ) -> [BanDecision] {
        guard let setup = setups[jail], states[jail] != nil else { return [] }
        let droppedBefore = states[jail]?.droppedTracked ?? 0
        defer {
            let droppedAfter = states[jail]?.droppedTracked ?? 0
            if droppedBefore == 0, droppedAfter > 0, let cap = setup.maxTracked {
                filterLog.warning(
                    "[\(jail)] more than \(cap) addresses with failures below maxretry (maxtracked): forgetting the ones whose last failure is oldest"
                )
            }
        }
        var decisions: [BanDecision] = []
        let increment = setup.policy.increment
        let overall = increment?.overallJails ?? false
        let store = self.store
        let log = actionsLog
        for event in events {
            filterLog.info("[\(jail)] Found \(event.address) - \(Self.timestamp(event.time))")
            guard
                let verdict = states[jail]?.record(
                    event, now: now,
                    previousBans: { address in
                        // Only bantime.increment needs the history now; otherwise the store counts it when writing.
                        guard let store, increment != nil else { return 0 }
                        do {
                            return try store.banCount(address: address, jail: overall ? nil : jail)
                        } catch {
                            log.error("[\(jail)] cannot read the ban history of \(address): \(error); counting from 0")
                            return 0
                        }
                    })
            else { return decisions }
            switch verdict {
            case .ban(let d):
                if withheld(jail: jail, d.address) { continue }
                decisions.append(d)
                if !event.fields.isEmpty { captures[d.address] = event.fields }
                // Later failures in the same batch see the address as banned.
                states[jail]?.noteBanned(d.address, until: d.end)
                touched.append((jail, d.address))
                escalate(jail: jail, after: d, now: now)
            case .ignored(let why):
                filterLog.info("[\(jail)] Ignore \(event.address) by \(why)")
            case .alreadyBanned:
                filterLog.info("[\(jail)] \(event.address) already banned")
            case .prolonged(let address, _):
                if let ban = states[jail]?.ban(of: address) { prolonged.append((jail, address, ban)) }
                touched.append((jail, address))
            case .counted:
                touched.append((jail, event.address))
            case .tooOld:
                break
            }
        }
        return decisions
    }

    /// `set JAIL banip ADDR…`: bans now, whatever the counters say. Ignored addresses are refused with the reason.
    public func banManually(
        jail: String, addresses: [IPAddress], force: Bool = false, client: IPAddress? = nil
    ) async -> (banned: Int, refused: [String]) {
        guard !stopped, let setup = setups[jail], states[jail] != nil else { return (0, ["unknown jail \(jail)"]) }
        let now = clock()
        var decisions: [BanDecision] = []
        var refused: [String] = []
        var prolonged: [(jail: String, address: IPAddress, ban: JailState.Ban)] = []
        for a in addresses {
            if let why = setup.ignore.reason(for: a) {
                refused.append("\(a) is not banned: covered by \(why)")
                continue
            }
            if states[jail]?.isBanned(a, now: now) ?? true {
                // Banned again: fail2ban prolongs the ban to end a bantime from now.
                if let ban = states[jail]?.prolong(a, at: now) { prolonged.append((jail, a, ban)) }
                continue
            }
            if !force, let why = adminProtection(jail: jail, a, client: client) {
                refused.append("\(a) is not banned: \(why); add --force to ban it anyway")
                actionsLog.warning("[\(jail)] Ban of \(a) withheld: \(why) (banip without --force)")
                continue
            }
            var previous = 0
            if let store, setup.policy.increment != nil {
                do {
                    previous = try store.banCount(address: a, jail: jail)
                } catch {
                    actionsLog.error("[\(jail)] cannot read the ban history of \(a): \(error); counting from 0")
                }
            }
            let duration = setup.policy.duration(previousBans: previous)
            let d = BanDecision(
                address: a, start: now, duration: duration, failures: 0, matches: [], previousBans: previous)
            states[jail]?.noteBanned(a, until: d.end)
            decisions.append(d)
        }
        let pending =
            writer == nil
            ? []
            : decisions.map {
                StoreChange.pending(PendingFailureRecord(jail: jail, address: $0.address, times: []))
            }
        await apply([(jail, decisions, [:])], then: pending)
        await extend(prolonged)
        return (decisions.count, refused)
    }

    /// Applies bans: the kernel first (one transaction), then the store writer gets the bans and `changes`
    /// (pending failures, positions) as one list, and writes the `Ban` lines just before committing them; then
    /// command actions.
    func apply(
        _ decisions: [(jail: String, decisions: [BanDecision], captures: [IPAddress: [String: String]])],
        then changes: [StoreChange]
    ) async {
        inFlight += 1
        defer {
            inFlight -= 1
            if inFlight == 0 {
                for c in drained { c.resume() }
                drained = []
            }
        }
        var (requests, stored, lines) = takePrefixDecisions()
        for (jail, list, _) in decisions {
            guard let setup = setups[jail] else { continue }
            let overall = setup.policy.increment?.overallJails ?? false
            for d in list {
                if setup.firewall != nil {
                    requests.append(
                        BanRequest(
                            address: d.address, jail: jail,
                            duration: d.duration.map { .timeout(.seconds($0)) } ?? .permanent))
                }
                let record = BanRecord(
                    jail: jail, address: d.address, timeOfBan: d.start, banTime: d.duration ?? -1,
                    banCount: d.previousBans + 1, failures: d.failures,
                    matches: Array(d.matches.suffix(max(0, storeMatchLimit.load(ordering: .relaxed)))))
                stored.append(
                    setup.policy.increment != nil ? .ban(record) : .banCountingHistory(record, acrossJails: overall))
                lines.append("[\(jail)] Ban \(d.address)")
            }
        }
        if let firewall, !requests.isEmpty {
            do {
                try await firewall.ban(requests)
            } catch {
                actionsLog.error("nftables refused \(requests.count) bans: \(error)")
            }
        }
        // After the await: jails may have been reloaded away; their states are re-read, never assumed.
        for (jail, list, _) in decisions {
            for d in list { states[jail]?.noteBanned(d.address, until: d.end) }
        }
        notePrefixBansApplied(requests)
        let banLog = self.banLog
        let shared = fleetOutbox(decisions.flatMap { jail, list, _ in list.map { (jail, $0) } })
        if let writer {
            let banLines = lines
            var note: (@Sendable () -> Void)? = nil
            let wake = shared.isEmpty ? nil : fleet?.wake
            if !banLines.isEmpty || wake != nil {
                note = { @Sendable in
                    if !banLines.isEmpty { banLog(banLines) }
                    wake?()
                }
            }
            writer.submit(stored + shared + changes, afterCommit: note)
        } else if !lines.isEmpty {
            banLog(lines)
        }
        for (jail, list, captures) in decisions {
            for d in list {
                enqueueActions(
                    jail: jail, phase: "actionban",
                    ticket: ActionTicket(
                        address: d.address, time: d.start, bantime: d.duration ?? -1, failures: d.failures,
                        bancount: d.previousBans + 1, matches: d.matches, captures: captures[d.address] ?? [:]))
            }
        }
    }

    /// Unbans `addresses` in `jail` (or every jail when nil). Returns how many bans were lifted.
    public func unban(_ addresses: [IPAddress], jail: String? = nil) async -> Int {
        var keys: [BanKey] = []
        for name in jail.map({ [$0] }) ?? jailNames {
            for a in addresses where states[name]?.noteUnbanned(a) == true {
                keys.append(BanKey(address: a, jail: name))
            }
        }
        await lift(keys)
        return keys.count
    }

    /// `unban --all`: lifts every ban in every jail (or one jail).
    public func unbanAll(jail: String? = nil) async -> Int {
        var keys: [BanKey] = []
        for name in jail.map({ [$0] }) ?? jailNames {
            keys += (states[name]?.unbanAll() ?? []).map { BanKey(address: $0, jail: name) }
        }
        let prefixes = await unbanAllPrefixes(jail: jail)
        await lift(keys)
        return keys.count + prefixes
    }

    func lift(_ keys: [BanKey]) async {
        guard !keys.isEmpty else { return }
        // The writer retries until the store takes it: a lifted ban never comes back at the next start.
        let shared = fleetOutbox(unbans: keys)
        writer?.submit(
            keys.map { .unban(address: $0.address, jail: $0.jail) } + shared,
            afterCommit: shared.isEmpty ? nil : fleet?.wake)
        if let firewall {
            let native = keys.filter { setups[$0.jail]?.firewall != nil }
            if !native.isEmpty {
                do { try await firewall.unban(native) } catch {
                    actionsLog.error("nftables refused an unban: \(error)")
                }
            }
        }
        for k in keys {
            unbanTotals[k.jail, default: 0] += 1
            actionsLog.notice("[\(k.jail)] Unban \(k.address)")
            enqueueActions(
                jail: k.jail, phase: "actionunban",
                ticket: ActionTicket(address: k.address, time: clock(), bantime: nil))
        }
    }

    /// Periodic work: bans that ended (the kernel already dropped them) are logged as unbanned and the
    /// failure windows are trimmed.
    public func housekeeping() async {
        let now = clock()
        for name in jailNames {
            // Re-read after every suspension: a reload may have removed the jail.
            endPrefixBans(jail: name, now: now)
            guard let ended = states[name]?.purge(now: now), let s = setups[name] else { continue }
            unbanTotals[name, default: 0] += ended.count
            for a in ended {
                actionsLog.notice("[\(name)] Unban \(a)")
                enqueueActions(
                    jail: s.name, phase: "actionunban", ticket: ActionTicket(address: a, time: now, bantime: nil))
            }
        }
    }

    /// Hourly store maintenance: ban history older than `purgeAge` and pending failures out of their jail's
    /// `findtime` are deleted (through the writer, so a failure is retried like any other).
    public func purgeStore(purgeAge: Double) {
        guard let writer else { return }
        let now = clock()
        var changes: [StoreChange] = [.purge(olderThan: now - purgeAge, now: now)]
        for name in jailNames {
            if let s = setups[name] { changes.append(.prunePending(jail: name, before: now - s.policy.findTime)) }
        }
        writer.submit(changes)
    }

    // MARK: Reading state

    /// A jail's counters and bans, for `status JAIL`.
    public struct JailStatus: Sendable, Hashable {
        public var name: String
        public var currentlyFailed: Int
        public var totalFailed: Int
        public var currentlyBanned: Int
        public var totalBanned: Int
        public var banned: [IPAddress]
        public var logPaths: [String]
        public var journalMatch: [[String]]
        public var usesJournal: Bool
    }

    /// Status of `jail`, nil when unknown.
    public func status(jail: String) -> JailStatus? {
        guard let setup = setups[jail], let state = states[jail] else { return nil }
        let now = clock()
        let banned = state.bannedAddresses.filter { state.isBanned($0, now: now) }
        return JailStatus(
            name: jail, currentlyFailed: state.currentlyFailed, totalFailed: state.totalFailed,
            currentlyBanned: banned.count, totalBanned: state.totalBanned, banned: banned, logPaths: setup.logPaths,
            journalMatch: setup.journalMatch, usesJournal: setup.source.isJournal)
    }

    /// The setup of `jail` (for `get`).
    public func setup(jail: String) -> JailSetup? { setups[jail] }

    /// Every running jail's totals and current numbers, and the store's, for the metrics endpoint; `lineCounts`
    /// gives a jail's line counters (kept by the log sources).
    func metricsSnapshot(lineCounts: (String) -> LineCounts) -> MetricsSnapshot {
        var snapshot = MetricsSnapshot()
        for name in jailNames {
            guard let state = states[name] else { continue }
            var j = JailMetricsSnapshot(jail: name)
            let lines = lineCounts(name)
            j.linesRead = lines.lines
            j.filterNanoseconds = lines.filterNanoseconds
            j.linesTooLong = lines.tooLong
            j.linesAtMatchLimit = lines.matchLimit
            j.failures = state.totalFailed
            j.bans = state.totalBanned
            j.unbans = unbanTotals[name] ?? 0
            j.restores = restoreTotals[name] ?? 0
            // O(1): expired bans leave the count within a second (housekeeping), so no per-scrape walk over every ban.
            j.banned = state.currentlyBanned
            j.failing = state.currentlyFailed
            j.actionQueueDrops = runners[name].map { $0.counters.dropped + $0.counters.abandoned } ?? 0
            snapshot.jails.append(j)
        }
        if let health = writer?.health {
            snapshot.storeErrors = health.failures
            snapshot.storeQueued = health.queued
        }
        return snapshot
    }

    /// Jails in which `address` is banned now.
    public func jailsBanning(_ address: IPAddress) -> [String] {
        let now = clock()
        return jailNames.filter { states[$0]?.isBanned(address, now: now) == true }
    }

    // MARK: Helpers

    /// Queues `phase` of `jail`'s command actions on the jail's runner; never waits for them.
    func enqueueActions(jail: String, phase: String, ticket: ActionTicket?) {
        guard let setup = setups[jail] else { return }
        enqueueActions(setup: setup, phase: phase, ticket: ticket)
    }

    /// Queues `phase` for `setup`'s jail (also one a reload is removing: its runner is still in place).
    func enqueueActions(setup: JailSetup, phase: String, ticket: ActionTicket?) {
        let jail = setup.name
        guard let runner = runners[jail] else { return }
        let t = ticket ?? ActionTicket(address: nil, time: clock(), bantime: nil)
        var base: [String: String] = ["name": setup.name, "protocol": setup.configuration.protocol ?? "tcp"]
        if let p = setup.configuration.port { base["port"] = p }
        if let state = states[jail] {
            base["jail.banned"] = String(state.currentlyBanned)
            base["jail.banned_total"] = String(state.totalBanned)
            base["jail.found"] = String(state.currentlyFailed)
            base["jail.found_total"] = String(state.totalFailed)
        }
        var values = t.values(base: base)
        if t.bantime == nil { values.trusted["bantime"] = ActionTicket.integerText(setup.policy.banTime) }
        runner.enqueue(
            ActionRunner.Job(
                phase: phase, subject: t.address?.description ?? "", values: values,
                enrich: ActionTicket.enrich(address: t.address, jail: jail, store: store)))
    }

    /// Lifts a stopping jail's bans from its command actions, as fail2ban does at stop: each action's
    /// `actionflush`, or `actionunban` for every ban when it has none. The bans stay in the store (restored, with
    /// `<restored>` = 1, at the next start).
    private func enqueueFlush(setup: JailSetup, state: JailState) {
        guard let runner = runners[setup.name] else { return }
        let now = clock()
        var base: [String: String] = ["name": setup.name, "protocol": setup.configuration.protocol ?? "tcp"]
        if let p = setup.configuration.port { base["port"] = p }
        let each = state.bannedAddresses.filter { state.isBanned($0, now: now) }.map { address in
            var values = ActionTicket(address: address, time: now, bantime: setup.policy.banTime).values(base: base)
            values.trusted["bantime"] = ActionTicket.integerText(setup.policy.banTime)
            return values
        }
        var job = ActionRunner.Job(
            phase: "actionflush", values: ActionTicket(address: nil, time: now, bantime: nil).values(base: base))
        job.unbanEach = each
        runner.enqueue(job)
    }

    /// Runners for the jails with command actions. A jail that stays with the same actions keeps its runner; a
    /// changed one gets a new runner that starts after the old one's queue has run.
    func installRunners(_ setups: [JailSetup]) {
        var next: [String: ActionRunner] = [:]
        for s in setups where !s.commandActions.isEmpty {
            if let old = runners[s.name], old.actions == s.commandActions {
                next[s.name] = old
            } else {
                next[s.name] = ActionRunner(
                    jail: s.name, actions: s.commandActions, after: runners[s.name], log: makeLogger("fail2ban.actions")
                )
            }
        }
        for (name, old) in runners where next[name] !== old { old.retire() }
        runners = next
    }

    /// At stop: waits for every runner's queue, up to its slowest action's timeout; what is left is logged.
    private func finishRunners() async {
        let all = runners
        runners = [:]
        await withTaskGroup(of: Void.self) { group in
            for runner in all.values {
                let timeout = runner.actions.map(\.timeout).max() ?? 60
                group.addTask { await runner.finish(timeout: timeout) }
            }
        }
    }

    /// Waits until the command actions queued so far have run, at most `timeout` seconds (tests, `stop`).
    @discardableResult
    public func waitForActions(timeout: Double = 30) async -> Bool {
        let all = Array(runners.values)
        var idle = true
        for runner in all { idle = await runner.waitUntilIdle(timeout: timeout) && idle }
        return idle
    }

    /// Command-action counters of `jail` (nil without command actions), for `status`.
    public func actionCounters(jail: String) -> ActionRunner.Counters? { runners[jail]?.counters }

    static func timestamp(_ t: Double) -> String {
        var tt = time_t(Int(saturating: t))
        var tm = Glibc.tm()
        localtime_r(&tt, &tm)
        var buf = [CChar](repeating: 0, count: 32)
        let n = strftime(&buf, buf.count, "%Y-%m-%d %H:%M:%S", &tm)
        return String(decoding: buf[0..<n].map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }
}
