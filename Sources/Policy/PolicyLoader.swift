import Configuration
import Core
import Firewall

/// Reads `firewall.conf` (with `firewall.local`, `firewall.d/*.conf|*.local`) into a ``HostPolicy``.
///
/// Every mistake is an error naming the file and line: an unknown option or section, an unknown service name
/// (names are resolved from `/etc/services` here, at load), a malformed network, a group used but not defined.
///
/// ```ini
/// [firewall]
/// default = reject
/// [groups]
/// admin = 192.0.2.0/24, 2001:db8:1::/48
/// [services]
/// ssh = ssh
/// web = http, https
/// munin = 4949 from admin
/// dns = udp/53, tcp/53
/// ```
public enum PolicyLoader {
    /// Options of `[firewall]`.
    static let firewallOptions: Set<String> = [
        "default", "loopback", "established", "invalid", "icmp", "ping", "log", "logprefix", "forward",
    ]
    /// Options of `[portscan]`.
    static let portscanOptions: Set<String> = ["enabled", "rate", "burst", "bantime", "exempt"]
    /// Sections a policy may have.
    static let sections: Set<String> = ["firewall", "groups", "services", "antispoof", "portscan"]

    /// Reads `ROOT/firewall.*` from a configuration tree.
    ///
    /// - Throws: ``ConfigError`` with file:line.
    public static func load(
        tree: ConfigTree, services: PortResolver, base: String = "firewall"
    ) throws(ConfigError)
        -> HostPolicy
    {
        try load(tree.loadSections(base), services: services)
    }

    /// Builds the policy from already read sections.
    public static func load(
        _ config: SectionedConfiguration, services: PortResolver
    ) throws(ConfigError)
        -> HostPolicy
    {
        var policy = HostPolicy()
        policy.files = config.files
        for section in config.sections where !sections.contains(section.name.lowercased()) {
            throw ConfigError(
                .badValue, "unknown section [\(section.name)] in the firewall policy",
                at: section.options.first?.value.location
                    ?? config.files.first.map { SourceLocation(file: $0, line: 0) },
                hint: "use [firewall], [groups], [services], [antispoof] or [portscan]")
        }
        if let s = config.section("firewall") { try readFirewall(s, into: &policy) }
        if let s = config.section("groups") {
            for (name, value) in s.options where !value.value.trimmingSpaces().isEmpty {
                try checkName(name, what: "group", at: value.location)
                let networks = try parseNetworks(value.value, at: value.location, what: "group '\(name)'")
                policy.groups.append(AddressGroup(name: name, networks: networks, location: value.location))
            }
        }
        if let s = config.section("services") {
            for (name, value) in s.options where !value.value.trimmingSpaces().isEmpty {
                try checkName(name, what: "service", at: value.location)
                policy.services.append(try parseService(name, value, services: services, groups: policy.groups))
            }
        }
        if let s = config.section("antispoof") { try readAntispoof(s, into: &policy) }
        if let s = config.section("portscan") { try readPortscan(s, into: &policy) }
        return policy
    }

    // MARK: Sections

    static func readFirewall(_ s: SectionedConfiguration.Section, into policy: inout HostPolicy) throws(ConfigError) {
        for (name, value) in s.options {
            let v = value.value.trimmingSpaces()
            let at = value.location
            switch name {
            case "default":
                guard let a = HostPolicy.DefaultAction(rawValue: v.lowercased()) else {
                    throw ConfigError(.badValue, "default must be reject or drop, not '\(v)'", at: at)
                }
                policy.defaultAction = a
            case "loopback": policy.loopback = try bool(v, name, at)
            case "established": policy.established = try bool(v, name, at)
            case "icmp": policy.icmp = try bool(v, name, at)
            case "ping": policy.ping = try bool(v, name, at)
            case "invalid":
                switch v.lowercased() {
                case "drop": policy.dropInvalid = true
                case "accept", "ignore", "no": policy.dropInvalid = false
                default: throw ConfigError(.badValue, "invalid must be drop or ignore, not '\(v)'", at: at)
                }
            case "log":
                if ["no", "false", "off", "0", "none"].contains(v.lowercased()) {
                    policy.log = nil
                } else if let r = Rate(parsing: v) {
                    policy.log = r
                } else {
                    throw ConfigError(
                        .badValue, "log must be a rate such as 5/minute, or no, not '\(v)'", at: at)
                }
            case "logprefix":
                var p = v
                if p.count >= 2, p.hasPrefix("\""), p.hasSuffix("\"") { p = String(p.dropFirst().dropLast()) }
                guard p.utf8.count <= 127, !p.contains("\""), !p.contains("\\"), !p.contains("\n") else {
                    throw ConfigError(
                        .badValue, "logprefix must be at most 127 bytes without quotes or backslashes", at: at)
                }
                policy.logPrefix = p
            case "forward":
                guard let f = HostPolicy.Forward(rawValue: v.lowercased()) else {
                    throw ConfigError(
                        .badValue, "forward must be auto, none, reject, drop or accept, not '\(v)'", at: at)
                }
                policy.forward = f
                policy.forwardLocation = at
            default:
                throw ConfigError(
                    .badValue, "unknown option '\(name)' in [firewall]", at: at,
                    hint: "known: \(firewallOptions.sorted().joined(separator: ", "))")
            }
        }
    }

