import Core

/// Which of a jail's sets a ban lives in. Each scope has its own pair of sets (IPv4, IPv6) and rules with the
/// jail's ports, so lifting a ban of one scope never touches another:
///
/// | scope | sets | what |
/// |---|---|---|
/// | `.address` | `addr-set-J`, `addr6-set-J` | the jail's own bans of single addresses |
/// | `.prefix(n)` | `net-set-J`, `net6-set-J` (`flags interval, timeout`) | whole prefixes (IPv6 /64 escalation) |
/// | `.fleet` | `fleet-set-J`, `fleet6-set-J` | bans applied from fleet peers |
///
/// The prefix and fleet set names cannot collide with a jail's `addr-set-…` names whatever the jail is called.
public enum BanScope: Hashable, Sendable, CustomStringConvertible {
    /// One address, in the jail's own set.
    case address
    /// A whole network of this prefix length (the address is its network address), in the jail's interval set.
    case prefix(Int)
    /// One address banned by a fleet peer, in the jail's fleet set.
    case fleet

    /// The kind of set, without the prefix length.
    public enum Kind: String, Hashable, Sendable, CaseIterable {
        /// `addr-set-J`.
        case address
        /// `net-set-J`.
        case prefix
        /// `fleet-set-J`.
        case fleet
    }

    /// The kind of set.
    public var kind: Kind {
        switch self {
        case .address: return .address
        case .prefix: return .prefix
        case .fleet: return .fleet
        }
    }

    /// The prefix length of a prefix ban, nil otherwise.
    public var prefixLength: Int? {
        if case .prefix(let n) = self { return n }
        return nil
    }

    /// The address as a set element of this scope: a prefix's host bits cleared.
    func normalise(_ address: IPAddress) -> IPAddress {
        guard case .prefix(let n) = self else { return address }
        return Subnet(address: address, prefixLength: min(max(n, 0), address.bitWidth)).network
    }

    /// `address`, `prefix/64`, `fleet`.
    public var description: String {
        switch self {
        case .address: return "address"
        case .prefix(let n): return "prefix/\(n)"
        case .fleet: return "fleet"
        }
    }
}
