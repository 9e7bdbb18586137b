internal import CNetlink
import Core
import Synchronization

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// Never locks the admin out: the addresses of authenticated sessions are not banned without `--force`.
///
/// An address is protected when
/// - sshd logged `Accepted METHOD for USER from ADDR port N …` for it since the daemon started (read from the
///   lines of the jails whose filter is sshd's, by ``acceptedLogin(in:)``, which only takes sshd's own message:
///   the line's message must start with `sshd[PID]: Accepted ` so a user name in a failure line cannot forge one);
/// - it is the remote address of a login session in utmp (`getutxent`, `USER_PROCESS` entries: who is logged in);
/// - for a manual `set JAIL banip`, it is the SSH client address (`SSH_CONNECTION`) of the process that sent the
///   command or of one of its parents (through `sudo`), found from the control socket's peer process id.
///
/// The coordinator withholds such bans with one log line naming the reason.
public final class AdminGuard: Sendable {
    /// Accepted sshd logins seen since start: address → `user@time` text. Bounded (oldest forgotten first).
    private let accepted = Mutex<[IPAddress: (user: String, time: Double, order: Int)]>([:])
    private let counter = Atomic<Int>(0)
    /// utmp read at most once a second.
    private let utmpCache = Mutex<(read: Double, sessions: [IPAddress: String])>((-1, [:]))
    /// The utmp file (tests use their own); nil skips utmp.
    let utmpPath: String?
    let clock: @Sendable () -> Double
    /// Most accepted-login addresses remembered.
    static let maximumAccepted = 4096

    /// A guard reading `utmpPath` (default the system's) and the clock for the log lines' times.
    public init(utmpPath: String? = "/var/run/utmp", clock: @escaping @Sendable () -> Double) {
        self.utmpPath = utmpPath
        self.clock = clock
    }

    /// Notes an accepted login (from a log line).
    public func noteAccepted(_ address: IPAddress, user: String) {
        let order = counter.add(1, ordering: .relaxed).newValue
        let now = clock()
        accepted.withLock { map in
            map[address] = (user, now, order)
            if map.count > Self.maximumAccepted {
                if let oldest = map.min(by: { $0.value.order < $1.value.order }) { map[oldest.key] = nil }
            }
        }
    }

    /// Reads one log line of an sshd jail: an accepted login is noted.
    func scan(_ line: UnsafeBufferPointer<UInt8>) {
        guard let (address, user) = Self.acceptedLogin(in: line) else { return }
        noteAccepted(address, user: user)
    }

    /// Why `address` must not be banned without `--force`, nil when it may be.
    public func protection(of address: IPAddress) -> String? {
        if let a = accepted.withLock({ $0[address] }) {
            return
                "it has an authenticated session (sshd accepted user \(a.user) from it at \(BanCoordinator.timestamp(a.time)))"
        }
        if let who = utmpSessions()[address] {
            return "it has a login session in utmp (user \(who))"
        }
        return nil
    }

    /// The remote addresses of utmp's login sessions (`USER_PROCESS`), cached for a second.
    func utmpSessions() -> [IPAddress: String] {
        guard let utmpPath else { return [:] }
        let now = clock()
        if let cached = utmpCache.withLock({ c in abs(now - c.read) < 1 ? c.sessions : nil }) { return cached }
        let sessions = Self.readUtmp(path: utmpPath)
        utmpCache.withLock { $0 = (now, sessions) }
        return sessions
    }

    /// getutxent's state is process-wide: one reader at a time.
    private static let utmpLock = Mutex(())

    /// Reads `path` with `utmpxname` + `getutxent`: every `USER_PROCESS` entry's remote address (from
    /// `ut_addr_v6`, else `ut_host` when it is an address) with its user.
    static func readUtmp(path: String) -> [IPAddress: String] {
        utmpLock.withLock { _ in
            var out: [IPAddress: String] = [:]
            guard portcullis_utmpx_name(path) == 0 else { return out }
            setutxent()
            defer { endutxent() }
            while let entry = getutxent() {
                guard entry.pointee.ut_type == USER_PROCESS else { continue }
                let user = withUnsafeBytes(of: entry.pointee.ut_user) { raw in
                    String(decoding: raw.prefix { $0 != 0 }, as: UTF8.self)
                }
                let host = withUnsafeBytes(of: entry.pointee.ut_host) { raw in
                    String(decoding: raw.prefix { $0 != 0 }, as: UTF8.self)
                }
                if let a = address(v6: entry.pointee.ut_addr_v6) ?? IPAddress(host) { out[a] = user }
            }
            return out
        }
    }

