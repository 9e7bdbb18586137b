import Configuration
import Core
import Firewall

/// The host firewall policy of `firewall.conf`: what a server accepts, from whom, and what happens to the rest,
/// for IPv4 and IPv6 at once. Pure data; ``PolicyLoader`` reads it, ``PolicyRenderer`` turns it into nftables.
///
/// ```swift
/// var policy = HostPolicy()
/// policy.services = [PolicyService(name: "ssh", ports: [ServicePorts(.tcp, [PortRange(22)])])]
/// print(PolicyRenderer().ruleset(policy))
/// ```
public struct HostPolicy: Hashable, Sendable {
    /// What happens to packets nothing accepts.
    public enum DefaultAction: String, Hashable, Sendable {
        /// TCP gets a reset, everything else ICMP/ICMPv6 port unreachable: a closed port, fast failure for clients.
        case reject
        /// Silently dropped: the sender waits for a timeout.
        case drop
    }

    /// What the forward hook does (routers, Docker).
    public enum Forward: String, Hashable, Sendable {
        /// No forward chain when the host forwards (ip_forward on: Docker or a router decide), else `reject`.
        case auto
        /// No forward chain at all: forwarding is left to whoever set it up.
        case none
        /// Forwarded packets other than established/related are refused (ICMP admin-prohibited / TCP reset).
        case reject
        /// Forwarded packets other than established/related are dropped.
        case drop
        /// Forwarded packets are accepted by this table (other tables may still drop them).
        case accept
    }

    /// What happens to packets nothing accepts (`default`).
    public var defaultAction: DefaultAction = .reject
    /// Accept everything on the loopback interface (`loopback`).
    public var loopback = true
    /// Accept packets of established and related connections (`established`).
    public var established = true
    /// Drop packets conntrack calls invalid (`invalid = drop`).
    public var dropInvalid = true
    /// Accept the ICMP and ICMPv6 types a host needs: errors (PMTU), Neighbor Discovery, MLD (`icmp`).
    public var icmp = true
    /// Accept ICMP/ICMPv6 echo requests (`ping`).
    public var ping = true
    /// Log refused packets at this rate; nil for no logging (`log`).
    public var log: Rate? = Rate(count: 5, unit: .minute)
    /// The log prefix (`logprefix`).
    public var logPrefix = "portcullis-policy refused: "
    /// The forward hook (`forward`).
    public var forward: Forward = .auto
    /// Where `forward` was written (nil: the default).
    public var forwardLocation: SourceLocation?
    /// Named address groups (`[groups]`), in file order.
    public var groups: [AddressGroup] = []
    /// Allowed services (`[services]`), in file order.
    public var services: [PolicyService] = []
    /// Anti-spoofing (`[antispoof]`).
    public var antispoof = AntiSpoof()
    /// The port-scan guard (`[portscan]`); nil when disabled.
    public var portscan: PortscanGuard? = PortscanGuard()
    /// The files the policy was read from (for messages).
    public var files: [String] = []

    /// A policy with the defaults: loopback, established, ICMP, port-scan guard, reject, no services.
    public init() {}

    /// The group named `name`.
    public func group(_ name: String) -> AddressGroup? { groups.first { $0.name == name } }
}

/// A rate: `10/second`, `5/minute`.
public struct Rate: Hashable, Sendable, CustomStringConvertible {
    /// The time unit nft knows.
    public enum Unit: String, Hashable, Sendable, CaseIterable {
        case second, minute, hour, day

        /// Seconds in one unit.
        public var seconds: Int {
            switch self {
            case .second: 1
            case .minute: 60
            case .hour: 3600
            case .day: 86400
            }
        }
    }

    /// Events per unit (at least 1).
    public var count: Int
    /// The unit.
    public var unit: Unit

    /// A rate.
    public init(count: Int, unit: Unit) {
        self.count = count
        self.unit = unit
    }

    /// Parses `N/second|minute|hour|day` (also `s`, `m`, `h`, `d`, `sec`, `min`); nil when malformed.
    public init?(parsing text: String) {
        let parts = text.split(separator: "/", maxSplits: 1).map { $0.trimmingSpaces() }
        guard parts.count == 2, let n = Int(parts[0]), n >= 1, n <= 1_000_000 else { return nil }
        let u = parts[1].lowercased()
        let unit: Unit? =
            switch u {
            case "s", "sec", "second", "seconds": .second
            case "m", "min", "minute", "minutes": .minute
            case "h", "hour", "hours": .hour
            case "d", "day", "days": .day
            default: nil
            }
        guard let unit else { return nil }
        self.init(count: n, unit: unit)
    }

