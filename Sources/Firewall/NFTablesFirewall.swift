internal import CNFTables
internal import CNetlink
import Core

/// The real firewall: bans in Portcullis's own nftables table through libnftables, in-process.
///
/// All libnftables calls run on one dedicated thread (optionally inside a named network namespace). The backend
/// remembers the bans it applied; every ``FirewallConfiguration/healthCheckInterval`` it checks that its table and
/// chain are still there, every ``FirewallConfiguration/fullCheckInterval`` also every set and rule, and when
/// someone flushed the ruleset, deleted the table or flushed the chain, it rebuilds the table with every
/// still-active ban in one transaction. It also follows the kernel's change notifications
/// (``FirewallConfiguration/followsChanges``): bans another process deletes (`nft flush set`, `nft delete element`)
/// are put back at once with their remaining time, and a deleted table, chain, set or rule is rebuilt at once.
///
/// ```swift
/// let firewall = try NFTablesFirewall(configuration: FirewallConfiguration())
/// try await firewall.setUp(jails: [JailFirewall(name: "sshd", ports: .ports([PortRange(22)]))])
/// let ban = BanRequest(address: IPAddress("192.0.2.7")!, jail: "sshd", duration: .timeout(.seconds(600)))
/// try await firewall.ban([ban])
/// ```
public final class NFTablesFirewall: FirewallBackend {
    /// The command builder (table, chain and set names).
    public let ruleset: NFTRuleset
    /// The configuration.
    public var configuration: FirewallConfiguration { ruleset.configuration }
    /// The named network namespace the backend works in; nil for the daemon's own.
    public let networkNamespace: String?

    /// The backend's thread (see ``NFTExecutor``), and the actor that owns the context and all state on it.
    private let executor: ThreadExecutor
    private let state: StateBox

    /// Starts the backend thread (entering the namespace if configured). Nothing is changed until ``setUp(jails:)``.
    ///
    /// - Parameters:
    ///   - onEvent: called on the backend thread when the table was restored (or restoring failed).
    ///   - onTransaction: called on the backend thread with the time libnftables took for each transaction it
    ///     applied (bans, unbans, set-up, rebuilds); nil (the default) measures nothing.
    public init(
        configuration: FirewallConfiguration, onEvent: @escaping @Sendable (FirewallEvent) -> Void = { _ in },
        onTransaction: (@Sendable (Duration) -> Void)? = nil
    ) throws(FirewallError) {
        try validateIdentifier(configuration.tableName, what: "table name")
        try validateIdentifier(configuration.chainName, what: "chain name")
        let ruleset = NFTRuleset(configuration: configuration)
        let (executor, context) = try NFTExecutor.start(networkNamespace: configuration.networkNamespace)
        let state = StateBox(executor: executor, context: context, onEvent: onEvent, onTransaction: onTransaction)
        self.ruleset = ruleset
        self.networkNamespace = configuration.networkNamespace
        self.executor = executor
        self.state = state
        // The notification socket is opened on the thread, in its namespace; both hooks run there between jobs.
        if configuration.followsChanges,
            let fd = executor.perform({ state.assumeIsolated { $0.openMonitor() } })
        {
            executor.watch(fd) {
                state.assumeIsolated { $0.monitorReadable(context: $0.context, ruleset: ruleset) }
            }
        }
        executor.tick(every: configuration.healthCheckInterval) {
            state.assumeIsolated { $0.healthCheck(context: $0.context, ruleset: ruleset) }
        }
    }

    /// Stops the backend thread after the queued calls (does not touch the table; call ``tearDown()`` first for
    /// that). Blocks briefly; later calls fail with `.stopped`. Also done when the backend is released.
    public func shutdown() {
        executor.shutdown()
    }

    deinit {
        executor.shutdown()
    }

    /// Reads the existing table, then in one transaction: creates table/chain/sets as needed, replaces the rules,
    /// deletes sets of removed jails. Bans that survived in the kernel are remembered for restores.
    public func setUp(jails: [JailFirewall]) async throws(FirewallError) {
        for jail in jails { try validateIdentifier(jail.name, what: "jail name", jail: jail.name) }
        let ruleset = ruleset
        let state = state
        try await state.run { state, context throws(FirewallError) in
            try state.setUp(jails: jails, context: context, ruleset: ruleset)
        }
    }

