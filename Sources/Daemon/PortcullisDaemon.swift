internal import CNetlink
import Configuration
import Control
import Core
import Filter
import Firewall
import Jail
import LogSource
import Logging
import MetricsExport
import ServiceLifecycle
import Store
import Synchronization
import UnixSignals

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// How the daemon is started: the configuration tree and the command-line overrides of fail2ban-client's
/// global options.
public struct DaemonSettings: Sendable {
    /// How bans reach the kernel.
    public enum FirewallMode: Sendable {
        /// libnftables in this process's network namespace (or `networkNamespace`).
        case nftables(networkNamespace: String? = nil)
        /// A backend supplied by the caller (tests: a recording firewall).
        case custom(any FirewallBackend)
        /// No firewall: bans are counted, logged and stored only.
        case none
    }

    /// Configuration directory (`-c`), e.g. `/etc/portcullis` or `/etc/fail2ban`.
    public var configDirectory: String
    /// Control socket (`-s`), overriding the configuration's `socket`.
    public var socketPath: String?
    /// PID file (`-p`), overriding `pidfile`.
    public var pidFile: String?
    /// Log target, overriding `logtarget`.
    public var logTarget: String?
    /// Log level, overriding `loglevel`.
    public var logLevel: String?
    /// The firewall.
    public var firewall: FirewallMode
    /// Keep the nftables table when stopping.
    public var keepTableOnStop: Bool
    /// Read existing log content on the first start instead of starting at the end.
    public var readExistingContent: Bool
    /// The clock (epoch seconds).
    public var clock: @Sendable () -> Double
    /// `/etc/services`, for port names.
    public var servicesPath: String

    /// Settings for `configDirectory`; everything else from the configuration.
    public init(
        configDirectory: String, socketPath: String? = nil, pidFile: String? = nil, logTarget: String? = nil,
        logLevel: String? = nil, firewall: FirewallMode = .nftables(), keepTableOnStop: Bool = false,
        readExistingContent: Bool = false, clock: @escaping @Sendable () -> Double = { FilterClock.now() },
        servicesPath: String = "/etc/services"
    ) {
        self.configDirectory = configDirectory
        self.socketPath = socketPath
        self.pidFile = pidFile
        self.logTarget = logTarget
        self.logLevel = logLevel
        self.firewall = firewall
        self.keepTableOnStop = keepTableOnStop
        self.readExistingContent = readExistingContent
        self.clock = clock
        self.servicesPath = servicesPath
    }
}

/// An error that stops the daemon from starting, with what to do about it.
public struct DaemonError: Error, Sendable, CustomStringConvertible {
    /// What went wrong, for a person.
    public var message: String
    /// Creates an error.
    public init(_ message: String) { self.message = message }
    public var description: String { message }
}

/// The Portcullis server: sources → filters → jails → firewall and store, with the control socket.
/// A `Service` for swift-service-lifecycle: SIGTERM/SIGINT stop it gracefully, SIGHUP reloads the configuration.
public final class PortcullisDaemon: Service, Sendable {
    /// The settings it was started with.
    public let settings: DaemonSettings
    private let stopRequested = Mutex<AsyncStream<Void>.Continuation?>(nil)
    private let ready = Mutex<[CheckedContinuation<Void, Never>]>([])
    private let isReady = Mutex(false)

    /// A daemon; nothing happens until `run()`.
    public init(settings: DaemonSettings) {
        self.settings = settings
    }

    /// Asks a running daemon to stop (the `stop` command does this).
    public func requestStop() {
        _ = stopRequested.withLock { $0?.yield() }
    }

    /// Returns once the daemon is serving (jails started, socket open).
    public func waitUntilReady() async {
        if isReady.withLock({ $0 }) { return }
        await withCheckedContinuation { c in
            let now = isReady.withLock { r in
                if !r { ready.withLock { $0.append(c) } }
                return r
            }
            if now { c.resume() }
        }
    }

