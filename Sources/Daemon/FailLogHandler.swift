import Logging
import Synchronization

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// Where the daemon's log goes: fail2ban's `logtarget` values.
public enum LogTarget: Sendable, Hashable {
    /// A file, appended to (reopened when `reopen()` is called, for logrotate).
    case file(String)
    /// Standard output.
    case standardOutput
    /// Standard error.
    case standardError
    /// syslog(3) with facility daemon, identified as `portcullis`.
    case syslog

    /// Parses a `logtarget` value: `STDOUT`, `STDERR`, `SYSLOG`, `SYSTEMD-JOURNAL` (→ syslog) or a path.
    public init(_ value: String) {
        switch value.uppercased() {
        case "STDOUT": self = .standardOutput
        case "STDERR": self = .standardError
        case "SYSLOG", "SYSTEMD-JOURNAL": self = .syslog
        default: self = .file(value)
        }
    }
}

/// Writes log lines in fail2ban's format, so tools written for fail2ban's log — its own `recidive` filter among
/// them — read Portcullis's unchanged:
///
/// ```
/// 2026-11-30 01:02:03,123 fail2ban.actions        [4242]: NOTICE  [sshd] Ban 192.0.2.7
/// ```
/// The logger label is the fail2ban component name (`fail2ban.actions`, `fail2ban.filter`, `fail2ban.server`, …).
public struct FailLogHandler: LogHandler {
    /// The shared output, one per process.
    public final class Sink: Sendable {
        let target: LogTarget
        // SAFETY-free: the descriptor is guarded by the mutex.
        private let fd: Mutex<Int32>

        /// Opens `target`. A file that cannot be opened falls back to standard error with a message there.
        public init(target: LogTarget) {
            self.target = target
            self.fd = Mutex(Sink.open(target))
            if case .syslog = target { openlog("portcullis", LOG_PID, LOG_DAEMON) }
        }

        static func open(_ target: LogTarget) -> Int32 {
            switch target {
            case .standardOutput: return 1
            case .standardError, .syslog: return 2
            case .file(let path):
                let fd = Glibc.open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0o640)
                if fd < 0 {
                    let msg = "portcullis: cannot open log file \(path): \(String(cString: strerror(errno))); logging to stderr\n"
                    _ = msg.withCString { Glibc.write(2, $0, strlen($0)) }
                    return 2
                }
                return fd
            }
        }

        /// Reopens a log file (after logrotate moved it).
        public func reopen() {
            guard case .file = target else { return }
            fd.withLock { fd in
                if fd > 2 { close(fd) }
                fd = Sink.open(target)
            }
        }

        /// Writes `lines` with one `write` to a file or stream (a crash cannot leave half of them, short of the
        /// kernel cutting the write), one by one to syslog.
        func write(lines: [String], level: Logger.Level) {
            if case .syslog = target {
                for l in lines { write(line: l, level: level) }
                return
            }
            guard !lines.isEmpty else { return }
            write(line: lines.joined(separator: "\n"), level: level)
        }

        func write(line: String, level: Logger.Level) {
            if case .syslog = target {
                let priority: Int32 =
                    switch level {
                    case .trace, .debug: LOG_DEBUG
                    case .info: LOG_INFO
                    case .notice: LOG_NOTICE
                    case .warning: LOG_WARNING
                    case .error: LOG_ERR
                    case .critical: LOG_CRIT
                    }
                line.withCString { withVaList([$0]) { vsyslog(priority, "%s", $0) } }
                return
            }
            var data = Array(line.utf8)
            data.append(0x0A)
            fd.withLock { fd in
                data.withUnsafeBytes { raw in
                    var offset = 0
                    while offset < raw.count {
                        let n = Glibc.write(fd, raw.baseAddress! + offset, raw.count - offset)
                        if n < 0 {
                            if errno == EINTR { continue }
                            return
                        }
                        offset += n
                    }
                }
            }
        }