    /// `ut_addr_v6`: four 32-bit words in network order; only the first set means IPv4; all zero means none.
    static func address(v6 words: (Int32, Int32, Int32, Int32)) -> IPAddress? {
        let w = [words.0, words.1, words.2, words.3].map { UInt32(bigEndian: UInt32(bitPattern: $0)) }
        if w.allSatisfy({ $0 == 0 }) { return nil }
        if w[1] == 0, w[2] == 0, w[3] == 0 { return IPAddress(v4: w[0]) }
        return IPAddress(v6High: UInt64(w[0]) << 32 | UInt64(w[1]), low: UInt64(w[2]) << 32 | UInt64(w[3]))
    }

    /// sshd's `Accepted` message in a log line: `… sshd[PID]: Accepted METHOD for USER from ADDR port N …`
    /// (also `sshd-session[PID]`). The message must start right after sshd's tag, and the words must be exactly
    /// these, so a failure line carrying attacker text (`Failed password for invalid user Accepted …`) never
    /// counts. Returns the address and the user.
    public static func acceptedLogin(in line: UnsafeBufferPointer<UInt8>) -> (IPAddress, String)? {
        let marker = Array("]: Accepted ".utf8)
        guard line.count > marker.count, line.count < 4096 else { return nil }
        // The first `]: ` of the line ends the syslog tag; what follows is the message. Attacker text (a user
        // name in a failure line) only ever comes after it, so the marker must be exactly there.
        var found: Int? = nil
        var i = 0
        while i + 2 < line.count {
            if line[i] == 0x5D, line[i + 1] == 0x3A, line[i + 2] == 0x20 {
                found = i
                break
            }
            i += 1
        }
        guard let first = found, first + marker.count <= line.count else { return nil }
        for k in 3..<marker.count where line[first + k] != marker[k] { return nil }
        let m = first
        // Before the marker: `sshd[DIGITS` or `sshd-session[DIGITS`, preceded by a space or the line's start.
        var j = m - 1
        var digits = 0
        while j >= 0, line[j] >= 0x30, line[j] <= 0x39 {
            digits += 1
            j -= 1
        }
        guard digits > 0, j >= 0, line[j] == 0x5B else { return nil }
        let tagEnd = j
        var tagStart = tagEnd
        while tagStart > 0, line[tagStart - 1] != 0x20 { tagStart -= 1 }
        let tag = String(decoding: UnsafeBufferPointer(rebasing: line[tagStart..<tagEnd]), as: UTF8.self)
        guard tag == "sshd" || tag == "sshd-session" || tag.hasSuffix("/sshd") else { return nil }
        let rest = String(decoding: UnsafeBufferPointer(rebasing: line[(m + marker.count)...]), as: UTF8.self)
        let words = rest.split(separator: " ", omittingEmptySubsequences: false)
        // METHOD for USER from ADDR port N [ssh2[: …]]
        // Exactly sshd's shapes: `… port N`, `… port N ssh2`, `… port N ssh2: KEYTYPE FINGERPRINT`.
        let tail =
            words.count == 7 || (words.count == 8 && words[7] == "ssh2") || (words.count == 10 && words[7] == "ssh2:")
        guard tail, words[1] == "for", words[3] == "from", words[5] == "port",
            !words[0].isEmpty, !words[2].isEmpty, UInt16(words[6]) != nil,
            let address = IPAddress(words[4])
        else { return nil }
        return (address, String(words[2]))
    }

    /// The SSH client address of process `pid` or of its nearest parent that has one (`SSH_CONNECTION`, else
    /// `SSH_CLIENT`, in /proc/PID/environ): the admin running `portcullis set … banip` over ssh, also via sudo.
    public static func sshClientAddress(pid: Int32, proc: String = "/proc") -> IPAddress? {
        var current = pid
        for _ in 0..<16 {
            guard current > 1 else { return nil }
            if let environ = readFile("\(proc)/\(current)/environ") {
                for entry in environ.split(separator: 0) {
                    let text = String(decoding: entry, as: UTF8.self)
                    for key in ["SSH_CONNECTION=", "SSH_CLIENT="] where text.hasPrefix(key) {
                        if let first = text.dropFirst(key.count).split(separator: " ").first, let a = IPAddress(first) {
                            return a
                        }
                    }
                }
            }
            // stat: "PID (COMM) STATE PPID …"; COMM may hold spaces and parentheses: read after the last ')'.
            guard let stat = readFile("\(proc)/\(current)/stat"), let close = stat.lastIndex(of: 0x29) else {
                return nil
            }
            let fields = stat[(close + 1)...].split(separator: 0x20)
            guard fields.count >= 2, let ppid = Int32(String(decoding: fields[1], as: UTF8.self)) else { return nil }
            current = ppid
        }
        return nil
    }

    /// A small file's bytes (at most 64 KiB), nil when it cannot be read.
    static func readFile(_ path: String) -> [UInt8]? {
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { return nil }
        defer { close(fd) }
        var out: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: 8192)
        while out.count < 65536 {
            let n = buffer.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
            if n < 0, errno == EINTR { continue }
            guard n > 0 else { break }
            out += buffer[0..<n]
        }
        return out
    }
}
