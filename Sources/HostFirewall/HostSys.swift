#if canImport(Glibc)
import Glibc
#endif

/// The module's system calls: small files, renames, signals, the detached reverter's spawn. EINTR is retried.
enum HostSys {
    /// The whole file, nil when it cannot be opened.
    static func readFile(_ path: String) -> String? {
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { return nil }
        defer { close(fd) }
        var bytes: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 65536)
        while true {
            let n = chunk.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
            if n < 0 {
                if errno == EINTR { continue }
                return nil
            }
            if n == 0 { break }
            bytes.append(contentsOf: chunk[0..<n])
        }
        return String(decoding: bytes, as: UTF8.self)
    }

    /// Writes `text` to `path` atomically (a temporary file in the same directory, fsync, rename), mode 0600.
    static func writeAtomically(_ path: String, _ text: String) -> Int32? {
        let tmp = "\(path).tmp-\(getpid())"
        let fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o600)
        guard fd >= 0 else { return errno }
        var ok = true
        var failure: Int32 = 0
        text.utf8CString.withUnsafeBytes { raw in
            var offset = 0
            let count = raw.count - 1
            while offset < count {
                let n = write(fd, raw.baseAddress! + offset, count - offset)
                if n < 0 {
                    if errno == EINTR { continue }
                    failure = errno
                    ok = false
                    return
                }
                offset += n
            }
        }
        if ok && fsync(fd) != 0 {
            failure = errno
            ok = false
        }
        close(fd)
        guard ok, rename(tmp, path) == 0 else {
            if ok { failure = errno }
            unlink(tmp)
            return failure
        }
        return nil
    }

    /// Appends one line to a log file (created 0600).
    static func appendLine(_ path: String, _ line: String) {
        let fd = open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0o600)
        guard fd >= 0 else { return }
        defer { close(fd) }
        let text = line.hasSuffix("\n") ? line : line + "\n"
        _ = text.utf8CString.withUnsafeBytes { write(fd, $0.baseAddress, $0.count - 1) }
    }

    /// `rename(2)`: true on success.
    static func move(_ from: String, _ to: String) -> Bool { rename(from, to) == 0 }

    /// Removes a file; no error when it is absent.
    static func remove(_ path: String) { unlink(path) }

    /// Whether `path` exists.
    static func exists(_ path: String) -> Bool { access(path, F_OK) == 0 }

    /// Creates `path` (mode 0700) and its parents.
    static func makeDirectories(_ path: String) -> Int32? {
        var current = path.hasPrefix("/") ? "" : "."
        for part in path.split(separator: "/") {
            current += "/" + part
            if mkdir(current, 0o700) != 0 && errno != EEXIST { return errno }
        }
        return nil
    }

    /// The text of an errno value.
    static func describe(_ code: Int32) -> String { String(cString: strerror(code)) }

    /// Seconds since the epoch, with milliseconds.
    static func now() -> Double {
        var ts = timespec()
        clock_gettime(CLOCK_REALTIME, &ts)
        return Double(ts.tv_sec) + Double(ts.tv_nsec) / 1e9
    }

    /// Sleeps for `seconds`.
    static func sleep(_ seconds: Double) {
        guard seconds > 0 else { return }
        var ts = timespec(tv_sec: Int(seconds), tv_nsec: Int((seconds - Double(Int(seconds))) * 1e9))
        var rem = timespec()
        while nanosleep(&ts, &rem) != 0 && errno == EINTR { ts = rem }
    }

    /// The inode of this thread's network namespace (`/proc/thread-self/ns/net`): the key of its state files.
    static func networkNamespaceKey() -> String {
        var st = stat()
        guard stat("/proc/thread-self/ns/net", &st) == 0 || stat("/proc/self/ns/net", &st) == 0 else { return "0" }
        return String(st.st_ino)
    }

    /// The command line of a process, arguments joined by spaces; nil when it is gone.
    static func commandLine(_ pid: Int32) -> String? {
        guard let text = readFile("/proc/\(pid)/cmdline"), !text.isEmpty else { return nil }
        return text.split(separator: "\0").joined(separator: " ")
    }

    /// Sends SIGTERM to `pid` only when its command line contains `marker` (a reused pid is left alone).
    static func terminate(_ pid: Int32, ifCommandLineContains marker: String) {
        guard pid > 1, let cmd = commandLine(pid), cmd.contains(marker) else { return }
        kill(pid, SIGTERM)
    }

    /// This executable's path.
    static func executablePath() -> String {
        var buffer = [CChar](repeating: 0, count: 4096)
        let n = readlink("/proc/self/exe", &buffer, buffer.count - 1)
        guard n > 0 else { return CommandLine.arguments[0] }
        return String(decoding: buffer[0..<n].map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }

    /// Starts `arguments` (argv[0] is the path) in a new session with stdin/stdout/stderr on /dev/null, without
    /// waiting for it. Returns its pid or the errno.
    static func spawnDetached(_ arguments: [String]) -> Result<Int32, SpawnFailure> {
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        for fd in Int32(0)...2 {
            posix_spawn_file_actions_addopen(&actions, fd, "/dev/null", fd == 0 ? O_RDONLY : O_WRONLY, 0)
        }
        var attr = posix_spawnattr_t()
        posix_spawnattr_init(&attr)
        defer { posix_spawnattr_destroy(&attr) }
        // POSIX_SPAWN_SETSID (glibc 2.26+, a GNU macro Swift does not import): its own session, so the reverter
        // outlives the shell or SSH session that ran `apply`.
        posix_spawnattr_setflags(&attr, Int16(0x80))
        var argv: [UnsafeMutablePointer<CChar>?] = arguments.map { strdup($0) } + [nil]
        defer { for p in argv { free(p) } }
        var pid: pid_t = 0
        let rc = posix_spawn(&pid, arguments[0], &actions, &attr, &argv, environ)
        guard rc == 0 else { return .failure(SpawnFailure(code: rc)) }
        return .success(pid)
    }

    struct SpawnFailure: Error {
        var code: Int32
    }

    /// The first line of a /proc/sys file, trimmed.
    static func sysctl(_ path: String) -> String? {
        readFile(path)?.split(separator: "\n").first.map(String.init)
    }
}
