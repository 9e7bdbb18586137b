internal import CNFTables
internal import CNetlink
import Core
import Synchronization

#if canImport(Glibc)
import Glibc
#endif

/// One dedicated thread that owns an ``NFTContext`` and runs every libnftables call serially.
///
/// libnftables acts in the network namespace of the calling thread; the executor's thread optionally enters a named
/// namespace (`/run/netns/NAME`) before creating its context, so the rest of the process stays where it is. Between
/// jobs the thread calls `tick` every `tickInterval` (the backend's health check).
final class NFTExecutor: @unchecked Sendable {
    // SAFETY: `state` is a Mutex; `wakeFD` is immutable after init; the context lives only on the thread.
    private struct State {
        var jobs: [(NFTContext) -> Void] = []
        var stopping = false
        var finished = false
    }

    private let state = Mutex(State())
    /// Read end and write end of the wake-up pipe.
    private let wakeFD: Int32
    private let wakeWriteFD: Int32
    /// The executor thread, joined by `shutdown`.
    private let thread = Mutex<DedicatedThread?>(nil)
    /// The namespace the thread runs in, nil for the process's own.
    let networkNamespace: String?

    /// Starts the thread, enters the namespace and creates the context; returns once that succeeded.
    ///
    /// - Parameters:
    ///   - watch: run on the thread once the context exists; returns a descriptor to wait on besides the jobs
    ///     (the change-notification socket), nil for none.
    ///   - onReadable: run on the thread, after the queued jobs, whenever that descriptor is readable.
    init(
        networkNamespace: String?, tickInterval: Duration,
        watch: @escaping @Sendable () -> Int32? = { nil },
        onReadable: @escaping @Sendable (NFTContext) -> Void = { _ in },
        tick: @escaping @Sendable (NFTContext) -> Void
    ) throws(FirewallError) {
        self.networkNamespace = networkNamespace
        var fds: [Int32] = [-1, -1]
        guard pipe(&fds) == 0 else {
            throw FirewallError(code: .networkNamespace, message: "pipe failed: \(Syscall.errorText())")
        }
        wakeFD = fds[0]
        wakeWriteFD = fds[1]
        for fd in fds {
            _ = fcntl(fd, F_SETFD, FD_CLOEXEC)
            _ = fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK)
        }
        // The thread reports how its start went in `startError` and then writes one byte to the start pipe.
        var startFDs: [Int32] = [-1, -1]
        guard pipe(&startFDs) == 0 else {
            close(fds[0])
            close(fds[1])
            throw FirewallError(code: .networkNamespace, message: "pipe failed: \(Syscall.errorText())")
        }
        defer {
            close(startFDs[0])
            close(startFDs[1])
        }
        for fd in startFDs { _ = fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK) }
        let startWrite = startFDs[1]
        let startError = Mutex<FirewallError?>(nil)
        let thread: DedicatedThread
        do {
            thread = try DedicatedThread { [self] in
                var context: NFTContext?
                do throws(FirewallError) {
                    if let name = networkNamespace { try Syscall.enterNetworkNamespace(name) }
                    do throws(NFTError) { context = try NFTContext() } catch {
                        throw FirewallError(
                            code: .nftables, message: "cannot create libnftables context", underlying: error)
                    }
                } catch {
                    startError.withLock { $0 = error }
                }
                var one: UInt8 = 1
                _ = write(startWrite, &one, 1)
                guard let context else { return }
                let watched = watch() ?? -1
                loop(context: context, tickInterval: tickInterval, watched: watched, onReadable: onReadable, tick: tick)
            }
        } catch {
            close(fds[0])
            close(fds[1])
            throw FirewallError(code: .nftables, message: "cannot start the libnftables thread: \(error)")
        }
        Syscall.waitReadable(startFDs[0], timeoutMilliseconds: -1)
        if let error = startError.withLock({ $0 }) {
            thread.join()
            close(fds[0])
            close(fds[1])
            throw error
        }
        self.thread.withLock { $0 = thread }
    }

    deinit {
        close(wakeFD)
        close(wakeWriteFD)
    }

    private func loop(
        context: NFTContext, tickInterval: Duration, watched: Int32, onReadable: (NFTContext) -> Void,
        tick: (NFTContext) -> Void
    ) {
        let clock = ContinuousClock()
        var nextTick = clock.now.advanced(by: tickInterval)
        while true {
            let wait = clock.now.duration(to: nextTick)
            let ms = max(0, Int32(clamping: NFTTransaction.milliseconds(max(wait, .zero))))
            let watchedReadable = Syscall.waitReadable(wakeFD, or: watched, timeoutMilliseconds: ms)
            let (jobs, stopping) = state.withLock { s -> ([(NFTContext) -> Void], Bool) in
                let jobs = s.jobs
                s.jobs = []
                if s.stopping && jobs.isEmpty { s.finished = true }
                return (jobs, s.stopping)
            }
            for job in jobs { job(context) }
            if stopping && jobs.isEmpty { return }
            // After the jobs: notifications of the backend's own transactions are already queued, and are
            // recognised as its own.
            if watchedReadable && !stopping { onReadable(context) }
            if !stopping && clock.now >= nextTick {
                tick(context)
                nextTick = clock.now.advanced(by: tickInterval)
            }
        }
    }

    private func wake() {
        var one: UInt8 = 1
        _ = write(wakeWriteFD, &one, 1)
    }

    /// Runs `body` on the executor thread and returns its result.
    func run<T: Sendable>(
        _ body: @escaping @Sendable (NFTContext) throws(FirewallError) -> T
    ) async throws(FirewallError) -> T {
        let result: Result<T, FirewallError> = await withCheckedContinuation { continuation in
            let accepted = state.withLock { s -> Bool in
                guard !s.stopping else { return false }
                s.jobs.append { context in
                    do throws(FirewallError) {
                        continuation.resume(returning: .success(try body(context)))
                    } catch {
                        continuation.resume(returning: .failure(error))
                    }
                }
                return true
            }
            if accepted {
                wake()
            } else {
                continuation.resume(
                    returning: .failure(FirewallError(code: .stopped, message: "the firewall backend was shut down")))
            }
        }
        return try result.get()
    }

    /// Finishes queued jobs, stops the thread and waits for it. Later calls fail with `.stopped`.
    func shutdown() {
        let already = state.withLock { s -> Bool in
            defer { s.stopping = true }
            return s.stopping
        }
        guard !already else { return }
        wake()
        thread.withLock { $0 }?.join()
    }
}

