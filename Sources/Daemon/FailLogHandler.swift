import Core
import LogSource
import Logging
import Synchronization

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// Where the daemon's log goes: fail2ban's `logtarget` values.
public enum LogTarget: Sendable, Hashable {
    /// A file, appended to (reopened by `flushlogs`, SIGHUP or SIGUSR1, for logrotate).
    case file(String)
    /// Standard output.
    case standardOutput
    /// Standard error.
    case standardError
    /// `SYSOUT`: standard output without the time stamp (for a supervisor that stamps lines itself).
    case systemOutput
    /// `SYSLOG`: datagrams to the syslog socket (`syslogsocket`; `auto` is /dev/log), tagged with the component
    /// (`fail2ban.actions[PID]: NOTICE [sshd] Ban …`, as fail2ban writes them), facility DAEMON (3) unless
    /// `SYSLOG[facility=auth]` says otherwise.
    case syslog(facility: Int)
    /// `SYSTEMD-JOURNAL`: entries sent to journald (`sd_journal_send`), identifier `portcullis`.
    case journal

    /// Parses a `logtarget` value: `STDOUT`, `STDERR`, `SYSOUT`, `SYSLOG` (with `[facility=NAME]`),
    /// `SYSTEMD-JOURNAL` or a path. Names are case-insensitive, as in fail2ban.
    public init(_ value: String) {
        var name = Substring(value)
        var options: [String: String] = [:]
        if let open = name.firstIndex(of: "["), name.hasSuffix("]") {
            for pair in name[name.index(after: open)..<name.index(before: name.endIndex)].split(separator: ",") {
                let kv = pair.split(separator: "=", maxSplits: 1)
                if kv.count == 2 {
                    options[kv[0].trimmingSpaces().lowercased()] = kv[1].trimmingSpaces()
                        .trimmingCharacters(in: "\"'")
                }
            }
            name = name[..<open]
        }
        switch name.uppercased() {
        case "STDOUT": self = .standardOutput
        case "STDERR": self = .standardError
        case "SYSOUT": self = .systemOutput
        case "SYSLOG": self = .syslog(facility: options["facility"].flatMap(Self.facility) ?? 3)
        case "SYSTEMD-JOURNAL": self = .journal
        default: self = .file(value)
        }
    }

    /// syslog facility codes by name (`auth`, `daemon`, `local0`, …).
    static func facility(_ name: String) -> Int? {
        let names = [
            "kern", "user", "mail", "daemon", "auth", "syslog", "lpr", "news", "uucp", "cron", "authpriv", "ftp",
        ]
        let n = name.lowercased()
        if let i = names.firstIndex(of: n) { return i }
        if n.hasPrefix("local"), let d = Int(n.dropFirst(5)), (0...7).contains(d) { return 16 + d }
        return nil
    }

    /// True for a file (`flushlogs` rolls it over; the others are flushed).
    var isFile: Bool {
        if case .file = self { return true }
        return false
    }
}

/// How each log line is written to a file or a stream (`logformat` in `[Definition]`).
public enum LogFormat: String, Sendable, Hashable {
    /// fail2ban's layout (`2026-11-30 01:02:03,123 fail2ban.actions        [4242]: NOTICE  [sshd] Ban …`), which
    /// tools written for fail2ban (its `recidive` filter among them) read.
    case text
    /// One JSON object per line with stable keys: `time` (local ISO 8601 with milliseconds and offset),
    /// `logger`, `pid`, `level`, `message`, and for a jail's events `jail`, `event` (`ban`, `unban`,
    /// `restore-ban`, `found`, `ignore`, `already-banned`) and `address`. syslog and the journal keep the text
    /// form, whose fields they store themselves.
    case json
}

/// Writes log lines in fail2ban's format, so tools written for fail2ban's log — its own `recidive` filter among
/// them — read Portcullis's unchanged:
///
/// ```
/// 2026-11-30 01:02:03,123 fail2ban.actions        [4242]: NOTICE  [sshd] Ban 192.0.2.7
/// ```
/// The logger label is the fail2ban component name (`fail2ban.actions`, `fail2ban.filter`, `fail2ban.server`, …).
public struct FailLogHandler: LogHandler {
    /// One line to log, before formatting.
    public struct Record: Sendable {
        /// The component (`fail2ban.actions`).
        public var label: String
        /// Its level.
        public var level: Logger.Level
        /// The message.
        public var message: String
        /// When, epoch seconds.
        public var time: Double
        /// The process to name (nil: the sink's, this process).
        public var pid: Int32?