    private func markReady() {
        isReady.withLock { $0 = true }
        for c in ready.withLock({ l in
            defer { l = [] }
            return l
        }) { c.resume() }
    }

    /// The jails of a configuration tree as loaded for a start or a reload.
    struct LoadedJails {
        /// The jails that build.
        var setups: [JailSetup]
        /// Jails that cannot run, with the reason; the others run (fail2ban skips such a jail too).
        var broken: [String: String]
        /// Mistakes in the text of a file the load read (`ConfigError.stopsStart`): the start, or the reload,
        /// does not go ahead.
        var fatal: [ConfigError]
        /// The errors behind `broken`, by jail (`portcullis check` reports their file and line).
        var brokenErrors: [String: ConfigError] = [:]
        /// Every jail as resolved (enabled or not); an enabled jail missing here did not resolve.
        var configurations: [JailConfiguration] = []
    }

    /// Loads the jails of `tree`: the ones that build, the reasons of those that do not, and the errors that
    /// stop the whole load.
    static func loadJails(
        _ tree: ConfigTree, ports: PortResolver, clock: @escaping @Sendable () -> Double
    ) -> LoadedJails {
        let result = tree.loadJails()
        var broken: [String: String] = [:]
        var brokenErrors: [String: ConfigError] = [:]
        var fatal: [ConfigError] = []
        for (name, error) in result.errors.sorted(by: { $0.key < $1.key }) {
            // "" is the jail configuration itself (jail.conf, jail.local, jail.d): nothing can run without it.
            if name.isEmpty || error.stopsStart {
                fatal.append(error)
            } else {
                broken[name] = error.description
                brokenErrors[name] = error
            }
        }
        var setups: [JailSetup] = []
        let own = HostAddresses.own()
        for jail in result.jails where jail.enabled {
            do throws(ConfigError) {
                setups.append(
                    try JailSetup.build(
                        jail, ports: ports, now: clock, selfAddresses: own, resolve: HostAddresses.resolve,
                        loadAction: { spec, jail in
                            let action = try tree.loadAction(spec, jail: jail)
                            var commands: [String: String] = [:]
                            for (k, v) in action.commands { commands[k] = v.value }
                            // fail2ban reads `timeout` with str2seconds (`30`, `1m`); kept within 0.1 s … 1 day.
                            var timeout = 60.0
                            if let text = action.values["timeout"], !text.isEmpty {
                                timeout = min(max(try TimeSpan.parse(text).seconds, 0.1), 86_400)
                            }
                            return CommandAction(
                                name: action.name, commands: commands, timeout: timeout, staticTags: action.tags,
                                conditionalTags: action.conditionalTags, noRestored: action.flags["norestored"] ?? false
                            )
                        }))
            } catch {
                if error.stopsStart {
                    fatal.append(error)
                } else {
                    broken[jail.name] = error.description
                    brokenErrors[jail.name] = error
                }
            }
        }
        return LoadedJails(
            setups: setups, broken: broken, fatal: fatal, brokenErrors: brokenErrors, configurations: result.jails)
    }

    /// The text of a `DaemonError` or control reply for configuration errors: one line per error
    /// (`FILE:LINE: what is wrong (what to do)`), then what happened.
    static func describe(_ errors: [ConfigError], outcome: String) -> String {
        (errors.map(\.description) + [outcome]).joined(separator: "\n")
    }

