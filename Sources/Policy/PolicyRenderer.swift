import Core
import Firewall

/// Turns a ``HostPolicy`` into the nftables ruleset of Portcullis's policy table (`inet portcullis-policy`).
///
/// The table has its own base chains at the `filter` priority (0). The ban table's chain (`inet portcullis`, at
/// `filter - 1`) sees every packet first, and a drop or reject there is final, so a ban always wins over a
/// service this policy accepts; an accept here does not undo a ban, and other tables (Docker's, the admin's) still
/// see what this one accepts. Nothing outside this table is touched: loading is `add table` + `delete table` +
/// the table, in one transaction.
///
/// ```swift
/// let text = PolicyRenderer().loadScript(policy, forwarding: false)
/// try NFTContext().run(text)   // one kernel transaction
/// ```
public struct PolicyRenderer: Sendable {
    /// The table, in family `inet`.
    public var table: String
    /// The base chains' priority.
    public var priority: Int

    /// The default table `portcullis-policy` at priority `filter` (0).
    public init(table: String = "portcullis-policy", priority: Int = 0) {
        self.table = table
        self.priority = priority
    }

    /// The whole load: the table replaced by the policy's, in one transaction.
    public func loadScript(_ policy: HostPolicy, forwarding: Bool) -> String {
        removeScript() + ruleset(policy, forwarding: forwarding)
    }

    /// Removes the table (no error when it is absent).
    public func removeScript() -> String {
        "add table inet \(table)\ndelete table inet \(table)\n"
    }

    /// Whether the policy gets a forward chain, given whether the host forwards packets.
    public func hasForwardChain(_ policy: HostPolicy, forwarding: Bool) -> Bool {
        switch policy.forward {
        case .none: false
        case .auto: !forwarding
        case .reject, .drop, .accept: true
        }
    }

    /// The set of a group for one family: `group-NAME-v4` / `group-NAME-v6`.
    public static func groupSet(_ name: String, _ family: IPAddress.Family) -> String {
        "group-\(name)-\(family == .v4 ? "v4" : "v6")"
    }

    /// The table as nft text (`table inet portcullis-policy { … }`).
    public func ruleset(_ policy: HostPolicy, forwarding: Bool) -> String {
        var out = "table inet \(table) {\n"
        func set(_ name: String, _ family: IPAddress.Family, flags: String, extra: [String] = [], elements: [Subnet]) {
            out += "\tset \(name) {\n\t\ttype \(family == .v4 ? "ipv4_addr" : "ipv6_addr")\n"
            for e in extra { out += "\t\t\(e)\n" }
            out += "\t\tflags \(flags)\n"
            if !elements.isEmpty {
                out += "\t\telements = { \(elements.map(\.description).joined(separator: ", ")) }\n"
            }
            out += "\t}\n\n"
        }
        for group in policy.groups {
            for family in [IPAddress.Family.v4, .v6] {
                set(Self.groupSet(group.name, family), family, flags: "interval", elements: group.networks(family))
            }
        }
        for (name, bogons) in bogonSets(policy) {
            for family in [IPAddress.Family.v4, .v6]
            where !bogons.networks.filter({ $0.network.family == family }).isEmpty {
                set(
                    "\(name)-\(family == .v4 ? "v4" : "v6")", family, flags: "interval",
                    elements: bogons.networks.filter { $0.network.family == family })
            }
        }
        if let scan = policy.portscan {
            for family in [IPAddress.Family.v4, .v6] {
                let f = family == .v4 ? "v4" : "v6"
                set(
                    "portscan-meter-\(f)", family, flags: "dynamic,timeout", extra: ["size 65535", "timeout 1m"],
                    elements: [])
                set(
                    "portscan-block-\(f)", family, flags: "dynamic,timeout",
                    extra: ["size 65535", "timeout \(Self.duration(scan.blockSeconds))"], elements: [])
            }
        }
        out += "\tchain input {\n\t\ttype filter hook input priority \(priority); policy accept;\n"
        for rule in inputRules(policy) { out += "\t\t\(rule)\n" }
        out += "\t}\n"
        if hasForwardChain(policy, forwarding: forwarding) {
            out += "\n\tchain forward {\n\t\ttype filter hook forward priority \(priority); policy accept;\n"
            switch policy.forward {
            case .accept:
                out += "\t\taccept\n"
            case .drop:
                out += "\t\tct state established,related accept\n\t\tdrop\n"
            case .reject, .auto, .none:
                out += "\t\tct state established,related accept\n"
                out += "\t\tmeta l4proto tcp reject with tcp reset\n\t\treject with icmpx admin-prohibited\n"
            }
            out += "\t}\n"
        }
        out += "}\n"
        return out
    }

    /// Bogon lists with their set base names (`bogons`, `bogons-IFACE`), lists for the same interface joined.
    func bogonSets(_ policy: HostPolicy) -> [(String, AntiSpoof.Bogons)] {
        var out: [(String, AntiSpoof.Bogons)] = []
        for b in policy.antispoof.bogons {
            let name = b.interface.map { "bogons-\($0)" } ?? "bogons"
            if let i = out.firstIndex(where: { $0.0 == name }) {
                for n in b.networks where !out[i].1.networks.contains(n) { out[i].1.networks.append(n) }
            } else {
                out.append((name, b))
            }
        }
        return out
    }

