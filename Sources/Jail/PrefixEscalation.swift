import Core

/// When a jail bans a whole network instead of one address at a time: attackers rotate through the addresses of
/// their IPv6 /64 (or an IPv4 block). Jail options `prefix6` (default 64), `prefix4` (default 32) and
/// `prefixbans` (default 3; 0 = off): after `prefixbans` different addresses inside one prefix were banned within
/// `findtime`, the prefix itself is banned. A prefix as long as the address (`prefix4 = 32`) never escalates.
///
/// ```swift
/// let p = PrefixPolicy(prefix4: 32, prefix6: 64, bans: 3)
/// p.prefix(of: IPAddress("2001:db8:1:2::7")!)   // 2001:db8:1:2::/64
/// p.prefix(of: IPAddress("192.0.2.7")!)         // nil (a /32 is the address itself)
/// ```
public struct PrefixPolicy: Sendable, Hashable {
    /// Prefix length for IPv4 addresses (`prefix4`), 0…32.
    public var prefix4: Int
    /// Prefix length for IPv6 addresses (`prefix6`), 0…128.
    public var prefix6: Int
    /// Different addresses banned inside one prefix within `findtime` that ban the prefix (`prefixbans`); 0 = off.
    public var bans: Int

    /// The defaults: IPv6 /64 after 3 bans, IPv4 never (/32).
    public static let defaults = PrefixPolicy()

    /// A policy; lengths are clamped to the family's width.
    public init(prefix4: Int = 32, prefix6: Int = 64, bans: Int = 3) {
        self.prefix4 = min(max(prefix4, 0), 32)
        self.prefix6 = min(max(prefix6, 0), 128)
        self.bans = max(bans, 0)
    }

    /// The prefix escalation would ban for `address`; nil when escalation is off or the prefix is the address.
    public func prefix(of address: IPAddress) -> Subnet? {
        let length = address.family == .v4 ? prefix4 : prefix6
        guard bans > 0, length < address.bitWidth else { return nil }
        return Subnet(address: address, prefixLength: length)
    }
}

/// A prefix ban the jail decided on (see ``PrefixPolicy``); the caller applies it like a ``BanDecision``.
public struct PrefixBanDecision: Sendable, Hashable {
    /// The network banned.
    public var prefix: Subnet
    /// When it starts, epoch seconds.
    public var start: Double
    /// Length in seconds; nil = permanent.
    public var duration: Double?
    /// The addresses whose bans inside `findtime` led to it, sorted.
    public var addresses: [IPAddress]

    /// When it ends, nil if permanent.
    public var end: Double? { duration.map { start + $0 } }

    /// A decision.
    public init(prefix: Subnet, start: Double, duration: Double?, addresses: [IPAddress]) {
        self.prefix = prefix
        self.start = start
        self.duration = duration
        self.addresses = addresses
    }
}

/// A jail's prefix bookkeeping: the prefixes banned (with their end) and, per prefix, the addresses banned
/// recently (with the time of their ban).
struct PrefixBook: Sendable {
    var banned: [Subnet: Double?] = [:]
    var recent: [Subnet: [IPAddress: Double]] = [:]
    /// Prefix bans taken out because they ended, not yet reported by `purgePrefixes`.
    var endedUnreported: [Subnet] = []

    /// The banned prefix covering `address` at `now`, nil when none.
    func covering(_ address: IPAddress, now: Double) -> Subnet? {
        guard !banned.isEmpty else { return nil }
        for (prefix, end) in banned where prefix.contains(address) {
            if end.map({ $0 > now }) ?? true { return prefix }
        }
        return nil
    }
}

extension JailState {
    /// Counts a ban of `decision.address` decided at `now` in its prefix; returns a prefix ban when it is the
    /// `prefixbans`-th different address banned inside that prefix within `findtime`. No ban is returned when the
    /// prefix (or a network overlapping it) is already banned. The prefix ban lasts as long as this ban.
    public mutating func escalation(after decision: BanDecision, now: Double) -> PrefixBanDecision? {
        guard let prefix = policy.prefix.prefix(of: decision.address) else { return nil }
        let window = now - policy.findTime
        var members = prefixes.recent[prefix, default: [:]].filter { $0.value >= window }
        members[decision.address] = now
        // Bounded like the failure records: prefixes whose bans all left the window are dropped now and then.
        if prefixes.recent.count >= 65_536 {
            prefixes.recent = prefixes.recent.filter { $0.value.values.contains { $0 >= window } }
        }
        guard members.count >= policy.prefix.bans else {
            prefixes.recent[prefix] = members
            return nil
        }
        // An overlapping network already banned (or one of another length after a reload): nothing more to do,
        // and the kernel's interval set refuses overlapping elements.
        let overlapping = prefixes.banned.contains { other, end in
            (end.map { $0 > now } ?? true)
                && (other.contains(prefix.network) || prefix.contains(other.network))
        }
        prefixes.recent[prefix] = nil
        if overlapping { return nil }
        return PrefixBanDecision(
            prefix: prefix, start: now, duration: decision.duration, addresses: members.keys.sorted())
    }

    /// Notes that a prefix ban was applied (from ``escalation(after:now:)``, the store at start, or a peer).
    public mutating func noteBanned(prefix: Subnet, until end: Double?) {
        if prefixes.banned.updateValue(end, forKey: prefix) == nil { totalBanned += 1 }
        prefixes.recent[prefix] = nil
    }

    /// Notes the end of a prefix ban; false when the prefix was not banned.
    @discardableResult
    public mutating func noteUnbanned(prefix: Subnet) -> Bool {
        prefixes.banned.removeValue(forKey: prefix) != nil
    }

    /// The banned prefix covering `address` at `now`, nil when none.
    public func bannedPrefix(covering address: IPAddress, now: Double) -> Subnet? {
        prefixes.covering(address, now: now)
    }

    /// The prefixes banned at `now`, sorted.
    public func bannedPrefixes(now: Double) -> [Subnet] {
        prefixes.banned.filter { $0.value.map { $0 > now } ?? true }.keys.sorted {
            ($0.network, $0.prefixLength) < ($1.network, $1.prefixLength)
        }
    }

    /// Forgets every prefix ban (for `unban --all`), returning them.
    public mutating func unbanAllPrefixes() -> [Subnet] {
        let all = Array(prefixes.banned.keys)
        prefixes.banned.removeAll()
        return all
    }

    /// Drops prefix bans that ended at `now` and returns them (each once).
    public mutating func purgePrefixes(now: Double) -> [Subnet] {
        var ended: [Subnet] = []
        for (prefix, end) in prefixes.banned {
            if let end, end <= now { ended.append(prefix) }
        }
        for p in ended { prefixes.banned.removeValue(forKey: p) }
        let window = now - policy.findTime
        prefixes.recent = prefixes.recent.filter { $0.value.values.contains { $0 >= window } }
        return ended
    }
}