        /// A record.
        public init(label: String, level: Logger.Level, message: String, time: Double, pid: Int32? = nil) {
            self.label = label
            self.level = level
            self.message = message
            self.time = time
            self.pid = pid
        }
    }

    /// The shared output, one per process: the target can change at run time (`set logtarget`), and so can the
    /// level (`set loglevel`); every logger follows at once.
    public final class Sink: Sendable {
        struct Output {
            var target: LogTarget
            /// The file or stream; for syslog the connected socket; -1 for the journal or when nothing is open.
            var fd: Int32 = -1
            /// The syslog socket in use.
            var syslogPath: String? = nil
        }

        private let output: Mutex<Output>
        private let levelValue: Atomic<Int>
        /// Lines' layout on files and streams.
        public let format: LogFormat
        let pid: Int32

        /// Opens `target`. A file that cannot be opened, or a syslog socket that is not there, falls back to
        /// standard error with a message there. `syslogSocket` is `auto` (/dev/log) or a socket path.
        public init(
            target: LogTarget, level: Logger.Level = .info, format: LogFormat = .text, syslogSocket: String = "auto",
            pid: Int32 = getpid()
        ) {
            self.format = format
            self.pid = pid
            levelValue = Atomic(Self.rank(level))
            var out = Output(target: target)
            if let problem = Self.open(&out, syslogSocket: syslogSocket) {
                Self.writeAll(2, Array("portcullis: \(problem); logging to stderr\n".utf8))
                out = Output(target: .standardError, fd: 2)
            }
            output = Mutex(out)
        }

        deinit {
            output.withLock { Self.close(&$0) }
        }

        /// The minimum level written.
        public var level: Logger.Level {
            get { Self.levels[levelValue.load(ordering: .relaxed)] }
            set { levelValue.store(Self.rank(newValue), ordering: .relaxed) }
        }

        /// The target in use.
        public var target: LogTarget { output.withLock { $0.target } }

        /// The syslog socket in use (nil unless logging to syslog).
        public var syslogPath: String? { output.withLock { $0.syslogPath } }

        /// Switches to `target` (`set logtarget`). On failure the old target stays and the reason is returned.
        public func retarget(_ target: LogTarget, syslogSocket: String) -> String? {
            var next = Output(target: target)
            if let problem = Self.open(&next, syslogSocket: syslogSocket) {
                Self.close(&next)
                return problem
            }
            output.withLock { current in
                Self.close(&current)
                current = next
            }
            return nil
        }

        /// Reopens a log file (after logrotate moved it) or reconnects to syslog; streams are left as they are.
        public func reopen() {
            output.withLock { out in
                switch out.target {
                case .file, .syslog:
                    let path = out.syslogPath ?? "auto"
                    var fresh = Output(target: out.target)
                    if Self.open(&fresh, syslogSocket: path) == nil {
                        Self.close(&out)
                        out = fresh
                    } else {
                        Self.close(&fresh)
                    }
                default: break
                }
            }
        }

        /// The syslog socket `auto` stands for on Linux.
        public static let defaultSyslogSocket = "/dev/log"

        /// Opens what `out.target` needs; returns why it cannot (nothing is left open then).
        private static func open(_ out: inout Output, syslogSocket: String) -> String? {
            switch out.target {
            case .standardOutput, .systemOutput: out.fd = 1
            case .standardError: out.fd = 2
            case .journal: out.fd = -1
            case .file(let path):
                let fd = Glibc.open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0o640)
                guard fd >= 0 else { return "cannot open log file \(path): \(String(cString: strerror(errno)))" }
                out.fd = fd
            case .syslog:
                let path = syslogSocket.lowercased() == "auto" ? defaultSyslogSocket : syslogSocket
                var st = stat()
                guard stat(path, &st) == 0, (st.st_mode & 0o170000) == 0o140000 else {
                    return "Syslog socket file: \(path) does not exists or is not a socket"
                }
                // A datagram socket, else a stream one (as Python's SysLogHandler tries them); every message ends
                // with a NUL, which also frames it on a stream.
                for kind in [SOCK_DGRAM, SOCK_STREAM] {
                    let fd = socket(AF_UNIX, Int32(kind.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
                    guard fd >= 0 else { continue }
                    if connectUnix(fd, path) {
                        out.fd = fd
                        out.syslogPath = path
                        return nil
                    }
                    Glibc.close(fd)
                }
                return "cannot connect to the syslog socket \(path): \(String(cString: strerror(errno)))"
            }
            return nil
        }

        private static func close(_ out: inout Output) {
            if out.fd > 2 { Glibc.close(out.fd) }
            out.fd = -1
        }

        private static func connectUnix(_ fd: Int32, _ path: String) -> Bool {
            var address = sockaddr_un()
            address.sun_family = sa_family_t(AF_UNIX)
            let bytes = Array(path.utf8)
            guard bytes.count < MemoryLayout.size(ofValue: address.sun_path) else { return false }
            withUnsafeMutableBytes(of: &address.sun_path) { raw in
                for (i, b) in bytes.enumerated() { raw[i] = b }
            }
            let rc = withUnsafePointer(to: &address) {
                $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                    connect(fd, $0, socklen_t(MemoryLayout<sockaddr_un>.size))
                }
            }
            return rc == 0
        }