        deinit {
            let current = fd.withLock { $0 }
            if current > 2 { close(current) }
        }
    }

    /// The fail2ban component name written in each line.
    public let label: String
    /// Output.
    public let sink: Sink
    /// Minimum level.
    public var logLevel: Logger.Level
    /// Metadata (appended as `key=value`).
    public var metadata: Logger.Metadata = [:]
    /// Unused provider hook.
    public var metadataProvider: Logger.MetadataProvider?
    /// Clock, injectable for tests (epoch seconds).
    let clock: @Sendable () -> Double
    let pid: Int32

    /// A handler for `label` writing to `sink` at `level` and above.
    public init(
        label: String, sink: Sink, level: Logger.Level = .info,
        clock: @escaping @Sendable () -> Double = FailLogHandler.now, pid: Int32 = getpid()
    ) {
        self.label = label
        self.sink = sink
        self.logLevel = level
        self.clock = clock
        self.pid = pid
    }

    /// The current time in epoch seconds.
    @Sendable public static func now() -> Double {
        var ts = timespec()
        clock_gettime(CLOCK_REALTIME, &ts)
        return Double(ts.tv_sec) + Double(ts.tv_nsec) / 1e9
    }

    /// fail2ban's level names.
    public static func levelName(_ level: Logger.Level) -> String {
        switch level {
        case .trace, .debug: "DEBUG"
        case .info: "INFO"
        case .notice: "NOTICE"
        case .warning: "WARNING"
        case .error: "ERROR"
        case .critical: "CRITICAL"
        }
    }

    /// Parses fail2ban's `loglevel` (names or numbers as Python's logging uses them).
    public static func level(fromConfig value: String) -> Logger.Level? {
        switch value.uppercased() {
        case "CRITICAL", "50": .critical
        case "ERROR", "40": .error
        case "WARNING", "WARN", "30": .warning
        case "NOTICE", "25": .notice
        case "INFO", "20": .info
        case "DEBUG", "10": .debug
        case "TRACEDEBUG", "HEAVYDEBUG", "5", "7", "9": .trace
        default: nil
        }
    }

    /// Formats one line without writing it.
    public func format(level: Logger.Level, message: String, at time: Double) -> String {
        let seconds = Int(time.rounded(.down))
        let millis = min(999, Int(((time - Double(seconds)) * 1000).rounded(.down)))
        var text = message
        if !metadata.isEmpty {
            text += " " + metadata.sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value)" }.joined(separator: " ")
        }
        // Log lines are single lines: attacker text cannot forge extra entries.
        if text.utf8.contains(where: { $0 == 0x0A || $0 == 0x0D }) {
            text = text.replacing("\n", with: "\\n").replacing("\r", with: "\\r")
        }
        var line = Self.stampCache.stamp(seconds)
        line += ","
        if millis < 100 { line += millis < 10 ? "00" : "0" }
        line += String(millis)
        line += " "
        line += paddedLabel
        line += "["
        line += String(pid)
        line += "]: "
        line += Self.levelFields[level] ?? "INFO    "
        line += text
        return line
    }

    /// The label padded to 24 columns like fail2ban's `%(name)-24s`.
    var paddedLabel: String {
        label.count < 24 ? label + String(repeating: " ", count: 24 - label.count) : label
    }

    /// Level names padded to 7 columns plus the separating space (`%(levelname)-7s `).
    static let levelFields: [Logger.Level: String] = {
        var out: [Logger.Level: String] = [:]
        for l in Logger.Level.allCases {
            let n = levelName(l)
            out[l] = n + String(repeating: " ", count: max(0, 7 - n.count)) + " "
        }
        return out
    }()

    /// `YYYY-MM-DD HH:MM:SS` of the last second formatted, reused while the second lasts.
    final class StampCache: Sendable {
        private let last = Mutex<(Int, String)>((Int.min, ""))

        func stamp(_ seconds: Int) -> String {
            if let hit = last.withLock({ $0.0 == seconds ? $0.1 : nil }) { return hit }
            var t = time_t(seconds)
            var tm = Glibc.tm()
            localtime_r(&t, &tm)
            func pad(_ v: Int32, _ width: Int) -> String {
                let s = String(v)
                return String(repeating: "0", count: max(0, width - s.count)) + s
            }
            let stamp =
                "\(pad(tm.tm_year + 1900, 4))-\(pad(tm.tm_mon + 1, 2))-\(pad(tm.tm_mday, 2)) "
                + "\(pad(tm.tm_hour, 2)):\(pad(tm.tm_min, 2)):\(pad(tm.tm_sec, 2))"
            last.withLock { $0 = (seconds, stamp) }
            return stamp
        }
    }

    static let stampCache = StampCache()

    public func log(event: LogEvent) {
        sink.write(line: format(level: event.level, message: event.message.description, at: clock()), level: event.level)
    }

    public subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { metadata[key] }
        set { metadata[key] = newValue }
    }
}
