#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// The one place where Control calls libc for sockets and threads. Calls retry `EINTR`; failures carry errno.
enum Sys {
    struct Failure: Error, CustomStringConvertible {
        var call: String
        var errno: Int32
        var description: String { "\(call): \(String(cString: strerror(errno)))" }
    }

    static let maxPathBytes = MemoryLayout.size(ofValue: sockaddr_un().sun_path) - 1

    static func withAddress<T>(_ path: String, _ body: (UnsafePointer<sockaddr>, socklen_t) -> T) -> T? {
        let bytes = Array(path.utf8)
        guard !bytes.isEmpty, bytes.count <= maxPathBytes, !bytes.contains(0) else { return nil }
        var address = sockaddr_un()
        address.sun_family = sa_family_t(AF_UNIX)
        withUnsafeMutableBytes(of: &address.sun_path) { raw in
            for (i, b) in bytes.enumerated() { raw[i] = b }
            raw[bytes.count] = 0
        }
        return withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { body($0, socklen_t(MemoryLayout<sockaddr_un>.size)) }
        }
    }

    static func socketFD() throws(Failure) -> Int32 {
        let fd = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard fd >= 0 else { throw Failure(call: "socket", errno: errno) }
        return fd
    }

    /// Connects a new socket to `path`.
    static func connect(path: String) throws(Failure) -> Int32 {
        let fd = try socketFD()
        var rc: Int32 = -1
        repeat {
            guard let r = withAddress(path, { Glibc.connect(fd, $0, $1) }) else {
                close(fd)
                throw Failure(call: "connect \(path) (path too long or empty)", errno: ENAMETOOLONG)
            }
            rc = r
        } while rc < 0 && errno == EINTR
        if rc < 0 {
            let e = errno
            close(fd)
            throw Failure(call: "connect \(path)", errno: e)
        }
        return fd
    }

    static func inode(_ path: String) -> UInt64? {
        var st = stat()
        guard lstat(path, &st) == 0 else { return nil }
        return UInt64(st.st_ino)
    }

    static func isSocket(_ path: String) -> Bool? {
        var st = stat()
        guard lstat(path, &st) == 0 else { return nil }
        return (st.st_mode & S_IFMT) == S_IFSOCK
    }

    /// Binds a listening socket at `path` with `mode`, atomically: bound under a temporary name, chmod-ed, then
    /// renamed, so the socket is never reachable with looser permissions. A stale socket (nobody listening) is
    /// replaced; a live one or a non-socket file is an error.
    static func listen(path: String, mode: mode_t, backlog: Int32) throws(Failure) -> Int32 {
        switch isSocket(path) {
        case true?:
            if let probe = try? connect(path: path) {
                close(probe)
                throw Failure(call: "another server is listening on \(path)", errno: EADDRINUSE)
            }
        case false?:
            throw Failure(call: "\(path) exists and is not a socket", errno: EEXIST)
        case nil:
            break
        }
        let temporary = path + ".\(getpid()).tmp"
        guard temporary.utf8.count <= maxPathBytes else {
            throw Failure(call: "socket path \(path) is too long", errno: ENAMETOOLONG)
        }
        let fd = try socketFD()
        unlink(temporary)
        let rc = withAddress(temporary) { Glibc.bind(fd, $0, $1) } ?? -1
        guard rc == 0 else {
            let e = errno
            close(fd)
            throw Failure(call: "bind \(path)", errno: e)
        }
        guard chmod(temporary, mode) == 0, rename(temporary, path) == 0 else {
            let e = errno
            unlink(temporary)
            close(fd)
            throw Failure(call: "chmod/rename \(path)", errno: e)
        }
        guard Glibc.listen(fd, backlog) == 0 else {
            let e = errno
            unlink(path)
            close(fd)
            throw Failure(call: "listen \(path)", errno: e)
        }
        return fd
    }

    /// A descriptor held in reserve for ``accept(_:spare:)`` (nil-safe: -1 when none could be opened).
    static func spareDescriptor() -> Int32 { open("/dev/null", O_RDONLY | O_CLOEXEC) }

    /// Accepts one connection; nil when the listener was shut down or failed for good.
    ///
    /// Out of descriptors (EMFILE/ENFILE), the pending connection would make every later accept fail at once and
    /// the loop spin: the reserved `spare` descriptor is closed, the connection accepted and closed at once (the
    /// client sees its connection closed instead of hanging), and `spare` reopened; then a 10 ms pause.
    static func accept(_ fd: Int32, spare: inout Int32) -> Int32? {
        while true {
            let c = Glibc.accept(fd, nil, nil)
            if c >= 0 {
                _ = fcntl(c, F_SETFD, FD_CLOEXEC)
                return c
            }
            switch errno {
            case EINTR, ECONNABORTED, EPROTO: continue
            case EMFILE, ENFILE:
                if spare >= 0 {
                    close(spare)
                    let shed = Glibc.accept(fd, nil, nil)
                    if shed >= 0 { close(shed) }
                    spare = spareDescriptor()
                }
                usleep(10_000)
                continue
            case ENOBUFS, ENOMEM:
                usleep(10_000)
                continue
            default: return nil
            }
        }
    }

    /// CLOCK_MONOTONIC in nanoseconds.
    static func monotonicNanoseconds() -> UInt64 {
        var ts = timespec()
        clock_gettime(CLOCK_MONOTONIC, &ts)
        return UInt64(ts.tv_sec) * 1_000_000_000 + UInt64(ts.tv_nsec)
    }

    /// Reads up to `count` bytes; 0 at end of stream; nil on error or receive timeout.
    static func read(_ fd: Int32, into buffer: UnsafeMutableRawBufferPointer) -> Int? {
        while true {
            let n = recv(fd, buffer.baseAddress, buffer.count, 0)
            if n >= 0 { return n }
            if errno == EINTR { continue }
            return nil
        }
    }

    /// Writes everything; false when the peer went away.
    static func writeAll(_ fd: Int32, _ bytes: [UInt8]) -> Bool {
        bytes.withUnsafeBytes { raw in
            var offset = 0
            while offset < raw.count {
                let n = send(fd, raw.baseAddress! + offset, raw.count - offset, Int32(MSG_NOSIGNAL))
                if n < 0 {
                    if errno == EINTR { continue }
                    return false
                }
                offset += n
            }
            return true
        }
    }

    static func setReceiveTimeout(_ fd: Int32, seconds: Int) {
        guard seconds > 0 else { return }
        var tv = timeval(tv_sec: seconds, tv_usec: 0)
        _ = setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, socklen_t(MemoryLayout<timeval>.size))
    }

    /// Sets the receive timeout to `nanoseconds` (at least 1 ms, so it never means "no timeout").
    static func setReceiveTimeout(_ fd: Int32, nanoseconds: UInt64) {
        let micros = max(1000, nanoseconds / 1000)
        var tv = timeval(tv_sec: Int(micros / 1_000_000), tv_usec: Int(micros % 1_000_000))
        _ = setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, socklen_t(MemoryLayout<timeval>.size))
    }

    static func setSendTimeout(_ fd: Int32, seconds: Int) {
        guard seconds > 0 else { return }
        var tv = timeval(tv_sec: seconds, tv_usec: 0)
        _ = setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, socklen_t(MemoryLayout<timeval>.size))
    }

    /// The peer's process id (SO_PEERCRED), nil if unavailable.
    static func peerPID(_ fd: Int32) -> Int32? {
        var credentials: (UInt32, UInt32, UInt32) = (0, 0, 0)
        var length = socklen_t(MemoryLayout<(UInt32, UInt32, UInt32)>.size)
        guard getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &credentials, &length) == 0, length == 12, credentials.0 > 0
        else { return nil }
        return Int32(bitPattern: credentials.0)
    }

    /// The peer's user id (SO_PEERCRED), nil if unavailable.
    static func peerUID(_ fd: Int32) -> uid_t? {
        // struct ucred { pid_t pid; uid_t uid; gid_t gid; } (needs _GNU_SOURCE, so read it as three UInt32).
        var credentials: (UInt32, UInt32, UInt32) = (0, 0, 0)
        var length = socklen_t(MemoryLayout<(UInt32, UInt32, UInt32)>.size)
        guard getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &credentials, &length) == 0, length == 12 else { return nil }
        return credentials.1
    }
}