    public func run() async throws {
        // At most two malloc arenas (glibc makes up to 8 per core, one per thread that contends): what a burst frees
        // then collects in fewer places, and the housekeeping's malloc_trim gives more of it back.
        _ = portcullis_malloc_arena_max(2)
        // SIGHUP and SIGUSR1 are trapped first: their default action ends the process, and the start (a restore of
        // many bans) runs for seconds before the reload service listens. One that arrives meanwhile waits in the
        // sequence and is handled once the daemon runs (a reload, a reopened log file).
        let hangups = await UnixSignalsSequence(trapping: .sighup, .sigusr1)
        let settings = self.settings
        let tree = ConfigTree(root: settings.configDirectory)
        let main: MainConfiguration
        do {
            main = try tree.loadMain()
        } catch {
            throw DaemonError("\(error)")
        }

        // Logging in fail2ban's format (or JSON lines); target and level can change at run time (`set logtarget`,
        // `set loglevel`), and every logger follows the sink.
        let logTargetText = settings.logTarget ?? main.logtarget
        let logLevelText = settings.logLevel ?? main.loglevel
        guard let level = FailLogHandler.level(fromConfig: logLevelText) else {
            throw DaemonError(
                "\(main.file): loglevel '\(logLevelText)' is not a level: write CRITICAL, ERROR, WARNING, NOTICE, INFO, DEBUG or a number"
            )
        }
        let sink = FailLogHandler.Sink(
            target: LogTarget(logTargetText), level: level, format: LogFormat(rawValue: main.logformat) ?? .text,
            syslogSocket: main.syslogsocket)
        let makeLogger: @Sendable (String) -> Logger = { label in
            Logger(label: label) { FailLogHandler(label: $0, sink: sink) }
        }
        let log = makeLogger("fail2ban.server")
        log.info("--------------------------------------------------")
        log.info("Starting Portcullis in \(settings.configDirectory)")

        // Jails, before anything is touched: a mistake in any file read stops the start, as in fail2ban.
        let ports: PortResolver
        do {
            ports = try PortResolver(servicesPath: settings.servicesPath)
        } catch {
            throw DaemonError("\(error)")
        }
        let loaded = Self.loadJails(tree, ports: ports, clock: settings.clock)
        guard loaded.fatal.isEmpty else {
            for error in loaded.fatal { log.error("Configuration error: \(error)") }
            log.error("Not starting: fix the configuration and start again")
            throw DaemonError(
                Self.describe(loaded.fatal, outcome: "not started: fix the configuration and start again"))
        }
        let (setups, broken) = (loaded.setups, loaded.broken)

        // PID file and socket directory.
        let pidFile = settings.pidFile ?? main.pidfile
        let socketPath = settings.socketPath ?? main.socket
        for path in [pidFile, socketPath] { Self.makeParentDirectory(path) }
        Self.writePIDFile(pidFile, log: log)
        defer { unlink(pidFile) }

        // Store.
        let store: BanStore?
        var freshDatabase = false
        var dbfile = main.dbfile
        if dbfile.lowercased() != "none" && !dbfile.isEmpty {
            // A fail2ban tree's dbfile is fail2ban's own database: never written (not even its journal mode);
            // Portcullis keeps its bans in a file of its own beside it.
            if BanStore.isFail2banDatabase(path: dbfile) {
                let own = Self.directory(of: dbfile) + "/portcullis.sqlite3"
                log.warning(
                    "dbfile \(dbfile) is fail2ban's database: left as it is; Portcullis keeps its bans in \(own) (set dbfile in fail2ban.local or portcullis.local to choose another file)"
                )
                dbfile = own
            }
            Self.makeParentDirectory(dbfile)
            (store, freshDatabase) = try Self.openStore(dbfile, log: log)
        } else {
            store = nil
        }

        // Metrics (off unless `metrics = ADDR:PORT`): nothing is created, and nothing measured, without them.
        let metrics: PortcullisMetrics? = main.metrics == nil ? nil : PortcullisMetrics()

        // Firewall.
        let firewall: (any FirewallBackend)?
        var nft: NFTablesFirewall? = nil
        switch settings.firewall {
        case .none: firewall = nil
        case .custom(let f): firewall = f
        case .nftables(let ns):
            do {
                let fwLog = makeLogger("fail2ban.actions")
                let f = try NFTablesFirewall(
                    configuration: FirewallConfiguration(
                        keepTableOnStop: settings.keepTableOnStop, networkNamespace: ns),
                    onEvent: { event in fwLog.warning("nftables: \(event)") },
                    onTransaction: metrics.map { m in { @Sendable duration in m.recordTransaction(duration) } })
                nft = f
                firewall = f
            } catch {
                throw DaemonError("cannot use nftables: \(error)")
            }
        }
        defer { nft?.shutdown() }

        for (name, why) in broken.sorted(by: { $0.key < $1.key }) {
            log.error("Jail '\(name)' cannot start: \(why)")
        }
        let coordinator = BanCoordinator(
            firewall: firewall, store: store, clock: settings.clock, logger: makeLogger, storePath: dbfile,
            banLog: { lines in
                let now = FailLogHandler.now()
                sink.log(
                    lines.map {
                        FailLogHandler.Record(label: "fail2ban.actions", level: .notice, message: $0, time: now)
                    })
            })
        let server = ServerControls(
            main: main, logLevel: logLevelText, logTarget: logTargetText, sink: sink,
            dbFile: store == nil ? nil : dbfile, log: log,
            onMaxMatches: { n in coordinator.storeMatchLimit.store(n, ordering: .relaxed) })
        let admin = AdminGuard(clock: settings.clock)
        await coordinator.setAdminGuard(admin)
        let fleet = try await Self.startFleet(
            values: main.values, store: store, coordinator: coordinator, logger: makeLogger("fail2ban.fleet"))
        defer { fleet?.stop() }
        do {
            // The coordinator logs how many bans it restored and where the time went.
            try await coordinator.start(setups, broken: broken)
        } catch {
            throw DaemonError("cannot set up the nftables table: \(error)")
        }
        if let fleet {
            do { try fleet.start() } catch { throw DaemonError("cannot start the fleet thread: \(error)") }
        }
        if freshDatabase, firewall != nil {
            let adopted = await coordinator.adoptKernelBans()
            if adopted > 0 { log.notice("Adopted \(adopted) bans still in the kernel into the new database \(dbfile)") }
        }

        // Sources → filters → coordinator, through a bounded channel (a reader waits when it is full).
        let channel = SourceChannel(log: makeLogger("fail2ban.filter"))
        let sources = SourceSet(
            store: store, clock: settings.clock, readExisting: settings.readExistingContent,
            logger: makeLogger("fail2ban.filter"),
            channel: channel, admin: admin)
        sources.start(setups)

        // Stop requests: the `stop` command, or graceful shutdown from the service group.
        let (stops, stopSink) = AsyncStream<Void>.makeStream()
        stopRequested.withLock { $0 = stopSink }

        // Reloads run one at a time, and never after the stop began (they would start the sources again).
        let lifecycle = SerialGate()
        let stopping = Mutex(false)
        let reload: @Sendable (ReloadRequest) async -> ControlResponse = { request in
            let jail = request.jail
            await lifecycle.enter()
            defer { lifecycle.leave() }
            guard !stopping.withLock({ $0 }) else { return .failure(ControlError(.failed, "the server is stopping")) }
            if let jail, request.ifExists, await coordinator.setup(jail: jail) == nil { return .success("OK") }
            log.info("Reloading configuration\(jail.map { " of jail \($0)" } ?? "")")
            let loaded = Self.loadJails(tree, ports: ports, clock: settings.clock)
            // A running jail is never dropped by a reload that cannot build it: a mistake in a file, or a bad value
            // in a jail that runs now, refuses the whole reload and the running configuration (jails, bans,
            // counters) stays as it is.
            var refusals = loaded.fatal
            for (name, why) in loaded.broken.sorted(by: { $0.key < $1.key }) where jail == nil || name == jail {
                if await coordinator.setup(jail: name) != nil {
                    refusals.append(ConfigError(.badValue, "jail '\(name)' runs now and would not start: \(why)"))
                }
            }
            guard refusals.isEmpty else {
                for error in refusals { log.error("Configuration error: \(error)") }
                log.error("Reload refused: the running configuration is kept")
                return .failure(
                    ControlError(
                        .failed,
                        Self.describe(
                            refusals,
                            outcome: "reload refused: the running configuration is kept; fix it and reload again"
                        )))
            }
            let (newSetups, newBroken) = (loaded.setups, loaded.broken)
            do {
                if let jail {
                    // Only this jail: the others keep running as they are.
                    let setup = newSetups.first { $0.name == jail }
                    let running = await coordinator.setup(jail: jail) != nil
                    guard setup != nil || newBroken[jail] != nil || running else {
                        return .failure(.unknownJail(jail))
                    }
                    if let why = newBroken[jail] { log.error("Jail '\(jail)' cannot start: \(why)") }
                    if request.unban {
                        _ = await coordinator.unbanAll(jail: jail)
                        await coordinator.waitUntilStored()
                    }
                    _ = try await coordinator.reload(
                        jail: jail, setup: setup, brokenReason: newBroken[jail], restart: request.restart)
                } else {
                    for (name, why) in newBroken { log.error("Jail '\(name)' cannot start: \(why)") }
                    if request.unban {
                        _ = await coordinator.unbanAll()
                        await coordinator.waitUntilStored()
                    }
                    _ = try await coordinator.reload(newSetups, broken: newBroken, restart: request.restart)
                }
            } catch {
                return .failure(ControlError(.failed, "reload failed: \(error)"))
            }
            sources.start(await coordinator.runningSetups())
            return .success("OK")
        }

        let control: ControlServer
        do {
            control = try ControlServer(
                configuration: .init(path: socketPath),
                handler: ControlBridge(
                    coordinator: coordinator, server: server, onStop: { stopSink.yield() }, onReload: reload,
                    refreshSources: {
                        // After a runtime change to a jail's files, journal matches or filter (or a jail started or
                        // stopped); never during a reload or after the stop began.
                        await lifecycle.enter()
                        defer { lifecycle.leave() }
                        guard !stopping.withLock({ $0 }) else { return }
                        sources.start(await coordinator.runningSetups())
                    },
                    lineCounts: { sources.lineCounts(jail: $0) }))
        } catch {
            sources.stop()
            await coordinator.shutdown()
            throw DaemonError("\(error)")
        }
        var metricsServer: MetricsServer? = nil
        if let metrics, let endpoint = main.metrics {
            do {
                metricsServer = try MetricsServer(address: endpoint.address, port: endpoint.port) {
                    var snapshot = await coordinator.metricsSnapshot(lineCounts: { sources.lineCounts(jail: $0) })
                    snapshot.readerWaits = channel.backPressure.waits
                    return metrics.exposition(snapshot)
                }
            } catch {
                sources.stop()
                await coordinator.shutdown()
                throw DaemonError("\(error)")
            }
            log.info("Serving metrics on http://\(endpoint)/metrics")
        }
        log.info("Portcullis ready: \(setups.count) jails, socket \(socketPath)")
        markReady()

        // One service group; it stops its services in the reverse of this order (see DaemonServices.swift).
        let group = ServiceGroup(
            configuration: ServiceGroupConfiguration(
                services: [
                    .init(service: ConsumerService(channel: channel, coordinator: coordinator)),
                    .init(
                        service: SourcesService(
                            sources: sources, channel: channel,
                            beforeStop: {
                                // No reload after this point; one in progress finishes first.
                                await lifecycle.enter()
                                stopping.withLock { $0 = true }
                                lifecycle.leave()
                            })),
                    .init(service: HousekeepingService(coordinator: coordinator, purgeAge: { server.purgeAge })),
                    .init(
                        service: HangupService(
                            signals: hangups,
                            reload: { _ = await reload(ReloadRequest(jail: nil)) },
                            flushLogs: { _ = server.flushLogs() })),
                    .init(service: ControlService(server: control)),
                ] + (metricsServer.map { [.init(service: MetricsService(server: $0))] } ?? []),
                logger: Logger(label: "portcullis.services", factory: { _ in SwiftLogNoOpLogHandler() })))
        await withTaskGroup(of: Bool.self) { tasks in
            tasks.addTask {
                do {
                    try await group.run()
                } catch {
                    log.error("a part of the daemon ended unexpectedly: \(error)")
                }
                return true
            }
            // A stop: the `stop` command, or graceful shutdown of the daemon's own service (SIGTERM, SIGINT).
            tasks.addTask {
                await withTaskGroup(of: Void.self) { waits in
                    waits.addTask { for await _ in stops { break } }
                    waits.addTask { try? await gracefulShutdown() }
                    await waits.next()
                    waits.cancelAll()
                }
                guard !Task.isCancelled else { return false }
                log.info("Shutdown in progress...")
                await group.triggerGracefulShutdown()
                return false
            }
            // Until the group has run its stop sequence (or ended by itself); then the stop watch is not needed.
            while let groupEnded = await tasks.next(), !groupEnded {}
            tasks.cancelAll()
        }
        await coordinator.shutdown()
        let (waits, waited) = channel.backPressure
        if let store = await coordinator.storeHealth() {
            let h = store.health
            log.info(
                "Database writer: \(h.transactions) transactions, \(Int(h.totalMilliseconds)) ms in all, longest \((h.longestMilliseconds * 10).rounded() / 10) ms (off the coordinator); readers waited \(waits) times, \(waited) ms"
            )
        }
        log.info("Exiting Portcullis")
    }