    /// Bans in one transaction (`add element`; known addresses are deleted and re-added for the new timeout).
    public func ban(_ requests: [BanRequest]) async throws(FirewallError) {
        guard !requests.isEmpty else { return }
        let ruleset = ruleset
        let state = state
        try await state.run { state, context throws(FirewallError) in
            try state.ban(requests, context: context, ruleset: ruleset)
            state.settleMissed(context: context, ruleset: ruleset)
        }
    }

    /// Unbans in one transaction; addresses not banned are ignored.
    public func unban(_ keys: [BanKey]) async throws(FirewallError) {
        guard !keys.isEmpty else { return }
        let ruleset = ruleset
        let state = state
        try await state.run { state, context throws(FirewallError) in
            try state.unban(keys, context: context, ruleset: ruleset)
        }
    }

    /// Flushes the jail's two sets.
    public func flush(jail: String) async throws(FirewallError) {
        let ruleset = ruleset
        let state = state
        try await state.run { state, context throws(FirewallError) in
            try state.flush(jail: jail, context: context, ruleset: ruleset)
        }
    }

    /// Reads the jail's sets back from the kernel (timeouts and remaining time in whole seconds).
    public func list(jail: String) async throws(FirewallError) -> [BannedEntry] {
        let ruleset = ruleset
        let state = state
        return try await state.run { state, context throws(FirewallError) in
            try state.requireJail(jail)
            var entries: [BannedEntry] = []
            for family in [IPAddress.Family.v4, .v6] {
                let name = ruleset.setName(jail: jail, family: family)
                let output: String
                do throws(NFTError) {
                    output = try context.run("list set inet \(ruleset.configuration.tableName) \(name)", json: true)
                } catch {
                    throw FirewallError(
                        code: .nftables, jail: jail, message: "cannot list set \(name)", underlying: error)
                }
                for set in try NFTListing.sets(fromJSON: output, table: ruleset.configuration.tableName) {
                    for e in set.elements {
                        entries.append(
                            BannedEntry(
                                address: e.address, jail: jail, timeout: e.timeoutSeconds.map { .seconds($0) },
                                remaining: e.expiresSeconds.map { .seconds($0) }))
                    }
                }
            }
            return entries
        }
    }

    /// Stops healing and deletes the table, unless ``FirewallConfiguration/keepTableOnStop``.
    public func tearDown() async throws(FirewallError) {
        let ruleset = ruleset
        let state = state
        try await state.run { state, context throws(FirewallError) in
            state.isSetUp = false
            // Later bans are refused (unknown jail) rather than rebuilding the table.
            state.jails = []
            guard !ruleset.configuration.keepTableOnStop else { return }
            try state.send(ruleset.tearDown(), context: context, syntax: ruleset.configuration.syntax)
            state.active = [:]
        }
    }

    /// The host's forwarding state read at the last ``setUp(jails:)`` in the firewall's namespace (it decides
    /// `banforward = auto`), and which jails ban forwarded connections.
    public func forwarding() async throws(FirewallError) -> (state: ForwardingState, jails: [String]) {
        let state = state
        return try await state.run { state, _ throws(FirewallError) in
            (state.forwarding, state.jails.filter { $0.banForward == .yes }.map(\.name))
        }
    }

    /// How many bans the backend believes are active (expired ones not counted).
    public func activeBanCount() async throws(FirewallError) -> Int {
        let state = state
        return try await state.run { state, _ throws(FirewallError) in
            state.pruneExpired()
            return state.active.count
        }
    }
}