        /// Writes records at or above the level: to a file or stream in one `write` (a crash cannot leave half
        /// of them), one datagram or journal entry each otherwise.
        public func log(_ records: [Record]) { log(records, atLeast: nil) }

        /// Writes records at or above `minimum` (nil: the sink's level).
        func log(_ records: [Record], atLeast minimum: Logger.Level?) {
            let floor = minimum.map(Self.rank) ?? levelValue.load(ordering: .relaxed)
            let records = records.filter { Self.rank($0.level) >= floor }
            guard !records.isEmpty else { return }
            output.withLock { out in
                switch out.target {
                case .journal:
                    for r in records {
                        JournalLogWriter.send([
                            ("MESSAGE", Self.singleLine(r.message)),
                            ("PRIORITY", String(Self.journalPriority(r.level))),
                            ("SYSLOG_IDENTIFIER", "portcullis"), ("SYSLOG_FACILITY", "3"), ("LOGGER", r.label),
                        ])
                    }
                case .syslog(let facility):
                    for r in records {
                        let line =
                            "<\(facility * 8 + Self.syslogSeverity(r.level))>"
                            + Self.text(r, pid: r.pid ?? pid, withTime: false, padding: false)
                        // Ended with a NUL, as Python's SysLogHandler (fail2ban's) sends them.
                        let bytes = Array(line.utf8) + [0]
                        var sent = Self.send(out.fd, bytes)
                        if sent == .broken {
                            // The syslog daemon restarted: connect again once.
                            var fresh = Output(target: out.target)
                            if Self.open(&fresh, syslogSocket: out.syslogPath ?? "auto") == nil {
                                Self.close(&out)
                                out = fresh
                                sent = Self.send(out.fd, bytes)
                            }
                        }
                        if sent == .dropped, syslogDropped.add(1, ordering: .relaxed).newValue == 1 {
                            Self.writeAll(
                                2,
                                Array(
                                    "portcullis: the syslog socket \(out.syslogPath ?? "") is full; dropping log lines until it reads again\n"
                                        .utf8))
                        }
                    }
                default:
                    var bytes: [UInt8] = []
                    let withTime = out.target != .systemOutput
                    for r in records {
                        let line =
                            format == .json
                            ? Self.json(r, pid: r.pid ?? pid)
                            : Self.text(r, pid: r.pid ?? pid, withTime: withTime, padding: true)
                        bytes.append(contentsOf: line.utf8)
                        bytes.append(0x0A)
                    }
                    Self.writeAll(out.fd, bytes)
                }
            }
        }

        /// What sending a syslog message did.
        enum Sent { case sent, dropped, broken }

        /// Sends without waiting: a syslog daemon that does not read (its queue holds only
        /// `net.unix.max_dgram_qlen` messages, often 10) must never stop the daemon, so a full queue drops the
        /// message; a socket whose peer went away is `broken` (the caller connects again).
        private static func send(_ fd: Int32, _ bytes: [UInt8]) -> Sent {
            bytes.withUnsafeBytes { raw in
                while true {
                    let n = Glibc.send(fd, raw.baseAddress, raw.count, Int32(MSG_NOSIGNAL) | Int32(MSG_DONTWAIT))
                    if n == raw.count { return .sent }
                    if n < 0 && errno == EINTR { continue }
                    if n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == ENOBUFS) { return .dropped }
                    return .broken
                }
            }
        }

        /// syslog messages dropped because the syslog daemon did not keep up.
        let syslogDropped = Atomic<Int>(0)

