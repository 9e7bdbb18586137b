import Configuration
import Core
import Firewall

/// The result of an import: the policy, what was carried over, and every rule that was not, with its reason.
public struct PolicyImport: Sendable {
    /// A rule that could not be carried over.
    public struct Unmapped: Hashable, Sendable {
        /// Line in the input (1-based; for JSON the rule's index).
        public var line: Int
        /// The rule as written.
        public var text: String
        /// Why it was not carried over.
        public var reason: String
    }

    /// The equivalent policy.
    public var policy = HostPolicy()
    /// How many rules (and chain policies) were carried over.
    public var mapped = 0
    /// Every rule not carried over.
    public var unmapped: [Unmapped] = []
    /// Remarks for the admin (approximations, the IPv6 intent).
    public var notes: [String] = []
    /// Whether the input had IPv4 and IPv6 rules.
    public var sawV4 = false
    public var sawV6 = false

    /// The accumulator used by both importers.
    struct Builder {
        var result = PolicyImport()
        /// (proto, ranges) → sources (empty = anywhere); order of first appearance.
        var accepts:
            [(
                key: String, proto: TransportProtocol, ranges: [PortRange], sources: [Subnet], open: Bool,
                comment: String?
            )] = []
        var sawICMPAccept = false
        var sawPing = false
        var defaultSet = false
        var logSeen = false

        init() {
            result.policy.portscan = nil
            result.policy.antispoof.reversePath = false
            result.policy.log = nil
            result.policy.icmp = false
            result.policy.ping = false
            result.policy.loopback = false
            result.policy.established = false
            result.policy.dropInvalid = false
            result.policy.forward = .none
        }

        mutating func accept(proto: TransportProtocol, ranges: [PortRange], sources: [Subnet], comment: String?) {
            let key = "\(proto.rawValue) \(ranges.map(\.description).joined(separator: ","))"
            if let i = accepts.firstIndex(where: { $0.key == key }) {
                if sources.isEmpty {
                    accepts[i].open = true
                } else {
                    for s in sources where !accepts[i].sources.contains(s) { accepts[i].sources.append(s) }
                }
                if accepts[i].comment == nil { accepts[i].comment = comment }
            } else {
                accepts.append((key, proto, ranges, sources, sources.isEmpty, comment))
            }
        }

        mutating func bogon(_ networks: [Subnet], interface: String?) {
            if let i = result.policy.antispoof.bogons.firstIndex(where: { $0.interface == interface }) {
                for n in networks where !result.policy.antispoof.bogons[i].networks.contains(n) {
                    result.policy.antispoof.bogons[i].networks.append(n)
                }
            } else {
                result.policy.antispoof.bogons.append(.init(interface: interface, networks: networks))
            }
        }

        mutating func unmapped(_ line: Int, _ text: String, _ reason: String) {
            result.unmapped.append(.init(line: line, text: text, reason: reason))
        }