    /// Opens the store at `path`. A file that is not a database, or is damaged (cut short, overwritten), is moved
    /// aside to `PATH.corrupt-TIME` and a fresh one is created; the second value says so, so the caller adopts the
    /// bans still in the kernel. Any other error (permissions, a newer schema) stops the start with its reason.
    static func openStore(_ path: String, log: Logger) throws -> (BanStore, Bool) {
        // WAL with synchronous=NORMAL: a committed ban survives a crash of the process (SIGKILL), and a ban
        // costs no disk sync on the latency path. Only a power loss can drop the last bans; the kernel
        // keeps them until their timeout regardless. A short busy timeout: a lock held by another process
        // delays the writer thread's retry, never the bans.
        let options = Database.Options(busyTimeoutMilliseconds: 1000, fullSync: false)
        do {
            return (try BanStore(path: path, options: options), false)
        } catch let error where error.isCorruption {
            var stamp = time_t(0)
            time(&stamp)
            let aside = "\(path).corrupt-\(stamp)"
            guard rename(path, aside) == 0 else {
                throw DaemonError(
                    "the database \(path) is damaged (\(error)) and cannot be moved aside to \(aside): "
                        + "\(String(cString: strerror(errno))); move or delete it, then start again")
            }
            for suffix in ["-wal", "-shm"] { _ = rename(path + suffix, aside + suffix) }
            log.error("the database \(path) is damaged (\(error)); moved it to \(aside) and created a new one")
            do {
                return (try BanStore(path: path, options: options), true)
            } catch {
                throw DaemonError("cannot create a new database \(path): \(error)")
            }
        } catch {
            throw DaemonError("cannot open the database \(path): \(error)")
        }
    }

    /// The directory part of `path` (`.` when it has none).
    static func directory(of path: String) -> String {
        guard let slash = path.lastIndex(of: "/") else { return "." }
        return slash == path.startIndex ? "/" : String(path[..<slash])
    }

    static func makeParentDirectory(_ path: String) {
        guard let slash = path.lastIndex(of: "/"), slash != path.startIndex else { return }
        let dir = String(path[..<slash])
        var partial = ""
        for part in dir.split(separator: "/") {
            partial += "/" + part
            mkdir(partial, 0o755)
        }
    }

    static func writePIDFile(_ path: String, log: Logger) {
        let text = "\(getpid())\n"
        let fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o644)
        guard fd >= 0 else {
            log.warning("cannot write the pid file \(path): \(String(cString: strerror(errno)))")
            return
        }
        _ = text.withCString { write(fd, $0, strlen($0)) }
        close(fd)
    }
}
