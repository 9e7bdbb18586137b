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
/// Runtime tags (`<ip>`, `<name>`, `<failures>`, `<matches>`, `<F-USER>`, …) are filled in by `ActionScript`:
/// values that can carry outside text reach the shell as parameters, never as script text.
public struct CommandAction: Sendable, Hashable {
    /// The action's name (e.g. `sendmail-whois`).
    public var name: String
    /// Commands by phase name (`actionstart`, `actionstop`, `actioncheck`, `actionban`, `actionunban`, `actionflush`).
    public var commands: [String: String]
    /// Seconds a command may run before it is killed (`timeout`, default 60).
    public var timeout: Double
    /// The action's own tag values left for run time (`[Init]` and arguments, e.g. `iptables = iptables <lockingopt>`):
    /// template text written by the administrator, substituted before the runtime values.
    public var staticTags: [String: String]
    /// Per-family variants of `staticTags` (`["family=inet6": ["iptables": "ip6tables <lockingopt>"]]`).
    public var conditionalTags: [String: [String: String]]
    /// fail2ban's `norestored`: a ban restored at start does not run this action's `actionban` (mail, reports).
    public var noRestored: Bool

    /// An action with its commands.
    public init(
        name: String, commands: [String: String], timeout: Double = 60, staticTags: [String: String] = [:],
        conditionalTags: [String: [String: String]] = [:], noRestored: Bool = false
    ) {
        self.name = name
        self.commands = commands
        self.timeout = timeout
        self.staticTags = staticTags
        self.conditionalTags = conditionalTags
        self.noRestored = noRestored
    }

    /// Tags that are always runtime values, never the action's own text.
    static let runtimeTags: Set<String> = [
        "ip", "family", "ip-rev", "ip-host", "fid", "failures", "time", "bantime", "bancount", "matches", "restored",
        "ipmatches", "ipjailmatches", "ipfailures", "ipjailfailures", "raw-ticket", "jail.banned", "jail.banned_total",
        "jail.found", "jail.found_total",
    ]

    /// `template` with the action's own tags (for `family`) substituted as text, recursively, as fail2ban's
    /// `replaceTag` does before the runtime values; `<br>` and `<sp>` become a newline and a space.
    public func expandStatic(_ template: String, family: String) -> String {
        let conditional = family.isEmpty ? [:] : conditionalTags["family=" + family] ?? [:]
        var current = template
        for _ in 0..<100 {
            guard current.contains("<") else { return current }
            var changed = false
            var out: [UInt8] = []
            let bytes = Array(current.utf8)
            var i = 0
            while i < bytes.count {
                if bytes[i] == UInt8(ascii: "<"), let (tag, end) = ShellTemplateRenderer.tag(in: bytes, at: i),
                    !Self.runtimeTags.contains(tag), !tag.hasPrefix("F-")
                {
                    let value: String?
                    switch tag {
                    case "br": value = "\n"
                    case "sp": value = " "
                    default: value = conditional[tag] ?? staticTags[tag]
                    }
                    if let value, value != "<\(tag)>" {
                        out.append(contentsOf: value.utf8)
                        i = end
                        changed = true
                        continue
                    }
                }
                out.append(bytes[i])
                i += 1
            }
            current = String(decoding: out, as: UTF8.self)
            if !changed { break }
        }
        return current
    }

    /// The script for `phase` with `values`; nil when the action has no such command (or it is empty).
    public func script(_ phase: String, values: ActionValues) -> ActionScript? {
        guard let raw = commands[phase], !raw.allSatisfy(\.isWhitespace) else { return nil }
        var values = values
        values.trusted["actname"] = values.trusted["actname"] ?? name
        let template = expandStatic(raw, family: values.trusted["family"] ?? "")
        return ActionScript.render(template, values: values)
    }

    /// True when the action has a command for `phase`.
    public func has(_ phase: String) -> Bool { !(commands[phase]?.allSatisfy(\.isWhitespace) ?? true) }

    /// True when `phase`'s command mentions `<tag>`.
    public func uses(_ tag: String, in phase: String) -> Bool {
        commands[phase]?.contains("<\(tag)>") ?? false
    }

    /// Runs phase `phase` with `values` on a thread of its own; nil when the action has no such command.
    public func run(_ phase: String, values: ActionValues) async -> Result? {
        guard let script = script(phase, values: values) else { return nil }
        let timeout = self.timeout
        // The wait for the command (up to `timeout`) blocks a thread: a thread of its own, never one of Swift's
        // cooperative pool (Dispatch's global threads are that pool on Linux), or a few slow actions would stall
        // every other task of the daemon.
        return await withCheckedContinuation { continuation in
            Self.detachThread { continuation.resume(returning: Self.runShell(script, timeout: timeout)) }
        }
    }

    /// Runs phase `phase` on the calling thread (an `ActionRunner`'s worker); nil when there is no such command.
    public func runBlocking(_ phase: String, values: ActionValues) -> Result? {
        guard let script = script(phase, values: values) else { return nil }
        return Self.runShell(script, timeout: timeout)
    }

    /// Runs `body` on a new detached thread; on Dispatch if the system refuses a thread.
    private static func detachThread(_ body: @escaping @Sendable () -> Void) {
        do {
            try DedicatedThread.detached(body)
        } catch {
            DispatchQueue.global().async(execute: body)
        }
    }

    /// The outcome of one command.
    public struct Result: Sendable, Hashable {
        /// The script after substitution (values appear as `${_pcl_N}` references, never as text).
        public var command: String
        /// Exit status (or 128 + signal), -1 when it could not start.
        public var status: Int32
        /// True when it was killed after `timeout`.
        public var timedOut: Bool
    }

    static func runShell(_ rendered: ActionScript, timeout: Double) -> Result {
        let command = rendered.script
        var pid: pid_t = 0
        var attributes = posix_spawnattr_t()
        posix_spawnattr_init(&attributes)
        defer { posix_spawnattr_destroy(&attributes) }
        posix_spawnattr_setflags(&attributes, Int16(POSIX_SPAWN_SETPGROUP))
        posix_spawnattr_setpgroup(&attributes, 0)
        let argv: [UnsafeMutablePointer<CChar>?] = rendered.argv.map { strdup($0) } + [nil]
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
