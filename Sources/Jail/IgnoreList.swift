import Core

/// Addresses a jail never bans: fail2ban's `ignoreip` (addresses, CIDR, IPv6, host names) and `ignoreself`.
///
/// ```swift
/// let list = try IgnoreList(entries: ["127.0.0.1/8", "::1", "192.0.2.0/24"])
/// list.reason(for: IPAddress("192.0.2.9")!)   // "ignoreip 192.0.2.0/24"
/// ```
public struct IgnoreList: Sendable, Hashable {
    /// An `ignoreip` entry that is neither an address, a network nor a resolvable host name.
    public struct InvalidEntry: Error, Sendable, CustomStringConvertible {
        /// The entry as written.
        public var entry: String
        public var description: String {
            "ignoreip: '\(entry)' is not an address, a CIDR network or a resolvable host name"
        }
    }

    /// The networks ignored, with the entry each came from.
    public private(set) var networks: [(Subnet, String)] {
        get { zip(subnets, sources).map { ($0, $1) } }
        set {
            subnets = newValue.map(\.0)
            sources = newValue.map(\.1)
        }
    }
    private var subnets: [Subnet] = []
    private var sources: [String] = []

    /// Builds the list. Host names are resolved once through `resolve` (inject a fake in tests).
    /// Entries may be separated by spaces or commas, as fail2ban allows.
    public init(
        entries: [String], selfAddresses: [IPAddress] = [],
        resolve: (String) -> [IPAddress] = { _ in [] }
    ) throws(InvalidEntry) {
        for raw in entries {
            for item in raw.split(whereSeparator: { $0 == " " || $0 == "," || $0 == "\n" || $0 == "\t" }) {
                let entry = String(item)
                if let net = Subnet(entry) {
                    subnets.append(net)
                    sources.append(entry)
                } else {
                    let found = resolve(entry)
                    guard !found.isEmpty else { throw InvalidEntry(entry: entry) }
                    for a in found {
                        subnets.append(Subnet(address: a, prefixLength: a.bitWidth))
                        sources.append(entry)
                    }
                }
            }
        }
        for a in selfAddresses {
            subnets.append(Subnet(address: a, prefixLength: a.bitWidth))
            sources.append("ignoreself")
        }
    }

    /// Why `address` is ignored, or nil when it may be banned.
    public func reason(for address: IPAddress) -> String? {
        for (i, net) in subnets.enumerated() where net.contains(address) {
            return sources[i] == "ignoreself" ? "ignoreself (own address)" : "ignoreip \(sources[i])"
        }
        return nil
    }

    /// True when `address` is covered.
    public func contains(_ address: IPAddress) -> Bool { reason(for: address) != nil }

    public static func == (a: IgnoreList, b: IgnoreList) -> Bool { a.subnets == b.subnets && a.sources == b.sources }
    public func hash(into h: inout Hasher) {
        h.combine(subnets)
        h.combine(sources)
    }
}