        /// Services and groups from the accepts; the IPv6 intent when only IPv4 was seen.
        mutating func finish(serviceNames: [UInt16: String]) -> PolicyImport {
            var groupCount = 0
            var usedNames: Set<String> = []
            func uniqueName(_ base: String) -> String {
                var clean = String(
                    base.lowercased().map { $0.isLetter || $0.isNumber || $0 == "_" || $0 == "-" ? $0 : "-" })
                while clean.hasPrefix("-") { clean.removeFirst() }
                if clean.isEmpty || ["any", "anywhere", "all", "from"].contains(clean) { clean = "service" }
                clean = String(clean.prefix(40))
                var name = clean
                var n = 2
                while usedNames.contains(name) {
                    name = "\(clean)-\(n)"
                    n += 1
                }
                usedNames.insert(name)
                return name
            }
            for a in accepts {
                let base: String
                if let c = a.comment, !c.isEmpty {
                    base = c
                } else if a.ranges.allSatisfy({ $0.lower == $0.upper && serviceNames[$0.lower] != nil }) {
                    let n = a.ranges.prefix(3).map { serviceNames[$0.lower]! }.joined(separator: "-")
                    base = a.proto == .tcp ? n : "\(n)-\(a.proto.rawValue)"
                } else {
                    base = "\(a.proto.rawValue)-\(a.ranges[0].lower)"
                }
                var sources: [SourceRef] = []
                if !a.open {
                    if let g = result.policy.groups.first(where: { Set($0.networks) == Set(a.sources) }) {
                        sources = [.group(g.name)]
                    } else {
                        groupCount += 1
                        let g = AddressGroup(name: "sources\(groupCount)", networks: a.sources)
                        result.policy.groups.append(g)
                        sources = [.group(g.name)]
                    }
                }
                result.policy.services.append(
                    PolicyService(name: uniqueName(base), ports: [ServicePorts(a.proto, a.ranges)], sources: sources))
            }
            result.policy.icmp = sawICMPAccept || result.policy.icmp
            result.policy.ping = sawPing
            if !sawICMPAccept {
                result.policy.icmp = true
                result.notes.append(
                    "no ICMP rule was found; the policy accepts the ICMP a host needs anyway (errors for path MTU, "
                        + "IPv6 Neighbor Discovery), without ping")
            }
            if result.sawV4 && !result.sawV6 {
                result.notes.append(
                    "the input has IPv4 rules only: the policy applies the same services, defaults and guards to IPv6 "
                        + "(an unfiltered family is the classic hole)")
                let v4Bogons = result.policy.antispoof.bogons.flatMap(\.networks)
                var extra: [Subnet] = []
                if v4Bogons.contains(where: { $0.description.hasPrefix("127.") }) { extra.append(Subnet("::1/128")!) }
                if v4Bogons.contains(where: {
                    ["10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16"].contains($0.description)
                }) {
                    extra.append(Subnet("fc00::/7")!)
                }
                if !extra.isEmpty,
                    let i = result.policy.antispoof.bogons.firstIndex(where: { $0.interface == nil })
                        ?? result.policy.antispoof.bogons.indices.first
                {
                    for n in extra where !result.policy.antispoof.bogons[i].networks.contains(n) {
                        result.policy.antispoof.bogons[i].networks.append(n)
                    }
                    result.notes.append(
                        "IPv6 equivalents of the IPv4 bogons were added: \(extra.map(\.description).joined(separator: ", "))"
                    )
                }
                for g in result.policy.groups where g.networks(.v6).isEmpty {
                    result.notes.append(
                        "group '\(g.name)' has IPv4 networks only: its services stay closed over IPv6 until you add its IPv6 networks"
                    )
                }
            }
            return result
        }
    }
}

extension PolicyImport {
    /// Port → first TCP service name of a services file's text (`ssh 22/tcp`), for naming imported services.
    public static func serviceNames(servicesText: String) -> [UInt16: String] {
        var names: [UInt16: String] = [:]
        for raw in servicesText.split(separator: "\n") {
            let line = raw.split(separator: "#", maxSplits: 1, omittingEmptySubsequences: false).first ?? ""
            let f = line.split(whereSeparator: { $0 == " " || $0 == "\t" })
            guard f.count >= 2 else { continue }
            let pp = f[1].split(separator: "/")
            guard pp.count == 2, pp[1] == "tcp", let port = UInt16(pp[0]), names[port] == nil else { continue }
            names[port] = String(f[0])
        }
        return names
    }

    /// Reads either format: `nft -j list ruleset` JSON (input starting with `{`) or iptables-save text.
    public static func read(_ text: String, serviceNames: [UInt16: String] = [:]) -> PolicyImport {
        let start = text.first { !$0.isWhitespace }
        if start == "{" { return NFTJSONImport.read(text, serviceNames: serviceNames) }
        return IptablesImport.read(text, serviceNames: serviceNames)
    }
}