    static func readAntispoof(_ s: SectionedConfiguration.Section, into policy: inout HostPolicy) throws(ConfigError) {
        for (name, value) in s.options {
            let v = value.value.trimmingSpaces()
            let at = value.location
            if name == "rpfilter" {
                policy.antispoof.reversePath = try bool(v, name, at)
            } else if name == "bogons" || name.hasPrefix("bogons.") {
                let interface = name == "bogons" ? nil : String(name.dropFirst("bogons.".count))
                if let interface {
                    guard !interface.isEmpty, interface.utf8.count <= 15,
                        interface.allSatisfy({ $0.isLetter || $0.isNumber || "._-@".contains($0) })
                    else {
                        throw ConfigError(.badValue, "'\(interface)' is not an interface name", at: at)
                    }
                }
                if v.isEmpty { continue }
                let networks = try parseNetworks(v, at: at, what: "bogon list")
                policy.antispoof.bogons.append(.init(interface: interface, networks: networks))
            } else {
                throw ConfigError(
                    .badValue, "unknown option '\(name)' in [antispoof]", at: at,
                    hint: "known: rpfilter, bogons, bogons.INTERFACE")
            }
        }
    }

    static func readPortscan(_ s: SectionedConfiguration.Section, into policy: inout HostPolicy) throws(ConfigError) {
        var guardSettings = PortscanGuard()
        var enabled = true
        for (name, value) in s.options {
            let v = value.value.trimmingSpaces()
            let at = value.location
            switch name {
            case "enabled": enabled = try bool(v, name, at)
            case "rate":
                guard let r = Rate(parsing: v) else {
                    throw ConfigError(.badValue, "rate must look like 10/second, not '\(v)'", at: at)
                }
                guardSettings.rate = r
            case "burst":
                guard let n = Int(v), n >= 1, n <= 100_000 else {
                    throw ConfigError(.badValue, "burst must be a whole number from 1 to 100000, not '\(v)'", at: at)
                }
                guardSettings.burst = n
            case "bantime":
                guard let span = try? TimeSpan.parse(v), span.seconds >= 1, span.seconds <= 86400 * 365 else {
                    throw ConfigError(
                        .badValue, "bantime must be a time from 1s to 365d such as 60, 10m or 1h, not '\(v)'", at: at)
                }
                guardSettings.blockSeconds = Int(span.seconds.rounded(.up))
            case "exempt":
                guardSettings.exempt = v.split(whereSeparator: { $0 == "," || $0 == " " }).map(String.init)
                for g in guardSettings.exempt where policy.group(g) == nil {
                    throw undefinedGroup(g, at: at, groups: policy.groups)
                }
            default:
                throw ConfigError(
                    .badValue, "unknown option '\(name)' in [portscan]", at: at,
                    hint: "known: \(portscanOptions.sorted().joined(separator: ", "))")
            }
        }
        policy.portscan = enabled ? guardSettings : nil
    }

    // MARK: Values