    /// `10/second`.
    public var description: String { "\(count)/\(unit.rawValue)" }
}

/// A named list of networks (`admin = 192.0.2.0/24, 2001:db8:1::/48`).
public struct AddressGroup: Hashable, Sendable {
    /// The group's name (letters, digits, `_`, `-`).
    public var name: String
    /// Its networks, in the order written.
    public var networks: [Subnet]
    /// Where it was defined.
    public var location: SourceLocation?

    /// A group.
    public init(name: String, networks: [Subnet], location: SourceLocation? = nil) {
        self.name = name
        self.networks = networks
        self.location = location
    }

    /// The networks of one family.
    public func networks(_ family: IPAddress.Family) -> [Subnet] { networks.filter { $0.network.family == family } }

    public static func == (a: Self, b: Self) -> Bool { a.name == b.name && a.networks == b.networks }
    public func hash(into h: inout Hasher) {
        h.combine(name)
        h.combine(networks)
    }
}

/// One protocol's ports of a service.
public struct ServicePorts: Hashable, Sendable {
    /// The protocol.
    public var proto: TransportProtocol
    /// Sorted, merged ranges.
    public var ranges: [PortRange]

    /// Ports of one protocol.
    public init(_ proto: TransportProtocol, _ ranges: [PortRange]) {
        self.proto = proto
        self.ranges = ranges
    }

    /// Whether `port` is one of them.
    public func contains(_ port: UInt16) -> Bool { ranges.contains { $0.lower <= port && port <= $0.upper } }
}

/// Where a service may be reached from.
public enum SourceRef: Hashable, Sendable, CustomStringConvertible {
    /// A named group of `[groups]`.
    case group(String)
    /// A network written in place.
    case network(Subnet)

    /// The group name or the network.
    public var description: String {
        switch self {
        case .group(let g): g
        case .network(let n): n.description
        }
    }
}

/// An allowed service: `munin = tcp/4949 from admin`.
public struct PolicyService: Hashable, Sendable {
    /// The name it was given (the option name).
    public var name: String
    /// Its ports, per protocol.
    public var ports: [ServicePorts]
    /// Who may connect; empty means anyone.
    public var sources: [SourceRef]
    /// Where it was written.
    public var location: SourceLocation?

    /// A service.
    public init(name: String, ports: [ServicePorts], sources: [SourceRef] = [], location: SourceLocation? = nil) {
        self.name = name
        self.ports = ports
        self.sources = sources
        self.location = location
    }

    public static func == (a: Self, b: Self) -> Bool {
        a.name == b.name && a.ports == b.ports && a.sources == b.sources
    }
    public func hash(into h: inout Hasher) {
        h.combine(name)
        h.combine(ports)
        h.combine(sources)
    }
}

/// Anti-spoofing: reverse-path filtering and bogon source lists.
public struct AntiSpoof: Hashable, Sendable {
    /// A list of source networks dropped when they arrive on an interface (nil: any but loopback).
    public struct Bogons: Hashable, Sendable {
        /// The interface name, nil for every interface but `lo`.
        public var interface: String?
        /// The networks.
        public var networks: [Subnet]

        /// A bogon list.
        public init(interface: String?, networks: [Subnet]) {
            self.interface = interface
            self.networks = networks
        }
    }

    /// Drop packets whose source would not be routed back out of the interface they came in on (`rpfilter`).
    public var reversePath = true
    /// Bogon lists (`bogons`, `bogons.IFACE`).
    public var bogons: [Bogons] = []

    /// Defaults: reverse-path filtering on, no bogon list.
    public init() {}
}

/// The port-scan guard: a source opening new connections faster than `rate` (after `burst`) is dropped for
/// `blockTime`.
public struct PortscanGuard: Hashable, Sendable {
    /// New connections per source.
    public var rate = Rate(count: 10, unit: .second)
    /// Packets allowed above the rate before it counts.
    public var burst = 10
    /// How long an offender's new connections are dropped, in seconds.
    public var blockSeconds = 60
    /// Groups never counted (`exempt`).
    public var exempt: [String] = []

    /// The defaults: 10/second, burst 10, 60 s.
    public init() {}
}

extension StringProtocol {
    func trimmingSpaces() -> String {
        guard let first = firstIndex(where: { !$0.isWhitespace }) else { return "" }
        let last = lastIndex(where: { !$0.isWhitespace })!
        return String(self[first...last])
    }
}
