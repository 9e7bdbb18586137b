#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// A POSIX thread running one closure: the one thread spawner of the package, for blocking kernel waits
/// (inotify, journal, libnftables, socket accept/read).
///
/// ```swift
/// let thread = try DedicatedThread { runLoop() }
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
        init(_ body: @escaping () -> Void) { self.body = body }
    }

    /// Starts a joinable thread running `body`.
    public init(_ body: @escaping @Sendable () -> Void) throws(StartError) {
        handle = try Self.start(body)
    }

    /// Starts a detached thread running `body` (nobody waits for it).
    public static func detached(_ body: @escaping @Sendable () -> Void) throws(StartError) {
        let tid = try start(body)
        _ = pthread_detach(tid)
    }

    private static func start(_ body: @escaping @Sendable () -> Void) throws(StartError) -> pthread_t {
        let box = Unmanaged.passRetained(Box(body))
        var tid = pthread_t()
        let rc = pthread_create(
            &tid, nil,
            { arg in
                let box = Unmanaged<Box>.fromOpaque(arg!).takeRetainedValue()
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