    /// The input chain's rules, in order.
    public func inputRules(_ policy: HostPolicy) -> [String] {
        var rules: [String] = []
        if policy.loopback { rules.append("iif \"lo\" accept") }
        if policy.established { rules.append("ct state established,related accept") }
        if policy.dropInvalid { rules.append("ct state invalid drop") }
        if policy.icmp {
            // Neighbor Discovery comes before anti-spoofing: duplicate address detection uses the source `::`.
            rules.append(
                "icmpv6 type { nd-router-solicit, nd-router-advert, nd-neighbor-solicit, nd-neighbor-advert, nd-redirect } ip6 hoplimit 255 accept"
            )
        }
        if policy.antispoof.reversePath {
            rules.append("fib saddr . iif oif missing drop")
        }
        for (name, bogons) in bogonSets(policy) {
            let iface = bogons.interface.map { "iifname \"\($0)\"" } ?? "iifname != \"lo\""
            for family in [IPAddress.Family.v4, .v6]
            where !bogons.networks.filter({ $0.network.family == family }).isEmpty {
                let (ip, f) = family == .v4 ? ("ip", "v4") : ("ip6", "v6")
                rules.append("\(iface) \(ip) saddr @\(name)-\(f) drop")
            }
        }
        if let scan = policy.portscan {
            rules.append("ip saddr @portscan-block-v4 drop")
            rules.append("ip6 saddr @portscan-block-v6 drop")
            for family in [IPAddress.Family.v4, .v6] {
                let (ip, f) = family == .v4 ? ("ip", "v4") : ("ip6", "v6")
                var rule = "ct state new"
                for g in scan.exempt { rule += " \(ip) saddr != @\(Self.groupSet(g, family))" }
                rule +=
                    " add @portscan-meter-\(f) { \(ip) saddr limit rate over \(scan.rate) burst \(scan.burst) packets }"
                rule += " add @portscan-block-\(f) { \(ip) saddr } drop"
                rules.append(rule)
            }
        }
        if policy.icmp || policy.ping {
            var v4: [String] = []
            var v6: [String] = []
            if policy.icmp {
                v4 += ["destination-unreachable", "time-exceeded", "parameter-problem"]
                v6 += ["destination-unreachable", "packet-too-big", "time-exceeded", "parameter-problem"]
            }
            if policy.ping {
                v4.append("echo-request")
                v6.append("echo-request")
            }
            if policy.icmp { v6 += ["mld-listener-query", "mld-listener-report", "mld2-listener-report"] }
            rules.append("icmp type { \(v4.joined(separator: ", ")) } accept")
            rules.append("icmpv6 type { \(v6.joined(separator: ", ")) } accept")
        }
        for service in policy.services {
            rules += serviceRules(service, policy: policy)
        }
        if let log = policy.log {
            rules.append("limit rate \(log) log prefix \"\(policy.logPrefix)\" level info")
        }
        switch policy.defaultAction {
        case .reject:
            rules.append("meta l4proto tcp reject with tcp reset")
            rules.append("reject with icmpx port-unreachable")
        case .drop:
            rules.append("drop")
        }
        return rules
    }

    /// The accept rules of one service: one per protocol, and per source family when restricted.
    func serviceRules(_ service: PolicyService, policy: HostPolicy) -> [String] {
        var rules: [String] = []
        let comment = "comment \"\(service.name)\""
        for ports in service.ports {
            let match = "\(ports.proto.rawValue) dport \(Self.portsText(ports.ranges))"
            if service.sources.isEmpty {
                rules.append("\(match) accept \(comment)")
                continue
            }
            for family in [IPAddress.Family.v4, .v6] {
                let ip = family == .v4 ? "ip" : "ip6"
                var literal: [Subnet] = []
                for source in service.sources {
                    switch source {
                    case .group(let name):
                        guard let g = policy.group(name), !g.networks(family).isEmpty else { continue }
                        rules.append("\(ip) saddr @\(Self.groupSet(name, family)) \(match) accept \(comment)")
                    case .network(let n):
                        if n.network.family == family { literal.append(n) }
                    }
                }
                if !literal.isEmpty {
                    let set =
                        literal.count == 1
                        ? literal[0].description : "{ \(literal.map(\.description).joined(separator: ", ")) }"
                    rules.append("\(ip) saddr \(set) \(match) accept \(comment)")
                }
            }
        }
        return rules
    }

    /// `22` or `{ 22, 80, 1000-2000 }`.
    static func portsText(_ ranges: [PortRange]) -> String {
        ranges.count == 1 ? ranges[0].description : "{ \(ranges.map(\.description).joined(separator: ", ")) }"
    }

    /// nft's compound duration (`90s` → `1m30s`).
    static func duration(_ seconds: Int) -> String {
        var s = seconds
        var out = ""
        for (unit, size) in [("d", 86400), ("h", 3600), ("m", 60), ("s", 1)] where s >= size {
            out += "\(s / size)\(unit)"
            s %= size
        }
        return out.isEmpty ? "1s" : out
    }
}
