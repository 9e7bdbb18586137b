import Synchronization

/// A wall clock (epoch seconds) that moves only when a test says so, for the daemon's `clock` parameters.
///
/// ```swift
/// let clock = ManualClock(1_700_000_000)
/// let coordinator = BanCoordinator(firewall: nil, store: nil, clock: clock.reading, logger: { Logger(label: $0) })
/// clock.advance(by: 601)   // the 600 s bans have ended
/// ```
public final class ManualClock: Sendable {
    private let value: Mutex<Double>

    /// A clock reading `start`.
    public init(_ start: Double = 1_700_000_000) {
        value = Mutex(start)
    }

    /// The time now.
    public var now: Double { value.withLock { $0 } }

    /// Moves the clock forward.
    public func advance(by seconds: Double) {
        value.withLock { $0 += seconds }
    }

    /// The clock as the closure the daemon's types take.
    public var reading: @Sendable () -> Double { { [self] in now } }
}
