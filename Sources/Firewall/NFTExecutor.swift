import CNFTables
import Foundation
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
    private let done = DispatchSemaphore(value: 0)
    /// The namespace the thread runs in, nil for the process's own.
    let networkNamespace: String?

    /// Starts the thread, enters the namespace and creates the context; returns once that succeeded.
    init(
        networkNamespace: String?, tickInterval: Duration,
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
        let started = DispatchSemaphore(value: 0)
        let startResult = Mutex<FirewallError?>(nil)
        let thread = Thread { [self] in
            let context: NFTContext
            do {
                if let name = networkNamespace { try Syscall.enterNetworkNamespace(name) }
                do throws(NFTError) { context = try NFTContext() } catch {
                    throw FirewallError(
                        code: .nftables, message: "cannot create libnftables context", underlying: error)
                }
            } catch let error as FirewallError {
                startResult.withLock { $0 = error }
                started.signal()
                done.signal()
                return
            } catch {
                started.signal()
                done.signal()
                return
            }
            started.signal()
            loop(context: context, tickInterval: tickInterval, tick: tick)
            done.signal()
        }
        thread.name = "portcullis-nft"
        thread.start()
        started.wait()
        if let error = startResult.withLock({ $0 }) {
            close(fds[0])
            close(fds[1])
            throw error
        }
    }

    deinit {
        close(wakeFD)
        close(wakeWriteFD)
    }

    private func loop(context: NFTContext, tickInterval: Duration, tick: (NFTContext) -> Void) {
        let clock = ContinuousClock()
        var nextTick = clock.now.advanced(by: tickInterval)
        while true {
            let wait = clock.now.duration(to: nextTick)
            let ms = max(0, Int32(clamping: NFTTransaction.milliseconds(max(wait, .zero))))
            Syscall.waitReadable(wakeFD, timeoutMilliseconds: ms)
            let (jobs, stopping) = state.withLock { s -> ([(NFTContext) -> Void], Bool) in
                let jobs = s.jobs
                s.jobs = []
                if s.stopping && jobs.isEmpty { s.finished = true }
                return (jobs, s.stopping)
            }
            for job in jobs { job(context) }
            if stopping && jobs.isEmpty { return }
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
        done.wait()
    }
}

/// The module's libc calls, in one place.
enum Syscall {
    /// `strerror(errno)` with the errno number.
    static func errorText(_ code: Int32 = errno) -> String {
        "\(String(cString: strerror(code))) (errno \(code))"
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
