import Configuration
import Core
import Firewall

/// Who can open a new connection to a port under a policy.
public enum Reach: Hashable, Sendable, CustomStringConvertible {
    /// Nobody (the default action applies).
    case closed
    /// Only these sources (group names and networks).
    case only([String])
    /// Any source.
    case anywhere

    /// `closed`, `anywhere` or the comma-separated sources.
    public var description: String {
        switch self {
        case .closed: "closed"
        case .anywhere: "anywhere"
        case .only(let s): s.joined(separator: ",")
        }
    }

    /// True unless closed.
    public var isOpen: Bool { self != .closed }
}

extension HostPolicy {
    /// Whether a new connection from `source` to `port` arriving on a non-loopback interface is accepted, and
    /// by which service (nil when refused). Bogon lists for every interface apply; the port-scan guard is ignored.
    public func acceptingService(proto: TransportProtocol, port: UInt16, from source: IPAddress) -> String? {
        for list in antispoof.bogons where list.interface == nil {
            if list.networks.contains(where: { $0.contains(source) }) { return nil }
        }
        for service in services {
            guard service.ports.contains(where: { $0.proto == proto && $0.contains(port) }) else { continue }
            if service.sources.isEmpty { return service.name }
            for s in service.sources {
                switch s {
                case .network(let n): if n.contains(source) { return service.name }
                case .group(let g):
                    if group(g)?.networks.contains(where: { $0.contains(source) }) == true { return service.name }
                }
            }
        }
        return nil
    }

    /// Who can open a new connection to `port` of `family` (from outside the host).
    public func reach(proto: TransportProtocol, port: UInt16, family: IPAddress.Family) -> Reach {
        var sources: [String] = []
        for service in services where service.ports.contains(where: { $0.proto == proto && $0.contains(port) }) {
            if service.sources.isEmpty { return .anywhere }
            for s in service.sources {
                switch s {
                case .network(let n):
                    if n.network.family == family, !sources.contains(n.description) { sources.append(n.description) }
                case .group(let g):
                    if group(g)?.networks(family).isEmpty == false, !sources.contains(g) { sources.append(g) }
                }
            }
        }
        return sources.isEmpty ? .closed : .only(sources)
    }

    /// Refuses a policy that would cut the SSH session described by `SSH_CONNECTION`
    /// (`CLIENT_ADDR CLIENT_PORT SERVER_ADDR SERVER_PORT`): new connections from the client to the server's port
    /// must be accepted, and established ones kept.
    ///
    /// - Throws: ``ConfigError`` naming the policy file, the client and the port.
    public func checkSSHSession(_ sshConnection: String) throws(ConfigError) {
        let f = sshConnection.split(separator: " ")
        guard f.count == 4, let client = IPAddress(f[0]), let port = UInt16(f[3]) else { return }
        let at = services.first?.location ?? files.first.map { SourceLocation(file: $0, line: 0) }
        if !established {
            throw ConfigError(
                .badValue,
                "the policy does not keep established connections (established = no): it would cut your SSH session from \(client)",
                at: at, hint: "set established = yes, or pass --force")
        }
        if acceptingService(proto: .tcp, port: port, from: client) == nil {
            throw ConfigError(
                .badValue,
                "the policy allows no new SSH connection from \(client) to port \(port) (your session, SSH_CONNECTION): you could not log in again",
                at: at, hint: "add e.g. ssh = \(port) to [services], or pass --force")
        }
    }

    /// A one-line summary: services, groups, default action, guards.
    public var summary: String {
        var parts = ["\(services.count) services", "\(groups.count) groups", "default \(defaultAction.rawValue)"]
        if let p = portscan { parts.append("port-scan guard \(p.rate) burst \(p.burst), \(p.blockSeconds) s") }
        if antispoof.reversePath { parts.append("rpfilter") }
        let bogons = antispoof.bogons.reduce(0) { $0 + $1.networks.count }
        if bogons > 0 { parts.append("\(bogons) bogon networks") }
        parts.append("forward \(forward.rawValue)")
        return parts.joined(separator: ", ")
    }
}
