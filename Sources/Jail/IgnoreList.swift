import Core

/// Addresses a jail never bans: fail2ban's `ignoreip` (addresses, CIDR, IPv6, host names) and `ignoreself`.
///
/// ```swift
/// var list = try IgnoreList(entries: ["127.0.0.1/8", "::1", "192.0.2.0/24"])
/// list.reason(for: IPAddress("192.0.2.9")!)   // "ignoreip 192.0.2.0/24"
/// list.add("198.51.100.0/24")                 // at run time (`set JAIL addignoreip`)
/// list.entries                                // ["127.0.0.0/8", "192.0.2.0/24", "198.51.100.0/24", "::1"]
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

    /// One `ignoreip` entry.
    struct Entry: Sendable, Hashable {
        /// As written (named in the reason an address is ignored).
        var written: String
        /// As fail2ban shows it (`127.0.0.1/8` → `127.0.0.0/8`); a host name as written.
        var text: String
        /// The networks it covers (a host name: its addresses when it was added).
        var subnets: [Subnet]
        /// A single address (fail2ban keeps those apart and lists them last).
        var isSingle: Bool
    }

    private var list: [Entry] = []
    /// The host's own addresses, ignored while ``ignoresSelf`` is true.
    public private(set) var selfAddresses: [IPAddress] = []
    /// `ignoreself`: whether the host's own addresses are ignored.
    public private(set) var ignoresSelf: Bool

    /// The networks ignored, with the entry each came from (own addresses last, as `ignoreself`).
    public var networks: [(Subnet, String)] {
        var out: [(Subnet, String)] = []
        for e in list { for s in e.subnets { out.append((s, e.written)) } }
        if ignoresSelf {
            for a in selfAddresses { out.append((Subnet(address: a, prefixLength: a.bitWidth), "ignoreself")) }
        }
        return out
    }

    /// The entries as fail2ban's `get JAIL ignoreip` lists them: networks and host names in the order they were
    /// added, then single addresses.
    public var entries: [String] {
        list.filter { !$0.isSingle }.map(\.text) + list.filter(\.isSingle).map(\.text)
    }

    /// Builds the list. Host names are resolved once through `resolve` (inject a fake in tests); one that resolves
    /// to nothing is an error. Entries may be separated by spaces or commas, as fail2ban allows. `selfAddresses`
    /// are ignored as `ignoreself` (none: `ignoreself` is off).
    public init(
        entries: [String], selfAddresses: [IPAddress] = [],
        resolve: (String) -> [IPAddress] = { _ in [] }
    ) throws(InvalidEntry) {
        ignoresSelf = !selfAddresses.isEmpty
        self.selfAddresses = selfAddresses
        for raw in entries {
            for item in raw.split(whereSeparator: { $0 == " " || $0 == "," || $0 == "\n" || $0 == "\t" }) {
                let entry = String(item)
                if Self.network(entry) == nil {
                    let found = resolve(entry)
                    guard !found.isEmpty else { throw InvalidEntry(entry: entry) }
                    add(entry, resolved: found)
                } else {
                    add(entry)
                }
            }
        }
    }

    /// An empty list (`ignoreself` on when `selfAddresses` is not empty).
    public init(selfAddresses: [IPAddress] = []) {
        ignoresSelf = !selfAddresses.isEmpty
        self.selfAddresses = selfAddresses
    }

    /// The network an entry names: an address, `ADDR/LEN`, `ADDR/NETMASK`, or an IPv6 address in brackets.
    public static func network(_ text: String) -> Subnet? {
        var t = Substring(text)
        if t.count > 2, t.first == "[", t.last == "]" { t = t.dropFirst().dropLast() }
        return Subnet(t)
    }

    /// fail2ban's text of a network: the address, with `/LEN` unless it is a single address (or `/0`).
    static func text(_ s: Subnet) -> String {
        s.prefixLength == 0 || s.prefixLength == s.network.bitWidth ? s.network.description : s.description
    }

    /// Adds an entry (`set JAIL addignoreip`): an address or network, else a host name covering `resolved`
    /// (possibly nothing: fail2ban keeps a name that does not resolve). Returns false for a duplicate, which is
    /// left out as fail2ban does.
    @discardableResult
    public mutating func add(_ written: String, resolved: [IPAddress] = []) -> Bool {
        let entry: Entry
        if let net = Self.network(written) {
            entry = Entry(
                written: written, text: Self.text(net), subnets: [net],
                isSingle: net.prefixLength == net.network.bitWidth)
        } else {
            entry = Entry(
                written: written, text: written,
                subnets: resolved.map { Subnet(address: $0, prefixLength: $0.bitWidth) },
                isSingle: false)
        }
        guard !list.contains(where: { $0.text == entry.text }) else { return false }
        list.append(entry)
        return true
    }

    /// Removes the entry `written` names (`set JAIL delignoreip`, compared as fail2ban does: `127.0.0.1/8` names
    /// `127.0.0.0/8`). Returns false when there is none.
    @discardableResult
    public mutating func remove(_ written: String) -> Bool {
        let text = Self.network(written).map(Self.text) ?? written
        guard let i = list.firstIndex(where: { $0.text == text }) else { return false }
        list.remove(at: i)
        return true
    }

    /// Turns `ignoreself` on with the host's `addresses`, or off (`set JAIL ignoreself`).
    public mutating func setIgnoreSelf(_ on: Bool, addresses: [IPAddress]) {
        ignoresSelf = on
        selfAddresses = on ? addresses : []
    }

    /// Why `address` is ignored, or nil when it may be banned.
    public func reason(for address: IPAddress) -> String? {
        if ignoresSelf, selfAddresses.contains(address) { return "ignoreself (own address)" }
        for e in list where e.subnets.contains(where: { $0.contains(address) }) { return "ignoreip \(e.written)" }
        return nil
    }

    /// True when `address` is covered.
    public func contains(_ address: IPAddress) -> Bool { reason(for: address) != nil }
}