        static func writeAll(_ fd: Int32, _ bytes: [UInt8]) {
            guard fd >= 0 else { return }
            bytes.withUnsafeBytes { raw in
                guard let base = raw.baseAddress else { return }
                var offset = 0
                while offset < raw.count {
                    let n = Glibc.write(fd, base + offset, raw.count - offset)
                    if n < 0 {
                        if errno == EINTR { continue }
                        return
                    }
                    offset += n
                }
            }
        }

        // MARK: Formats

        static let levels: [Logger.Level] = [.trace, .debug, .info, .notice, .warning, .error, .critical]
        static func rank(_ level: Logger.Level) -> Int { levels.firstIndex(of: level) ?? 2 }

        /// The syslog severity of a level (as fail2ban sends it: NOTICE is `notice`, 5).
        static func syslogSeverity(_ level: Logger.Level) -> Int {
            switch level {
            case .trace, .debug: 7
            case .info: 6
            case .notice: 5
            case .warning: 4
            case .error: 3
            case .critical: 2
            }
        }

        /// The journal priority fail2ban gives a level (its journal handler files NOTICE under `warning`).
        static func journalPriority(_ level: Logger.Level) -> Int {
            switch level {
            case .trace, .debug: 7
            case .info: 6
            case .notice, .warning: 4
            case .error: 3
            case .critical: 2
            }
        }

        /// Log lines are single lines: attacker text cannot forge extra entries.
        static func singleLine(_ text: String) -> String {
            guard text.utf8.contains(where: { $0 == 0x0A || $0 == 0x0D }) else { return text }
            return text.replacing("\n", with: "\\n").replacing("\r", with: "\\r")
        }

        /// fail2ban's text layout: `TIME,ms NAME(padded 24) [PID]: LEVEL(padded 7) MESSAGE`; without padding
        /// (syslog) `NAME[PID]: LEVEL MESSAGE`.
        static func text(_ r: Record, pid: Int32, withTime: Bool, padding: Bool) -> String {
            var line = ""
            if withTime {
                let seconds = Int(r.time.rounded(.down))
                let millis = min(999, Int(((r.time - Double(seconds)) * 1000).rounded(.down)))
                line += FailLogHandler.stampCache.stamp(seconds)
                line += ","
                if millis < 100 { line += millis < 10 ? "00" : "0" }
                line += String(millis)
                line += " "
            }
            if padding {
                line += r.label.count < 24 ? r.label + String(repeating: " ", count: 24 - r.label.count) : r.label
            } else {
                line += r.label
            }
            line += "["
            line += String(pid)
            line += "]: "
            line +=
                padding ? (FailLogHandler.levelFields[r.level] ?? "INFO    ") : FailLogHandler.levelName(r.level) + " "
            line += singleLine(r.message)
            return line
        }

        /// The JSON line of a record (keys documented on ``LogFormat/json``).
        static func json(_ r: Record, pid: Int32) -> String {
            var members: [(key: String, value: JSON)] = [
                ("time", .string(isoTime(r.time))), ("logger", .string(r.label)), ("pid", .int(Int(pid))),
                ("level", .string(FailLogHandler.levelName(r.level))), ("message", .string(r.message)),
            ]
            if let (jail, event, address) = jailEvent(r.message) {
                members.append(("jail", .string(jail)))
                if let event { members.append(("event", .string(event))) }
                if let address { members.append(("address", .string(address))) }
            }
            return JSON.object(members).encoded()
        }

        /// `[JAIL] Ban ADDR` and the like: the jail, the event's name and the address.
        static func jailEvent(_ message: String) -> (String, String?, String?)? {
            guard message.hasPrefix("["), let close = message.firstIndex(of: "]") else { return nil }
            let jail = String(message[message.index(after: message.startIndex)..<close])
            guard !jail.isEmpty, !jail.contains(" ") else { return nil }
            let rest = message[message.index(after: close)...].drop { $0 == " " }
            let events: [(String, String)] = [
                ("Restore Ban ", "restore-ban"), ("Ban ", "ban"), ("Unban ", "unban"), ("Found ", "found"),
                ("Ignore ", "ignore"),
            ]
            for (prefix, name) in events where rest.hasPrefix(prefix) {
                let address = rest.dropFirst(prefix.count).prefix { $0 != " " }
                return (jail, name, address.isEmpty ? nil : String(address))
            }
            if rest.hasSuffix(" already banned") {
                return (jail, "already-banned", String(rest.prefix { $0 != " " }))
            }
            return (jail, nil, nil)
        }