    /// `ITEM[, ITEM…] [from SOURCE[, SOURCE…]]`, ITEM = `[tcp/|udp/]PORT|NAME|LOW-HIGH` or `PORT/udp`.
    static func parseService(
        _ name: String, _ value: ConfigValue, services: PortResolver, groups: [AddressGroup]
    ) throws(ConfigError) -> PolicyService {
        let at = value.location
        let text = value.value.replacingNewlines()
        var portText = text
        var sourceText: String? = nil
        let words = text.split(separator: " ", omittingEmptySubsequences: true)
        if let fromIndex = words.firstIndex(where: { $0.lowercased() == "from" }) {
            portText = words[..<fromIndex].joined(separator: " ")
            sourceText = words[(fromIndex + 1)...].joined(separator: " ")
        }
        var perProto: [TransportProtocol: [PortRange]] = [:]
        let items = portText.split(whereSeparator: { $0 == "," || $0 == " " || $0 == "\t" })
        guard !items.isEmpty else {
            throw ConfigError(
                .badValue, "service '\(name)' has no port", at: at, hint: "write e.g. \(name) = tcp/443 or https")
        }
        for item in items {
            var proto = TransportProtocol.tcp
            var port = String(item)
            let slash = port.split(separator: "/", omittingEmptySubsequences: false)
            if slash.count == 2 {
                if let p = TransportProtocol(rawValue: slash[0].lowercased()) {
                    proto = p
                    port = String(slash[1])
                } else if let p = TransportProtocol(rawValue: slash[1].lowercased()) {
                    proto = p
                    port = String(slash[0])
                } else {
                    throw ConfigError(
                        .badValue, "service '\(name)': unknown protocol in '\(item)'", at: at,
                        hint: "write tcp/PORT, udp/PORT, sctp/PORT or dccp/PORT")
                }
            } else if slash.count > 2 {
                throw ConfigError(.badValue, "service '\(name)': malformed port '\(item)'", at: at)
            }
            let spec: PortSpec
            do {
                spec = try services.resolve(port, jail: name)
            } catch {
                let detail =
                    error.code == .unknownPort
                    ? "unknown service name '\(port)' (not in \(services.source))"
                    : "malformed port '\(port)'"
                throw ConfigError(
                    .badValue, "service '\(name)': \(detail)", at: at,
                    hint: "use a number, a range such as 6000-6010, or a name from \(services.source)")
            }
            guard case .ports(let ranges) = spec else {
                throw ConfigError(
                    .badValue, "service '\(name)': '\(port)' would open every port", at: at,
                    hint: "list the ports, e.g. 1-65535 if you mean it")
            }
            perProto[proto, default: []] += ranges
        }
        let ports = perProto.keys.sorted().map { ServicePorts($0, PortResolver.mergedRanges(perProto[$0]!)) }
        var sources: [SourceRef] = []
        if let sourceText {
            let list = sourceText.split(whereSeparator: { $0 == "," || $0 == " " })
            guard !list.isEmpty else {
                throw ConfigError(
                    .badValue, "service '\(name)': 'from' without a group or network", at: at,
                    hint: "write from admin or from 192.0.2.0/24")
            }
            for item in list {
                let s = String(item)
                if ["any", "anywhere", "all"].contains(s.lowercased()) {
                    sources = []
                    break
                }
                if s.first?.isNumber == true || s.contains(":") {
                    guard let n = Subnet(s) else {
                        throw ConfigError(
                            .badValue, "service '\(name)': '\(s)' is not an address or network", at: at,
                            hint: "write e.g. 192.0.2.0/24 or 2001:db8::/32")
                    }
                    sources.append(.network(n))
                } else {
                    guard groups.contains(where: { $0.name == s }) else {
                        throw undefinedGroup(s, at: at, groups: groups)
                    }
                    sources.append(.group(s))
                }
            }
        }
        return PolicyService(name: name, ports: ports, sources: sources, location: at)
    }

    static func parseNetworks(_ text: String, at: SourceLocation?, what: String) throws(ConfigError) -> [Subnet] {
        var out: [Subnet] = []
        for item in text.split(whereSeparator: { $0 == "," || $0 == " " || $0 == "\t" || $0 == "\n" }) {
            guard let n = Subnet(item), item.split(separator: "/").count <= 2 else {
                throw ConfigError(
                    .badValue, "\(what): '\(item)' is not an address or network", at: at,
                    hint: "write e.g. 192.0.2.0/24 or 2001:db8::/32")
            }
            if !out.contains(n) { out.append(n) }
        }
        if out.isEmpty {
            throw ConfigError(.badValue, "\(what) is empty", at: at, hint: "list at least one network")
        }
        return out
    }

    static func undefinedGroup(_ name: String, at: SourceLocation?, groups: [AddressGroup]) -> ConfigError {
        let known = groups.map(\.name)
        return ConfigError(
            .badValue, "address group '\(name)' is used but not defined", at: at,
            hint: known.isEmpty
                ? "define it in [groups], e.g. \(name) = 192.0.2.0/24"
                : "define it in [groups] (defined: \(known.joined(separator: ", ")))")
    }

    static func checkName(_ name: String, what: String, at: SourceLocation?) throws(ConfigError) {
        let ok =
            !name.isEmpty && name.utf8.count <= 64
            && name.allSatisfy { $0.isASCII && ($0.isLetter || $0.isNumber || $0 == "_" || $0 == "-") }
            && !["any", "anywhere", "all", "from"].contains(name)
        guard ok else {
            throw ConfigError(
                .badValue, "'\(name)' cannot name a \(what)", at: at,
                hint: "use letters, digits, '_' and '-' (not any, all or from)")
        }
    }

    static func bool(_ v: String, _ name: String, _ at: SourceLocation?) throws(ConfigError) -> Bool {
        switch v.lowercased() {
        case "yes", "true", "on", "1", "accept": return true
        case "no", "false", "off", "0": return false
        default: throw ConfigError(.badValue, "\(name) must be yes or no, not '\(v)'", at: at)
        }
    }
}

extension String {
    fileprivate func replacingNewlines() -> String {
        String(map { $0 == "\n" || $0 == "\t" ? " " : $0 })
    }
}

extension PortResolver {
    /// Sorted ranges with overlaps and neighbours joined.
    public static func mergedRanges(_ ranges: [PortRange]) -> [PortRange] {
        var out: [PortRange] = []
        for r in ranges.sorted() {
            if let last = out.last, UInt32(r.lower) <= UInt32(last.upper) + 1 {
                out[out.count - 1] = PortRange(last.lower, max(last.upper, r.upper))
            } else {
                out.append(r)
            }
        }
        return out
    }
}
