import Core
import Dispatch

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// A fail2ban action from `action.d` run as shell commands (`actionstart`, `actionban`, …), for actions Portcullis
/// does not perform natively (mail, abuse reports, custom scripts).
///
/// Runtime tags (`<ip>`, `<name>`, `<failures>`, `<matches>`, `<F-USER>`, …) are substituted with every value
/// quoted for the shell context it lands in, so attacker-controlled log text is never executed.
public struct CommandAction: Sendable, Hashable {
    /// The action's name (e.g. `sendmail-whois`).
    public var name: String
    /// Commands by phase name (`actionstart`, `actionstop`, `actioncheck`, `actionban`, `actionunban`, `actionflush`).
    public var commands: [String: String]
    /// Seconds a command may run before it is killed (`timeout`, default 60).
    public var timeout: Double

    /// An action with its commands.
    public init(name: String, commands: [String: String], timeout: Double = 60) {
        self.name = name
        self.commands = commands
        self.timeout = timeout
    }

    /// Substitutes `tags` into `template`. Unknown tags stay as written.
    ///
    /// ```swift
    /// CommandAction.substitute("echo <ip> \"<matches>\"", tags: ["ip": "192.0.2.1", "matches": "a \"b\" $c"])
    /// // echo 192.0.2.1 "a \"b\" \$c"
    /// ```
    public static func substitute(_ template: String, tags: [String: String]) -> String {
        enum Quote { case none, single, double }
        var out = ""
        var state = Quote.none
        let chars = Array(template)
        var i = 0
        while i < chars.count {
            let c = chars[i]
            if c == "<", let close = chars[(i + 1)...].firstIndex(of: ">"), close > i + 1 {
                let name = String(chars[(i + 1)..<close])
                if let value = tags[name] {
                    switch state {
                    case .none: out += ShellEscape.quote(value)
                    case .single: out += value.replacing("'", with: "'\\''")
                    case .double:
                        var v = ""
                        for ch in value {
                            if ch == "\\" || ch == "\"" || ch == "$" || ch == "`" { v.append("\\") }
                            v.append(ch)
                        }
                        out += v
                    }
                    i = close + 1
                    continue
                }
            }
            switch (state, c) {
            case (.none, "'"): state = .single
            case (.single, "'"): state = .none
            case (.none, "\""): state = .double
            case (.double, "\""): state = .none
            case (.none, "\\"), (.double, "\\"):
                out.append(c)
                if i + 1 < chars.count {
                    out.append(chars[i + 1])
                    i += 2
                    continue
                }
            default: break
            }
            out.append(c)
            i += 1
        }
        return out
    }

    /// The outcome of one command.
    public struct Result: Sendable, Hashable {
        /// The command after substitution.
        public var command: String
        /// Exit status (or 128 + signal), -1 when it could not start.
        public var status: Int32
        /// True when it was killed after `timeout`.
        public var timedOut: Bool
    }

    /// Runs phase `phase` with `tags`; nil when the action has no such command (or it is empty).
    public func run(_ phase: String, tags: [String: String]) async -> Result? {
        guard let template = commands[phase], !template.allSatisfy(\.isWhitespace) else { return nil }
        let command = Self.substitute(template, tags: tags)
        let timeout = self.timeout
        // The wait for the command (up to `timeout`) blocks a thread: a thread of its own, never one of Swift's
        // cooperative pool (Dispatch's global threads are that pool on Linux), or a few slow actions would stall
        // every other task of the daemon.
        return await withCheckedContinuation { continuation in
            Self.detachThread { continuation.resume(returning: Self.runShell(command, timeout: timeout)) }
        }
    }

    /// Runs `body` on a new detached thread; on Dispatch if the system refuses a thread.
    private static func detachThread(_ body: @escaping @Sendable () -> Void) {
        do {
            try DedicatedThread.detached(name: "pcl-action", body)
        } catch {
            DispatchQueue.global().async(execute: body)
        }
    }

    static func runShell(_ command: String, timeout: Double) -> Result {
        var pid: pid_t = 0
        var attributes = posix_spawnattr_t()
        posix_spawnattr_init(&attributes)
        defer { posix_spawnattr_destroy(&attributes) }
        posix_spawnattr_setflags(&attributes, Int16(POSIX_SPAWN_SETPGROUP))
        posix_spawnattr_setpgroup(&attributes, 0)
        let argv: [UnsafeMutablePointer<CChar>?] = [strdup("/bin/sh"), strdup("-c"), strdup(command), nil]
        defer { for p in argv { free(p) } }
        let rc = posix_spawn(&pid, "/bin/sh", nil, &attributes, argv, environ)
        guard rc == 0 else { return Result(command: command, status: -1, timedOut: false) }
        let deadline = DispatchTime.now().uptimeNanoseconds + UInt64(max(0.1, timeout) * 1e9)
        var status: Int32 = 0
        var delay: useconds_t = 500
        while true {
            let r = waitpid(pid, &status, WNOHANG)
            if r == pid { break }
            if r < 0, errno != EINTR { return Result(command: command, status: -1, timedOut: false) }
            if DispatchTime.now().uptimeNanoseconds > deadline {
                // The command runs in its own process group: end it and its children.
                kill(-pid, SIGTERM)
                usleep(200_000)
                kill(-pid, SIGKILL)
                _ = waitpid(pid, &status, 0)
                return Result(command: command, status: 128 + SIGKILL, timedOut: true)
            }
            usleep(delay)
            delay = min(delay * 2, 50_000)
        }
        let exited = status & 0x7f == 0
        let code = exited ? (status >> 8) & 0xff : 128 + (status & 0x7f)
        return Result(command: command, status: code, timedOut: false)
    }
}
