import Core
import Firewall
import Synchronization

/// A ``FirewallBackend`` that sends nothing: it records every call and the exact nftables transaction the real
/// backend would send (built by the same ``NFTRuleset``), and keeps the bans in memory so `list` answers.
///
/// ```swift
/// let firewall = RecordingFirewall()
/// try await firewall.setUp(jails: [JailFirewall(name: "sshd", ports: .ports([PortRange(22)]))])
/// try await firewall.ban([BanRequest(address: IPAddress("192.0.2.7")!, jail: "sshd", duration: .permanent)])
/// firewall.transactions.last?.text   // "add element inet portcullis addr-set-sshd { 192.0.2.7 }\n"
/// ```
public final class RecordingFirewall: FirewallBackend {
    /// One recorded call.
    public enum Call: Hashable, Sendable {
        /// `setUp(jails:)`.
        case setUp([JailFirewall])
        /// `ban(_:)`.
        case ban([BanRequest])
        /// `unban(_:)`.
        case unban([BanKey])
        /// `flush(jail:)`.
        case flush(String)
        /// `list(jail:)`.
        case list(String)
        /// `tearDown()`.
        case tearDown
    }

    private struct State {
        var calls: [Call] = []
        var transactions: [NFTTransaction] = []
        var jails: [String: JailFirewall] = [:]
        var bans: [BanKey: (timeout: Duration?, at: ContinuousClock.Instant)] = [:]
        var failures: [FirewallError] = []
    }

    private let state = Mutex(State())
    /// The builder used for the recorded transactions.
    public let ruleset: NFTRuleset

    /// A recorder for the given configuration (default: table `portcullis`, text syntax).
    public init(configuration: FirewallConfiguration = FirewallConfiguration()) {
        ruleset = NFTRuleset(configuration: configuration)
    }

    /// Every call so far, in order.
    public var calls: [Call] { state.withLock { $0.calls } }
    /// Every transaction that would have been sent, in order.
    public var transactions: [NFTTransaction] { state.withLock { $0.transactions } }
    /// The transactions rendered in the configured syntax (text or JSON), as libnftables would receive them.
    public var sent: [String] { transactions.map { $0.rendered(ruleset.configuration.syntax) } }
    /// The bans currently held, sorted by jail then address.
    public var bannedKeys: [BanKey] {
        state.withLock { Array($0.bans.keys) }.sorted { ($0.jail, $0.address) < ($1.jail, $1.address) }
    }

    /// Makes the next call fail with `error` (queued; one error per call) without recording a transaction.
    public func failNext(with error: FirewallError) {
        state.withLock { $0.failures.append(error) }
    }

    private func begin(_ call: Call) throws(FirewallError) {
        let failure = state.withLock { s -> FirewallError? in
            s.calls.append(call)
            return s.failures.isEmpty ? nil : s.failures.removeFirst()
        }
        if let failure { throw failure }
    }

    private func requireJails(_ names: some Sequence<String>) throws(FirewallError) {
        let known = state.withLock { Set($0.jails.keys) }
        for name in names where !known.contains(name) {
            throw FirewallError(
                code: .unknownJail, jail: name, message: "jail '\(name)' has no firewall set; it was not set up")
        }
    }

    /// Records the set-up transaction (sets of jails dropped since the last set-up are deleted).
    public func setUp(jails: [JailFirewall]) async throws(FirewallError) {
        try begin(.setUp(jails))
        let ruleset = ruleset
        state.withLock { s in
            let names = Set(jails.map(\.name))
            let stale = s.jails.keys.filter { !names.contains($0) }.sorted().flatMap {
                [ruleset.setName(jail: $0, family: .v4), ruleset.setName(jail: $0, family: .v6)]
            }
            s.transactions.append(ruleset.setUp(jails: jails, staleSets: stale))
            s.jails = Dictionary(uniqueKeysWithValues: jails.map { ($0.name, $0) })
            s.bans = s.bans.filter { names.contains($0.key.jail) }
        }
    }

    /// Records the ban transaction and keeps the bans.
    public func ban(_ requests: [BanRequest]) async throws(FirewallError) {
        try begin(.ban(requests))
        guard !requests.isEmpty else { return }
        try requireJails(requests.map(\.jail))
        let ruleset = ruleset
        state.withLock { s in
            let replacing = Set(
                requests.map(\.key).filter { s.bans[$0] != nil })
            s.transactions.append(ruleset.ban(requests, replacing: replacing))
            let now = ContinuousClock.now
            for r in requests {
                let key = r.key
                switch r.duration {
                case .permanent: s.bans[key] = (nil, now)
                case .timeout(let d): s.bans[key] = d > .zero ? (d, now) : nil
                }
            }
        }
    }

    /// Records the unban transaction and forgets the bans.
    public func unban(_ keys: [BanKey]) async throws(FirewallError) {
        try begin(.unban(keys))
        guard !keys.isEmpty else { return }
        try requireJails(keys.map(\.jail))
        let ruleset = ruleset
        state.withLock { s in
            s.transactions.append(ruleset.unban(keys))
            for key in keys { s.bans[key] = nil }
        }
    }

    /// Records the flush transaction and forgets the jail's bans.
    public func flush(jail: String) async throws(FirewallError) {
        try begin(.flush(jail))
        try requireJails([jail])
        let ruleset = ruleset
        state.withLock { s in
            s.transactions.append(ruleset.flush(jail: jail))
            s.bans = s.bans.filter { $0.key.jail != jail }
        }
    }

    /// The jail's bans held in memory, sorted by address; expired ones are left out.
    public func list(jail: String) async throws(FirewallError) -> [BannedEntry] {
        try begin(.list(jail))
        try requireJails([jail])
        let now = ContinuousClock.now
        return state.withLock { s in
            s.bans.compactMap { key, value -> BannedEntry? in
                guard key.jail == jail else { return nil }
                guard let timeout = value.timeout else {
                    return BannedEntry(address: key.address, jail: jail, timeout: nil, remaining: nil)
                }
                let remaining = timeout - value.at.duration(to: now)
                guard remaining > .zero else { return nil }
                return BannedEntry(address: key.address, jail: jail, timeout: timeout, remaining: remaining)
            }.sorted { $0.address < $1.address }
        }
    }

    /// Records the tear-down transaction unless the configuration keeps the table.
    public func tearDown() async throws(FirewallError) {
        try begin(.tearDown)
        let ruleset = ruleset
        state.withLock { s in
            if !ruleset.configuration.keepTableOnStop {
                s.transactions.append(ruleset.tearDown())
                s.bans = [:]
            }
        }
    }
}
