import Core

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// The one place in LogSource that calls libc for files, inotify, poll and pipes. Every call retries `EINTR`
/// and returns the errno on failure instead of a sentinel value.
enum Sys {
    /// File identity and size as `fstat`/`stat` report it.
    struct FileStat: Equatable {
        var device: UInt64
        var inode: UInt64
        var size: UInt64
        var links: UInt64
        var isRegular: Bool

        /// Same file (device and inode).
        func isSameFile(as other: FileStat) -> Bool { device == other.device && inode == other.inode }
    }

    static func describe(_ errno: Int32) -> String {
        guard let text = strerror(errno) else { return "errno \(errno)" }
        return String(cString: text)
    }

    private static func convert(_ st: Glibc.stat) -> FileStat {
        FileStat(
            device: UInt64(st.st_dev),
            inode: UInt64(st.st_ino),
            size: UInt64(max(0, st.st_size)),
            links: UInt64(st.st_nlink),
            isRegular: (st.st_mode & S_IFMT) == S_IFREG
        )
    }

    static func open(_ path: String) -> Result<Int32, Errno> {
        while true {
            let fd = Glibc.open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK | O_NOCTTY)
            if fd >= 0 { return .success(fd) }
            if errno != EINTR { return .failure(Errno(errno)) }
        }
    }

    static func close(_ fd: Int32) {
        _ = Glibc.close(fd)  // EINTR on close must not be retried on Linux.
    }

    static func fstat(_ fd: Int32) -> Result<FileStat, Errno> {
        var st = Glibc.stat()
        if Glibc.fstat(fd, &st) != 0 { return .failure(Errno(errno)) }
        return .success(convert(st))
    }

    static func statPath(_ path: String) -> Result<FileStat, Errno> {
        var st = Glibc.stat()
        if fstatat(AT_FDCWD, path, &st, 0) != 0 { return .failure(Errno(errno)) }
        return .success(convert(st))
    }

    /// `pread` retrying EINTR; returns the byte count (0 at end of file).
    static func pread(
        _ fd: Int32, _ buffer: UnsafeMutableRawPointer, _ count: Int, at offset: UInt64
    )
        -> Result<Int, Errno>
    {
        while true {
            let n = Glibc.pread(fd, buffer, count, off_t(offset))
            if n >= 0 { return .success(n) }
            if errno != EINTR { return .failure(Errno(errno)) }
        }
    }

    /// `read` retrying EINTR; `EAGAIN` reads as 0 bytes.
    static func read(_ fd: Int32, _ buffer: UnsafeMutableRawPointer, _ count: Int) -> Result<Int, Errno> {
        while true {
            let n = Glibc.read(fd, buffer, count)
            if n >= 0 { return .success(n) }
            if errno == EAGAIN || errno == EWOULDBLOCK { return .success(0) }
            if errno != EINTR { return .failure(Errno(errno)) }
        }
    }

    static func write(_ fd: Int32, _ byte: UInt8) {
        var b = byte
        while Glibc.write(fd, &b, 1) < 0 && errno == EINTR {}
    }

    /// A non-blocking, close-on-exec pipe: (read end, write end).
    static func pipe() -> Result<(Int32, Int32), Errno> {
        var fds: [Int32] = [-1, -1]
        if Glibc.pipe(&fds) != 0 { return .failure(Errno(errno)) }
        for fd in fds {
            _ = fcntl(fd, F_SETFD, FD_CLOEXEC)
            _ = fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK)
        }
        return .success((fds[0], fds[1]))
    }

    static func inotifyInit() -> Result<Int32, Errno> {
        let fd = inotify_init1(Int32(IN_NONBLOCK | IN_CLOEXEC))
        return fd >= 0 ? .success(fd) : .failure(Errno(errno))
    }

    static func inotifyAddWatch(_ fd: Int32, _ path: String, _ mask: UInt32) -> Result<Int32, Errno> {
        let wd = inotify_add_watch(fd, path, mask)
        return wd >= 0 ? .success(wd) : .failure(Errno(errno))
    }

    static func inotifyRemoveWatch(_ fd: Int32, _ wd: Int32) {
        _ = inotify_rm_watch(fd, wd)
    }

    /// `poll` on up to a few descriptors, retrying EINTR; returns the `revents` per descriptor.
    static func poll(_ fds: inout [pollfd], timeoutMilliseconds: Int32) -> Result<Int32, Errno> {
        while true {
            let n = Glibc.poll(&fds, nfds_t(fds.count), timeoutMilliseconds)
            if n >= 0 { return .success(n) }
            if errno != EINTR { return .failure(Errno(errno)) }
        }
    }

    /// Expands a shell glob; returns the matching paths sorted, or none.
    static func glob(_ pattern: String) -> [String] {
        var g = glob_t()
        defer { globfree(&g) }
        guard Glibc.glob(pattern, 0, nil, &g) == 0 else { return [] }
        var out: [String] = []
        for i in 0..<Int(g.gl_pathc) {
            if let p = g.gl_pathv[i] { out.append(String(cString: p)) }
        }
        return out.sorted()
    }

    /// True when `path` has glob metacharacters.
    static func isGlob(_ path: String) -> Bool {
        path.contains(where: { $0 == "*" || $0 == "?" || $0 == "[" })
    }

    /// The directory part of a path ("." when there is none).
    static func directory(of path: String) -> String {
        guard let slash = path.lastIndex(of: "/") else { return "." }
        if slash == path.startIndex { return "/" }
        return String(path[..<slash])
    }

    /// The last component of a path.
    static func basename(of path: String) -> String {
        guard let slash = path.lastIndex(of: "/") else { return path }
        return String(path[path.index(after: slash)...])
    }
}

/// An errno value.
struct Errno: Error, Equatable {
    var rawValue: Int32
    init(_ raw: Int32) { rawValue = raw }
}

extension DedicatedThread {
    /// Starts the dedicated thread of a log source; a refusal becomes a ``LogSourceError`` (`.waitFailed`).
    static func logSource(_ body: @escaping @Sendable () -> Void) throws(LogSourceError) -> DedicatedThread {
        do throws(DedicatedThread.StartError) {
            return try DedicatedThread(body)
        } catch {
            throw LogSourceError(.waitFailed, "cannot start the log source thread", errno: error.code)
        }
    }
}