/// The module's libc calls, in one place.
enum Syscall {
    /// `strerror(errno)` with the errno number.
    static func errorText(_ code: Int32 = errno) -> String {
        "\(String(cString: strerror(code))) (errno \(code))"
    }

    /// The whole content of a file, nil when it cannot be opened or read. EINTR retried.
    static func readFile(_ path: String) -> [UInt8]? {
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { return nil }
        defer { close(fd) }
        var out: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 65536)
        while true {
            let n = chunk.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
            if n < 0 && errno == EINTR { continue }
            guard n >= 0 else { return nil }
            if n == 0 { return out }
            out += chunk[0..<n]
        }
    }

    /// Waits until `fd` is readable or the timeout passes, then drains the (non-blocking) pipe. EINTR retried.
    static func waitReadable(_ fd: Int32, timeoutMilliseconds: Int32) {
        var p = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
        var rc: Int32
        repeat { rc = poll(&p, 1, timeoutMilliseconds) } while rc < 0 && errno == EINTR
        if rc > 0 {
            var buffer = [UInt8](repeating: 0, count: 64)
            while read(fd, &buffer, 64) > 0 {}
        }
    }

    /// Waits until the wake pipe `fd` or `watched` (ignored when negative) is readable or the timeout passes;
    /// drains the pipe and returns whether `watched` is readable. EINTR retried.
    static func waitReadable(_ fd: Int32, or watched: Int32, timeoutMilliseconds: Int32) -> Bool {
        guard watched >= 0 else {
            waitReadable(fd, timeoutMilliseconds: timeoutMilliseconds)
            return false
        }
        var p = [
            pollfd(fd: fd, events: Int16(POLLIN), revents: 0), pollfd(fd: watched, events: Int16(POLLIN), revents: 0),
        ]
        var rc: Int32
        repeat { rc = poll(&p, 2, timeoutMilliseconds) } while rc < 0 && errno == EINTR
        guard rc > 0 else { return false }
        if p[0].revents != 0 {
            var buffer = [UInt8](repeating: 0, count: 64)
            while read(fd, &buffer, 64) > 0 {}
        }
        return p[1].revents != 0
    }

    /// Moves the calling thread into `/run/netns/NAME` and checks that it arrived there.
    static func enterNetworkNamespace(_ name: String) throws(FirewallError) {
        guard !name.isEmpty, !name.contains("/"), name != ".", name != ".." else {
            throw FirewallError(code: .networkNamespace, message: "invalid network namespace name '\(name)'")
        }
        let path = "/run/netns/\(name)"
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else {
            throw FirewallError(
                code: .networkNamespace,
                message: "cannot open network namespace \(path): \(errorText()); create it with `ip netns add \(name)`")
        }
        defer { close(fd) }
        guard portcullis_enter_netns(fd) == 0 else {
            throw FirewallError(
                code: .networkNamespace, message: "cannot enter network namespace \(path): \(errorText())")
        }
        // Prove it: the thread's namespace is now the file's namespace.
        var target = stat()
        var mine = stat()
        guard fstat(fd, &target) == 0, stat("/proc/thread-self/ns/net", &mine) == 0,
            target.st_ino == mine.st_ino, target.st_dev == mine.st_dev
        else {
            throw FirewallError(
                code: .networkNamespace, message: "entered \(path) but the thread is not in that namespace")
        }
    }
}