/// The backend's memory and its libnftables context: an actor on the backend's thread, so every access (the
/// calls' jobs, the health-check tick, the notification reads) runs there, one at a time.
private actor StateBox {
    nonisolated let executor: ThreadExecutor
    nonisolated var unownedExecutor: UnownedSerialExecutor { executor.asUnownedSerialExecutor() }
    /// Created on the thread (in the backend's namespace), used only there.
    let context: NFTContext

    var jails: [JailFirewall] = []
    /// Active bans: deadline, or nil for permanent.
    var active: [BanKey: ContinuousClock.Instant?] = [:]
    var isSetUp = false
    let clock = ContinuousClock()
    let onEvent: @Sendable (FirewallEvent) -> Void
    let onTransaction: (@Sendable (Duration) -> Void)?

    init(
        executor: ThreadExecutor, context: sending NFTContext, onEvent: @escaping @Sendable (FirewallEvent) -> Void,
        onTransaction: (@Sendable (Duration) -> Void)?
    ) {
        self.executor = executor
        self.context = context
        self.onEvent = onEvent
        self.onTransaction = onTransaction
    }

    /// Runs one call of the backend with the context. After ``ThreadExecutor/shutdown()`` the executor runs late
    /// jobs on another thread: they fail with `.stopped` and never touch the context there.
    func run<T: Sendable>(
        _ body: @Sendable (isolated StateBox, NFTContext) throws(FirewallError) -> T
    ) throws(FirewallError) -> T {
        guard executor.isOnThread else {
            throw FirewallError(code: .stopped, message: "the firewall backend was shut down")
        }
        return try body(self, context)
    }

    func requireJail(_ name: String) throws(FirewallError) {
        guard jails.contains(where: { $0.name == name }) else {
            throw FirewallError(
                code: .unknownJail, jail: name, message: "jail '\(name)' has no firewall set; it was not set up")
        }
    }

    func send(
        _ transaction: NFTTransaction, context: NFTContext, syntax: FirewallConfiguration.Syntax
    )
        throws(FirewallError)
    {
        guard !transaction.isEmpty else { return }
        // A large transaction runs with the notification group left: the kernel would otherwise build one
        // notification per element for this socket (three times the kernel time of the transaction itself, and an
        // overrun of the buffer anyway). What another process commits meanwhile is found by the generation count:
        // it grew by more than this transaction's one commit.
        var quiet: (monitor: NFTMonitor, generation: Int64)?
        if transaction.elementCount > Self.quietElements, mayGoQuiet, let monitor, let before = NFTMonitor.generation(),
            monitor.subscribe(false)
        {
            quiet = (monitor, before)
        } else if transaction.elementCount > 2000 || transaction.commands.contains(where: \.isStructural) {
            // Its notifications may overflow the socket: an overrun right after is this transaction's own echo.
            ownBulk = true
        }
        var committed = false
        defer {
            if let quiet {
                if !quiet.monitor.subscribe(true), !monitorDeaf {
                    // No notifications from now on: the periodic full check takes over at every size.
                    monitorDeaf = true
                    onEvent(.monitorUnavailable("cannot rejoin the notification group: \(Syscall.errorText())"))
                }
                let after = NFTMonitor.generation()
                if after.map({ ($0 - quiet.generation) & 0xffff_ffff > (committed ? 1 : 0) }) ?? true {
                    missedWhileQuiet = true
                }
            }
        }
        do {
            let text = transaction.rendered(syntax)
            if let onTransaction {
                let started = clock.now
                defer { onTransaction(started.duration(to: clock.now)) }
                try context.run(text, json: syntax == .json)
            } else {
                try context.run(text, json: syntax == .json)
            }
            committed = true
        } catch {
            throw FirewallError(code: .nftables, message: "nftables rejected the transaction", underlying: error)
        }
    }

    /// The host's forwarding state read at the last set-up (which decided `banforward = auto`).
    var forwarding = ForwardingState(ipv4: false, ipv6: false, docker: false)

    func setUp(jails requested: [JailFirewall], context: NFTContext, ruleset: NFTRuleset) throws(FirewallError) {
        let table = ruleset.configuration.tableName
        // Read on this thread, so in the firewall's network namespace.
        forwarding = ForwardingState.read(chainsListing: try? context.run("list chains"))
        let jails = requested.map { $0.resolved(forwarding) }
        var existing: [NFTListedSet] = []
        do {
            let tables = try context.run("list tables")
            if NFTListing.hasTable(table, inTextListing: tables) {
                existing = try NFTListing.sets(
                    fromJSON: try context.run("list table inet \(table)", json: true), table: table)
            }
        } catch let error as NFTError {
            throw FirewallError(code: .nftables, message: "cannot read table inet \(table)", underlying: error)
        } catch let error as FirewallError {
            throw error
        } catch {
            throw FirewallError(code: .nftables, message: "cannot read table inet \(table): \(error)")
        }
        var wanted: [String: String] = [:]
        var jailOfSet: [String: (jail: String, kind: BanScope.Kind)] = [:]
        for jail in jails {
            for kind in jail.scopes {
                for family in [IPAddress.Family.v4, .v6] {
                    let name = ruleset.setName(jail: jail.name, family: family, kind: kind)
                    wanted[name] = family == .v4 ? "ipv4_addr" : "ipv6_addr"
                    jailOfSet[name] = (jail.name, kind)
                }
            }
        }
        // Keep a set only when it is wanted and has the right type and flags; otherwise delete (and recreate).
        var stale: [String] = []
        var kept: [NFTListedSet] = []
        for set in existing {
            let interval = jailOfSet[set.name]?.kind == .prefix
            if wanted[set.name] == set.type && set.flags.contains("timeout")
                && set.flags.contains("interval") == interval
            {
                kept.append(set)
            } else {
                stale.append(set.name)
            }
        }
        // Bans this backend applied that the kernel lost (table deleted before a reload) go back in too.
        let configured = Set(jails.map(\.name))
        var inKernel: Set<BanKey> = []
        for set in kept {
            guard let (jail, kind) = jailOfSet[set.name] else { continue }
            for e in set.elements { inKernel.insert(BanKey(address: e.address, jail: jail, scope: e.scope(kind))) }
        }
        let missing = remainingBans().filter { configured.contains($0.jail) && !inKernel.contains($0.key) }
        var transaction = ruleset.setUp(jails: jails, staleSets: stale)
        transaction.commands += ruleset.ban(missing).commands
        try send(transaction, context: context, syntax: ruleset.configuration.syntax)
        self.jails = jails
        setOwners = [:]
        for jail in jails {
            // Prefix sets are interval sets (start and end elements): their deletions are healed by the checks.
            for kind in jail.scopes where kind != .prefix {
                for family in [IPAddress.Family.v4, .v6] {
                    setOwners[ruleset.setName(jail: jail.name, family: family, kind: kind)] = (
                        jail.name, kind == .fleet ? .fleet : .address
                    )
                }
            }
        }
        isSetUp = true
        // Remember what survived in the kernel, so a later restore puts it back too.
        let now = clock.now
        active = active.filter { configured.contains($0.key.jail) }
        for set in kept {
            guard let (jail, kind) = jailOfSet[set.name] else { continue }
            for e in set.elements {
                let deadline: ContinuousClock.Instant? =
                    e.timeoutSeconds == nil ? nil : now.advanced(by: .seconds(e.expiresSeconds ?? 0))
                active[BanKey(address: e.address, jail: jail, scope: e.scope(kind))] = deadline
            }
        }
    }

    func ban(_ requests: [BanRequest], context: NFTContext, ruleset: NFTRuleset) throws(FirewallError) {
        for jail in Set(requests.map(\.jail)) { try requireJail(jail) }
        // An expired entry still in `active` only costs a harmless delete + re-add; pruning happens in the tick.
        let replacing = Set(requests.lazy.map(\.key).filter { self.active[$0] != nil })
        do {
            try send(
                ruleset.ban(requests, replacing: replacing), context: context, syntax: ruleset.configuration.syntax)
            record(requests)
        } catch {
            // The table may have vanished since the last health check: rebuild it with these bans included.
            guard isIntact(context: context, ruleset: ruleset) == false else { throw error }
            // Only these keys change: their previous entries are kept (not a copy of every ban), to put back.
            var seen: Set<BanKey> = []
            let previous = requests.filter { seen.insert($0.key).inserted }.map { ($0.key, active[$0.key]) }
            record(requests)
            do {
                try restore(context: context, ruleset: ruleset)
            } catch {
                // nil: it was not there; .some(nil): permanent; .some(deadline).
                for (key, entry) in previous { active[key] = entry }
                throw error
            }
        }
    }

    private func record(_ requests: [BanRequest]) {
        let now = clock.now
        active.reserveCapacity(active.count + requests.count)
        for r in requests {
            let key = r.key
            switch r.duration {
            case .permanent: active[key] = .some(nil)
            case .timeout(let d):
                if d > .zero { active[key] = .some(now.advanced(by: d)) } else { active[key] = nil }
            }
        }
    }

    func unban(_ keys: [BanKey], context: NFTContext, ruleset: NFTRuleset) throws(FirewallError) {
        for jail in Set(keys.map(\.jail)) { try requireJail(jail) }
        do {
            try send(ruleset.unban(keys), context: context, syntax: ruleset.configuration.syntax)
            for key in keys { active[key] = nil }
        } catch {
            guard isIntact(context: context, ruleset: ruleset) == false else { throw error }
            let before = active
            for key in keys { active[key] = nil }
            do {
                try restore(context: context, ruleset: ruleset)
            } catch {
                active = before
                throw error
            }
        }
    }

    func flush(jail: String, context: NFTContext, ruleset: NFTRuleset) throws(FirewallError) {
        try requireJail(jail)
        let before = active
        do {
            try send(ruleset.flush(jail: jail), context: context, syntax: ruleset.configuration.syntax)
            active = active.filter { $0.key.jail != jail }
        } catch {
            guard isIntact(context: context, ruleset: ruleset) == false else { throw error }
            active = active.filter { $0.key.jail != jail }
            do {
                try restore(context: context, ruleset: ruleset)
            } catch {
                active = before
                throw error
            }
        }
    }

    func pruneExpired() {
        let now = clock.now
        active = active.filter { entry in
            guard let deadline = entry.value else { return true }
            return deadline > now
        }
    }

    /// Active bans with their remaining time, ready to re-apply.
    func remainingBans() -> [BanRequest] {
        pruneExpired()
        let now = clock.now
        return active.map { key, deadline in
            BanRequest(
                address: key.address, jail: key.jail,
                duration: deadline.map { .timeout(now.duration(to: $0)) } ?? .permanent, scope: key.scope)
        }
    }

    /// The last restore failure reported, so a persistent failure is reported once.
    var lastFailure: String?

    /// Whether the table, chain, sets and rules are all there; nil when the kernel cannot be asked.
    func isIntact(context: NFTContext, ruleset: NFTRuleset) -> Bool? {
        let table = ruleset.configuration.tableName
        guard let present = hasTableAndChain(context: context, ruleset: ruleset) else { return nil }
        guard present else { return false }
        guard let listing = try? context.run("list table inet \(table)", terse: true) else { return nil }
        return NFTListing.isIntact(listing, ruleset: ruleset, jails: jails)
    }

    /// Rebuilds the table with every active ban in one transaction and reports it.
    func restore(context: NFTContext, ruleset: NFTRuleset) throws(FirewallError) {
        let bans = remainingBans()
        let start = clock.now
        do {
            try send(
                ruleset.rebuild(jails: jails, bans: bans), context: context, syntax: ruleset.configuration.syntax)
        } catch {
            if lastFailure != error.description {
                lastFailure = error.description
                onEvent(.restoreFailed(error.description))
            }
            throw error
        }
        lastFailure = nil
        onEvent(.restored(bans: bans.count, took: start.duration(to: clock.now)))
    }

    /// Whether the table and its chain exist, from `list chains` (which, unlike `list tables` in libnftables 1.0,
    /// does not fetch set elements); nil when the kernel cannot be asked.
    func hasTableAndChain(context: NFTContext, ruleset: NFTRuleset) -> Bool? {
        guard let chains = try? context.run("list chains") else { return nil }
        let table = ruleset.configuration.tableName
        guard NFTListing.hasChain(ruleset.configuration.chainName, table: table, inChainsListing: chains) else {
            return false
        }
        guard jails.contains(where: { $0.banForward == .yes }) else { return true }
        return NFTListing.hasChain(ruleset.forwardChainName, table: table, inChainsListing: chains)
    }

    var lastPrune: ContinuousClock.Instant?
    var lastFullCheck: ContinuousClock.Instant?
    /// How long the last full check took.
    var fullCheckCost: Duration = .zero
    /// Above this many bans the periodic full check is left to the monitor (see `healthCheck`).
    static let fullCheckLimit = 20000

    /// Every tick: is the chain there (cheap)? Every `fullCheckInterval`: are all sets and rules there?
    func healthCheck(context: NFTContext, ruleset: NFTRuleset) {
        let now = clock.now
        if lastPrune.map({ $0.duration(to: now) > .seconds(60) }) ?? true {
            pruneExpired()
            lastPrune = now
        }
        guard isSetUp else { return }
        if missedWhileQuiet {
            settleMissed(context: context, ruleset: ruleset)
            return
        }
        let intact: Bool?
        // libnftables fetches every set element for the full listing, and the kernel's set dump slows down with the
        // square of the set's size (seconds of CPU at 100,000 bans, minutes at 1,000,000, all on this thread): the
        // interval grows to 100× the last full check's cost, so it never takes more than ~1 % of a core, and with
        // more than `fullCheckLimit` bans and the monitor open it is not run at all: the monitor reports every
        // deletion of an element, a set, a rule, the chain or the table, and each tick still checks the chain.
        let interval = max(ruleset.configuration.fullCheckInterval, fullCheckCost * 100)
        let affordable = monitor == nil || monitorDeaf || active.count <= Self.fullCheckLimit
        if affordable, lastFullCheck.map({ $0.duration(to: now) >= interval }) ?? true {
            intact = isIntact(context: context, ruleset: ruleset)
            lastFullCheck = clock.now
            fullCheckCost = now.duration(to: lastFullCheck!)
        } else {
            intact = hasTableAndChain(context: context, ruleset: ruleset)
        }
        guard intact == false else { return }
        try? restore(context: context, ruleset: ruleset)
    }

    /// When another process committed while a large own transaction ran without notifications: checks the table
    /// (rebuilt when damaged) and adds every active ban again. Runs after each large ban and at each tick. The
    /// repair itself keeps the notifications on: what others delete while it runs is seen and refilled as usual.
    /// (Run quiet, a process that commits all the time, a container runtime say, made every repair miss again:
    /// all bans re-added three times after every ban and at every tick, seconds per single ban at 25,000.)
    func settleMissed(context: NFTContext, ruleset: NFTRuleset) {
        mayGoQuiet = false
        defer { mayGoQuiet = true }
        var rounds = 0
        while missedWhileQuiet, isSetUp, rounds < 3 {
            rounds += 1
            missedWhileQuiet = false
            onEvent(.missedWhileQuiet)
            // The full listing only while it is cheap (see `healthCheck`); else the chain, and the refill fails
            // (and rebuilds) when a set is gone.
            let intact =
                active.count <= Self.fullCheckLimit
                ? isIntact(context: context, ruleset: ruleset) : hasTableAndChain(context: context, ruleset: ruleset)
            if intact == false {
                try? restore(context: context, ruleset: ruleset)
            } else {
                refillAll(context: context, ruleset: ruleset)
            }
        }
    }

    // MARK: Change notifications

    /// The notification socket, nil when it could not be opened.
    var monitor: NFTMonitor?
    var monitorBuffer = [UInt8](repeating: 0, count: 1 << 17)
    /// Set name → jail, for the sets of the configured jails.
    var setOwners: [String: (jail: String, scope: BanScope)] = [:]
    /// Deletions read for a transaction whose new-generation message has not arrived yet.
    var pendingDeleted: [BanKey] = []
    var pendingStructural = false
    /// An own transaction touched many elements since the last read: a buffer overrun is then its own echo.
    var ownBulk = false
    /// Transactions with more elements than this run with the notification group left (see `send`).
    static let quietElements = 2000
    /// Another process committed while the group was left: the next tick checks the table and refills the sets.
    var missedWhileQuiet = false
    /// The socket could not rejoin the notification group after a large transaction (see `send`).
    var monitorDeaf = false
    /// False while `settleMissed` repairs: its transactions keep the notification group.
    var mayGoQuiet = true
    /// The executor thread's id: the kernel names the committing thread of each transaction.
    var ownThread: Int32 = -1

    /// Opens the notification socket (on the executor thread, in its namespace); returns its descriptor.
    func openMonitor() -> Int32? {
        ownThread = portcullis_thread_id()
        do {
            let m = try NFTMonitor()
            monitor = m
            return m.fd
        } catch {
            onEvent(.monitorUnavailable(error.description))
            return nil
        }
    }

    /// Reads every queued notification; bans deleted by another process are put back at once, a damaged table
    /// is rebuilt at once. The backend's own transactions are recognised by the committing process id.
    func monitorReadable(context: NFTContext, ruleset: NFTRuleset) {
        guard let monitor else { return }
        let table = ruleset.configuration.tableName
        var deleted: [String: [BanKey]] = [:]
        var seen: Set<BanKey> = []
        var structural = false
        var overrun = false
        var by: Int32? = nil
        reading: while true {
            let n: Int
            switch monitor.read(into: &monitorBuffer) {
            case .empty: break reading
            case .overrun:
                overrun = true
                continue
            case .bytes(let count): n = count
            }
            let events = monitorBuffer.withUnsafeBytes { NFTMonitor.parse(UnsafeRawBufferPointer(rebasing: $0[0..<n])) }
            for event in events {
                switch event {
                case .elementsDeleted(let t, let set, let addresses):
                    guard t == table, let (jail, scope) = setOwners[set] else { continue }
                    for a in addresses { pendingDeleted.append(BanKey(address: a, jail: jail, scope: scope)) }
                case .structureDeleted(let t):
                    if t == table { pendingStructural = true }
                case .generation(let committer):
                    if committer != ownThread {
                        for key in pendingDeleted where seen.insert(key).inserted {
                            deleted[key.jail, default: []].append(key)
                        }
                        structural = structural || pendingStructural
                        if !pendingDeleted.isEmpty || pendingStructural { by = committer }
                    }
                    pendingDeleted = []
                    pendingStructural = false
                }
            }
        }
        let echo = ownBulk
        ownBulk = false
        guard isSetUp else { return }
        if structural, isIntact(context: context, ruleset: ruleset) == false {
            // The table, a chain, a set or a rule went: rebuild everything (this also refills every set).
            try? restore(context: context, ruleset: ruleset)
            return
        }
        if overrun && !echo {
            refillAll(context: context, ruleset: ruleset)
            return
        }
        for (jail, keys) in deleted.sorted(by: { $0.key < $1.key }) {
            refill(jail: jail, keys: keys, by: by, context: context, ruleset: ruleset)
        }
    }

    /// The request that puts `key` back with its remaining time; nil when it is not an active ban of this
    /// backend (unbanned, or ending within a second anyway).
    func request(for key: BanKey, now: ContinuousClock.Instant) -> BanRequest? {
        guard let entry = active[key] else { return nil }
        guard let deadline = entry else {
            return BanRequest(address: key.address, jail: key.jail, duration: .permanent, scope: key.scope)
        }
        let left = now.duration(to: deadline)
        guard left > .seconds(1) else { return nil }
        return BanRequest(address: key.address, jail: key.jail, duration: .timeout(left), scope: key.scope)
    }

    func refill(jail: String, keys: [BanKey], by: Int32?, context: NFTContext, ruleset: NFTRuleset) {
        let now = clock.now
        let requests = keys.compactMap { request(for: $0, now: now) }
        guard !requests.isEmpty else { return }
        do {
            try send(ruleset.ban(requests), context: context, syntax: ruleset.configuration.syntax)
            onEvent(
                .refilled(jail: jail, addresses: requests.map(\.address), by: by, took: now.duration(to: clock.now)))
        } catch {
            // The set itself may be gone: rebuild the table.
            if isIntact(context: context, ruleset: ruleset) == false {
                try? restore(context: context, ruleset: ruleset)
            }
        }
    }

    func refillAll(context: NFTContext, ruleset: NFTRuleset) {
        let now = clock.now
        let configured = Set(jails.map(\.name))
        let requests = active.keys.filter { configured.contains($0.jail) }.compactMap { request(for: $0, now: now) }
        guard !requests.isEmpty else { return }
        do {
            try send(ruleset.ban(requests), context: context, syntax: ruleset.configuration.syntax)
            ownBulk = true
            onEvent(.refilledAfterOverrun(bans: requests.count, took: now.duration(to: clock.now)))
        } catch {
            if isIntact(context: context, ruleset: ruleset) == false {
                try? restore(context: context, ruleset: ruleset)
            }
        }
    }
}

extension NFTListedElement {
    /// The scope of an element read from a set of `kind` (prefix elements are not read back: see `NFTListing`).
    func scope(_ kind: BanScope.Kind) -> BanScope {
        switch kind {
        case .address: return .address
        case .fleet: return .fleet
        case .prefix: return .prefix(prefixLength ?? address.bitWidth)
        }
    }
}
