#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// A mutex with a condition variable, for a thread that must wait until another one changes shared state
/// (a bounded queue's producer waiting for room, a writer thread waiting for work). `Mutex` from Synchronization
/// cannot wait; this is the one pthread condition wrapper of the package.
///
/// ```swift
/// let gate = ConditionLock(State())
/// gate.withLock { $0.items.append(x); gate.broadcast() }
/// gate.wait { $0.items.isEmpty == false }            // blocks the calling thread
/// ```
public final class ConditionLock<State>: @unchecked Sendable {
    // SAFETY: `state` is only read or written with `mutex` held (every accessor below takes it).
    private let mutex: UnsafeMutablePointer<pthread_mutex_t>
    private let condition: UnsafeMutablePointer<pthread_cond_t>
    private var state: State

    /// A lock guarding `state`.
    public init(_ state: State) {
        self.state = state
        mutex = .allocate(capacity: 1)
        condition = .allocate(capacity: 1)
        pthread_mutex_init(mutex, nil)
        var attributes = pthread_condattr_t()
        pthread_condattr_init(&attributes)
        pthread_condattr_setclock(&attributes, CLOCK_MONOTONIC)
        pthread_cond_init(condition, &attributes)
        pthread_condattr_destroy(&attributes)
    }

    deinit {
        pthread_cond_destroy(condition)
        pthread_mutex_destroy(mutex)
        mutex.deallocate()
        condition.deallocate()
    }

    /// Runs `body` with the lock held.
    public func withLock<T>(_ body: (inout State) throws -> T) rethrows -> T {
        pthread_mutex_lock(mutex)
        defer { pthread_mutex_unlock(mutex) }
        return try body(&state)
    }

    /// Wakes every thread blocked in `wait` (call after changing the state).
    public func broadcast() {
        pthread_cond_broadcast(condition)
    }

    /// Blocks until `ready` holds (checked with the lock held, again after every wakeup), then runs `body` with
    /// the lock still held. With `timeoutMilliseconds`, gives up after that long: `body` then runs anyway and
    /// receives `false`.
    public func wait<T>(
        until ready: (State) -> Bool, timeoutMilliseconds: Int? = nil, _ body: (inout State, Bool) throws -> T
    ) rethrows -> T {
        pthread_mutex_lock(mutex)
        defer { pthread_mutex_unlock(mutex) }
        var deadline = timespec()
        if let timeoutMilliseconds {
            clock_gettime(CLOCK_MONOTONIC, &deadline)
            let nanos = Int(deadline.tv_nsec) + (timeoutMilliseconds % 1000) * 1_000_000
            deadline.tv_sec += timeoutMilliseconds / 1000 + nanos / 1_000_000_000
            deadline.tv_nsec = nanos % 1_000_000_000
        }
        while !ready(state) {
            if timeoutMilliseconds != nil {
                if pthread_cond_timedwait(condition, mutex, &deadline) == ETIMEDOUT {
                    return try body(&state, ready(state))
                }
            } else {
                pthread_cond_wait(condition, mutex)
            }
        }
        return try body(&state, true)
    }
}
