#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif

/// A POSIX thread running one closure: the one thread spawner of the package, for blocking kernel waits
/// (inotify, journal, libnftables, socket accept/read).
///
/// ```swift
/// let thread = try DedicatedThread(name: "portcullis-nft") { runLoop() }
/// thread.join()                                   // waits for `runLoop` to return
/// try DedicatedThread.detached { serve(fd) }      // fire and forget
/// ```
public final class DedicatedThread: Sendable {
    /// Why a thread could not be started: the `pthread_create` error number.
    public struct StartError: Error, Sendable, Hashable, CustomStringConvertible {
        /// The errno value `pthread_create` returned (EAGAIN when out of threads).
        public var code: Int32
        /// A message for a person.
        public var description: String { "cannot start a thread: \(String(cString: strerror(code))) (errno \(code))" }
    }

    // SAFETY: written once in `init` before the thread can be joined, read only by `join`.
    nonisolated(unsafe) private var handle: pthread_t

    private final class Box {
        let body: () -> Void
        let name: String?
        init(_ body: @escaping () -> Void, name: String?) {
            self.body = body
            self.name = name
        }
    }

    /// Starts a joinable thread running `body`; `name` (at most 15 bytes are kept) shows in `top -H` and `ps -L`.
    public init(name: String? = nil, _ body: @escaping @Sendable () -> Void) throws(StartError) {
        handle = try Self.start(name: name, body)
    }

    /// Starts a detached thread running `body` (nobody waits for it).
    public static func detached(name: String? = nil, _ body: @escaping @Sendable () -> Void) throws(StartError) {
        let tid = try start(name: name, body)
        _ = pthread_detach(tid)
    }

    private static func start(name: String?, _ body: @escaping @Sendable () -> Void) throws(StartError) -> pthread_t {
        let box = Unmanaged.passRetained(Box(body, name: name))
        var tid = pthread_t()
        let rc = pthread_create(
            &tid, nil,
            { arg in
                let box = Unmanaged<Box>.fromOpaque(arg!).takeRetainedValue()
                #if os(Linux)
                    // pthread_setname_np needs _GNU_SOURCE; the kernel's own file does the same.
                    if let name = box.name {
                        let fd = open("/proc/thread-self/comm", O_WRONLY | O_CLOEXEC)
                        if fd >= 0 {
                            let bytes = Array(name.utf8.prefix(15))
                            _ = bytes.withUnsafeBytes { write(fd, $0.baseAddress, $0.count) }
                            close(fd)
                        }
                    }
                #endif
                box.body()
                return nil
            }, box.toOpaque())
        guard rc == 0 else {
            box.release()
            throw StartError(code: rc)
        }
        return tid
    }

    /// Waits for the thread to end. Called on the thread itself (a handler stopping its own source), it detaches
    /// instead of deadlocking.
    public func join() {
        if pthread_equal(pthread_self(), handle) != 0 {
            _ = pthread_detach(handle)
        } else {
            _ = pthread_join(handle, nil)
        }
    }
}
