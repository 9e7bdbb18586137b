import Configuration
import Control
import Logging
import Synchronization

/// The server-wide settings fail2ban-client reads and changes at run time (`get/set loglevel`, `logtarget`,
/// `syslogsocket`, `dbfile`, `dbmaxmatches`, `dbpurgeage`, `flushlogs`), replying with fail2ban-server's values.
/// Changes take effect at once and last until the daemon restarts (a reload keeps them, as it keeps the store).
public final class ServerControls: Sendable {
    struct State {
        /// `loglevel` as set, upper case (fail2ban replies with the text it was given: `INFO`, `20`).
        var logLevel: String
        /// `logtarget` as set (`STDOUT`, `stdout`, a path).
        var logTarget: String
        /// `syslogsocket` as set (`auto` until SYSLOG is used with it, then the path it stands for).
        var syslogSocket: String
        var dbMaxMatches: Int
        var dbPurgeAge: Double
        var dbPurgeAgeValue: ControlValue
    }

    private let state: Mutex<State>
    let sink: FailLogHandler.Sink
    /// The database path, nil when the store is off (`dbfile = None`).
    let dbFile: String?
    let log: Logger
    /// Tells the coordinator the number of matches stored per ban (`dbmaxmatches`).
    let onMaxMatches: @Sendable (Int) -> Void

    /// Controls over `sink` and the store at `dbFile`, starting from `main`'s values.
    init(
        main: MainConfiguration, logLevel: String, logTarget: String, sink: FailLogHandler.Sink, dbFile: String?,
        log: Logger, onMaxMatches: @escaping @Sendable (Int) -> Void
    ) {
        let purge = (try? PythonValues.seconds(main.dbpurgeageText).get()) ?? (main.dbpurgeage.seconds, .int(86400))
        state = Mutex(
            State(
                logLevel: logLevel.uppercased(), logTarget: Self.withoutOptions(logTarget),
                syslogSocket: main.syslogsocket,
                dbMaxMatches: main.dbmaxmatches, dbPurgeAge: purge.seconds, dbPurgeAgeValue: purge.value))
        self.sink = sink
        self.dbFile = dbFile
        self.log = log
        self.onMaxMatches = onMaxMatches
        onMaxMatches(main.dbmaxmatches)
    }

    /// `dbpurgeage` in seconds, for the hourly purge.
    var purgeAge: Double { state.withLock { $0.dbPurgeAge } }

    /// The settings `get` reads; nil for a name that is not one of them.
    func get(_ name: String) -> ControlResponse? {
        let s = state.withLock { $0 }
        switch name {
        case "loglevel": return .success(.string(s.logLevel))
        case "logtarget": return .success(.string(s.logTarget))
        case "syslogsocket": return .success(.string(s.syslogSocket))
        case "dbfile": return .success(dbFile.map { .string($0) } ?? .null)
        case "dbmaxmatches": return .success(dbFile == nil ? .null : .int(s.dbMaxMatches))
        case "dbpurgeage": return .success(dbFile == nil ? .null : s.dbPurgeAgeValue)
        default: return nil
        }
    }

    /// The settings `set NAME VALUE` changes; nil for a name that is not one of them. `jailCount` decides whether
    /// the database may change (fail2ban refuses while jails exist).
    func set(_ name: String, _ value: String, jailCount: Int) -> ControlResponse? {
        switch name {
        case "loglevel":
            let upper = value.uppercased()
            guard let level = FailLogHandler.level(fromConfig: upper) else {
                return .failure(ControlError(.invalidArgument, "Invalid log level \(PythonRepr.quote(upper))"))
            }
            sink.level = level
            state.withLock { $0.logLevel = upper }
            return .success(.string(upper))
        case "logtarget":
            let (current, socket) = state.withLock { ($0.logTarget, $0.syslogSocket) }
            // fail2ban keeps (and answers) the target without its options (`SYSLOG[facility=auth]` → `SYSLOG`).
            if current == Self.withoutOptions(value) { return .success(.string(current)) }
            let target = LogTarget(value)
            if case .syslog = target, socket.lowercased() == "auto" {
                // fail2ban resolves `auto` when SYSLOG is chosen, and keeps the path even if it fails.
                state.withLock { $0.syslogSocket = FailLogHandler.Sink.defaultSyslogSocket }
            }
            return retarget(target, text: value)
        case "syslogsocket":
            let (changed, target) = state.withLock { s -> (Bool, String) in
                defer { s.syslogSocket = value }
                return (s.syslogSocket != value, s.logTarget)
            }
            if changed, case .syslog = LogTarget(target) {
                if case .failure = retarget(LogTarget(target), text: target) {
                    return .failure(ControlError(.failed, "Failed to change syslog socket"))
                }
            }
            return .success(.string(value))
        case "dbfile":
            if let dbFile, dbFile == value { return .success(.string(dbFile)) }
            if dbFile == nil && value.lowercased() == "none" { return .success(.null) }
            if jailCount > 0 {
                return .failure(ControlError(.runtimeError, "Cannot change database when there are jails present"))
            }
            return .failure(
                ControlError(
                    .runtimeError, "Portcullis cannot change its database while running: set dbfile and restart"))
        case "dbmaxmatches":
            guard dbFile != nil else { return .success(.null) }
            switch PythonValues.int(value) {
            case .failure(let e): return .failure(e)
            case .success(let n):
                state.withLock { $0.dbMaxMatches = n }
                onMaxMatches(n)
                return .success(.int(n))
            }
        case "dbpurgeage":
            guard dbFile != nil else { return .success(.null) }
            switch PythonValues.seconds(value) {
            case .failure(let e): return .failure(e)
            case .success(let t):
                state.withLock {
                    $0.dbPurgeAge = t.seconds
                    $0.dbPurgeAgeValue = t.value
                }
                return .success(t.value)
            }
        default:
            return nil
        }
    }

    private func retarget(_ target: LogTarget, text: String) -> ControlResponse {
        let socket = state.withLock { $0.syslogSocket }
        if let problem = sink.retarget(target, syslogSocket: socket) {
            log.error("\(problem)")
            if case .file = target {
                log.info("Logging to previous target \(PythonRepr.quote(state.withLock { $0.logTarget }))")
            }
            return .failure(ControlError(.failed, "Failed to change log target"))
        }
        let name = Self.withoutOptions(text)
        state.withLock { $0.logTarget = name }
        log.info("Changed logging target to \(name)\(sink.syslogPath.map { " (\($0))" } ?? "") for Portcullis")
        return .success(.string(name))
    }

    /// A `logtarget` value without its `[options]`.
    static func withoutOptions(_ target: String) -> String {
        guard target.hasSuffix("]"), let open = target.firstIndex(of: "[") else { return target }
        return String(target[..<open])
    }

    /// `flushlogs`: a log file is reopened (logrotate's `postrotate`), a stream flushed. fail2ban's replies.
    func flushLogs() -> ControlResponse {
        let target = state.withLock { $0.logTarget }
        sink.reopen()
        if LogTarget(target).isFile {
            log.info("rollover performed on \(target)")
            return .success("rolled over")
        }
        log.info("flush performed on \(target)")
        return .success("flushed")
    }
}
