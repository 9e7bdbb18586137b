import Core
import Firewall
import Synchronization

/// A ``RecordingFirewall`` whose bans can be held in flight: while held, `ban` suspends (as a slow kernel would)
/// until the test releases it, so a test can reload or stop the daemon at exactly that point.
///
/// ```swift
/// let firewall = GatedFirewall()
/// firewall.hold()
/// async let banning: Void = coordinator.record(jail: "sshd", events: burst)
/// await firewall.waitUntilHeld()      // the coordinator is suspended inside firewall.ban
/// try await coordinator.reload([])    // …a reload removes the jail meanwhile
/// firewall.release()
/// ```
public final class GatedFirewall: FirewallBackend {
    /// The recorder the calls go through once released.
    public let recorder: RecordingFirewall

    private struct State {
        var holding = false
        var held: [CheckedContinuation<Void, Never>] = []
        var heldWaiters: [CheckedContinuation<Void, Never>] = []
    }
    private let state = Mutex(State())

    /// A gate in front of `recorder`.
    public init(recorder: RecordingFirewall = RecordingFirewall()) {
        self.recorder = recorder
    }

    /// From now on, every `ban` waits until ``release()``.
    public func hold() {
        state.withLock { $0.holding = true }
    }

    /// Lets every held `ban` go on, and stops holding.
    public func release() {
        let held = state.withLock { s in
            s.holding = false
            defer { s.held = [] }
            return s.held
        }
        for c in held { c.resume() }
    }

    /// Returns once a `ban` is held.
    public func waitUntilHeld() async {
        await withCheckedContinuation { (c: CheckedContinuation<Void, Never>) in
            let now = state.withLock { s -> Bool in
                if !s.held.isEmpty { return true }
                s.heldWaiters.append(c)
                return false
            }
            if now { c.resume() }
        }
    }

    public func setUp(jails: [JailFirewall]) async throws(FirewallError) { try await recorder.setUp(jails: jails) }

    public func ban(_ requests: [BanRequest]) async throws(FirewallError) {
        await withCheckedContinuation { (c: CheckedContinuation<Void, Never>) in
            let waiters = state.withLock { s -> [CheckedContinuation<Void, Never>]? in
                guard s.holding else { return nil }
                s.held.append(c)
                defer { s.heldWaiters = [] }
                return s.heldWaiters
            }
            guard let waiters else {
                c.resume()
                return
            }
            for w in waiters { w.resume() }
        }
        try await recorder.ban(requests)
    }

    public func unban(_ keys: [BanKey]) async throws(FirewallError) { try await recorder.unban(keys) }
    public func flush(jail: String) async throws(FirewallError) { try await recorder.flush(jail: jail) }
    public func list(jail: String) async throws(FirewallError) -> [BannedEntry] { try await recorder.list(jail: jail) }
    public func tearDown() async throws(FirewallError) { try await recorder.tearDown() }
}