        /// Local time as ISO 8601 with milliseconds and the UTC offset: `2026-11-30T01:02:03.123+01:00`.
        static func isoTime(_ t: Double) -> String {
            let seconds = Int(t.rounded(.down))
            let millis = min(999, Int(((t - Double(seconds)) * 1000).rounded(.down)))
            var tt = time_t(seconds)
            var parts = tm()
            localtime_r(&tt, &parts)
            func pad(_ v: Int, _ w: Int) -> String {
                let s = String(v)
                return String(repeating: "0", count: max(0, w - s.count)) + s
            }
            let offset = parts.tm_gmtoff / 60
            let sign = offset < 0 ? "-" : "+"
            return "\(pad(Int(parts.tm_year) + 1900, 4))-\(pad(Int(parts.tm_mon) + 1, 2))-\(pad(Int(parts.tm_mday), 2))"
                + "T\(pad(Int(parts.tm_hour), 2)):\(pad(Int(parts.tm_min), 2)):\(pad(Int(parts.tm_sec), 2))"
                + ".\(pad(millis, 3))\(sign)\(pad(abs(offset) / 60, 2)):\(pad(abs(offset) % 60, 2))"
        }
    }

    /// The fail2ban component name written in each line.
    public let label: String
    /// Output.
    public let sink: Sink
    /// A level of this handler's own; nil follows the sink's (`set loglevel` changes it for every logger).
    private var ownLevel: Logger.Level?
    /// Minimum level.
    public var logLevel: Logger.Level {
        get { ownLevel ?? sink.level }
        set { ownLevel = newValue }
    }
    /// Metadata (appended as `key=value`).
    public var metadata: Logger.Metadata = [:]
    /// Unused provider hook.
    public var metadataProvider: Logger.MetadataProvider?
    /// Clock, injectable for tests (epoch seconds).
    let clock: @Sendable () -> Double
    let pid: Int32

    /// A handler for `label` writing to `sink`; `level` nil follows the sink's level.
    public init(
        label: String, sink: Sink, level: Logger.Level? = nil,
        clock: @escaping @Sendable () -> Double = FailLogHandler.now, pid: Int32 = getpid()
    ) {
        self.label = label
        self.sink = sink
        self.ownLevel = level
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
        let level: Logger.Level? =
            switch value.uppercased() {
            case "CRITICAL", "FATAL", "50": .critical
            case "ERROR", "40": .error
            case "WARNING", "WARN", "30": .warning
            case "NOTICE", "25": .notice
            case "INFO", "MSG", "20": .info
            case "DEBUG", "10": .debug
            case "TRACEDEBUG", "HEAVYDEBUG", "NOTSET", "0", "5", "7", "9": .trace
            default: nil
            }
        if let level { return level }
        // Python's logging takes any number: the nearest level at or below it.
        guard let n = Int(value), n >= 0 else { return nil }
        switch n {
        case 50...: return .critical
        case 40..<50: return .error
        case 30..<40: return .warning
        case 25..<30: return .notice
        case 20..<25: return .info
        case 10..<20: return .debug
        default: return .trace
        }
    }

    /// Formats one line in fail2ban's text layout without writing it.
    public func format(level: Logger.Level, message: String, at time: Double) -> String {
        var text = message
        if !metadata.isEmpty {
            text += " " + metadata.sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value)" }.joined(separator: " ")
        }
        return Sink.text(
            Record(label: label, level: level, message: text, time: time), pid: pid, withTime: true, padding: true)
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
        var text = event.message.description
        if !metadata.isEmpty {
            text += " " + metadata.sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value)" }.joined(separator: " ")
        }
        // Logger filtered by `logLevel` already; a handler with a level of its own applies it, not the sink's.
        sink.log([Record(label: label, level: event.level, message: text, time: clock(), pid: pid)], atLeast: ownLevel)
    }

    public subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { metadata[key] }
        set { metadata[key] = newValue }
    }
}

extension Substring {
    fileprivate func trimmingSpaces() -> String {
        String(self.drop { $0 == " " }.reversed().drop { $0 == " " }.reversed())
    }
}

extension String {
    fileprivate func trimmingCharacters(in set: String) -> String {
        String(self.drop { set.contains($0) }.reversed().drop { set.contains($0) }.reversed())
    }
}
