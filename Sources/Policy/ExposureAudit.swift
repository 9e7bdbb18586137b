import Core
import Firewall

/// A socket waiting for connections or datagrams, as the kernel lists it (`ss -lntup`).
public struct ListeningSocket: Hashable, Sendable {
    /// `tcp` or `udp`.
    public var proto: TransportProtocol
    /// The bound address (`0.0.0.0` / `::` for every address).
    public var address: IPAddress
    /// The port.
    public var port: UInt16
    /// An IPv6 wildcard socket that also takes IPv4 (no IPv4 socket on the port, `bindv6only` off).
    public var dualStack: Bool
    /// The owning process, when it could be found.
    public var pid: Int32?
    /// Its name (`comm`).
    public var process: String?

    /// A socket.
    public init(
        proto: TransportProtocol, address: IPAddress, port: UInt16, dualStack: Bool = false, pid: Int32? = nil,
        process: String? = nil
    ) {
        self.proto = proto
        self.address = address
        self.port = port
        self.dualStack = dualStack
        self.pid = pid
        self.process = process
    }

    /// Bound to a loopback address: not reachable from outside.
    public var isLoopback: Bool {
        address.family == .v4 ? (address.low >> 24) == 127 : (address.high == 0 && address.low == 1)
    }

    /// `python3 (1234)` or `?`.
    public var owner: String {
        switch (process, pid) {
        case (let p?, let pid?): "\(p) (\(pid))"
        case (nil, let pid?): "pid \(pid)"
        default: "?"
        }
    }
}

/// What is loaded in the kernel's policy table, for the audit.
public enum LoadedPolicy: Sendable {
    /// No policy table: nothing of Portcullis filters (other tables are not evaluated).
    case absent
    /// The table is exactly what the policy files give.
    case same
    /// The table differs from the files; its policy as read back from the kernel.
    case differs(HostPolicy)
}

/// One finding of the audit.
public struct AuditFinding: Hashable, Sendable {
    /// The kinds of finding.
    public enum Kind: String, Hashable, Sendable {
        /// Reachable (listening and let through by the loaded ruleset) but the policy does not allow it.
        case exposedNotInPolicy = "exposed-not-in-policy"
        /// The policy allows it, but nothing listens on it in either family.
        case allowedNotListening = "allowed-not-listening"
        /// Reachable from more sources than the policy allows.
        case widerThanPolicy = "wider-than-policy"
        /// The policy allows it in a family where nothing listens, while the other family has a listener.
        case familyMismatch = "family-mismatch"
    }

    /// What kind.
    public var kind: Kind
    /// `tcp` or `udp`.
    public var proto: TransportProtocol
    /// The port (the first of a range).
    public var port: UInt16
    /// `ipv4`, `ipv6` or `both`.
    public var family: String
    /// The owning process (`name (pid)`), or `-`.
    public var process: String
    /// A sentence for the admin.
    public var message: String
}

/// One listening socket, per family it serves, with who can reach it.
public struct AuditEntry: Hashable, Sendable {
    /// The socket.
    public var socket: ListeningSocket
    /// The family evaluated (a dual-stack socket has an entry for each).
    public var family: IPAddress.Family
    /// Who the policy files allow.
    public var intended: Reach
    /// Who the loaded ruleset lets through.
    public var reachable: Reach
}

/// The audit: entries for every socket reachable from outside, and the findings.
public struct AuditReport: Sendable {
    /// The sockets, per family, sorted by protocol, port and family.
    public var entries: [AuditEntry]
    /// Sockets bound to loopback only (never reachable from outside).
    public var local: [ListeningSocket]
    /// The findings, sorted.
    public var findings: [AuditFinding]
    /// `absent`, `same` or `differs`.
    public var loaded: String
}

/// Compares the listening sockets with the policy files and with what the kernel has loaded.
///
/// ```swift
/// let report = ExposureAudit.run(sockets: sockets, intended: policy, loaded: .absent)
/// for f in report.findings { print(f.kind.rawValue, f.proto, f.port, f.message) }
/// ```
public enum ExposureAudit {
    /// Runs the audit.
    public static func run(sockets: [ListeningSocket], intended: HostPolicy, loaded: LoadedPolicy) -> AuditReport {
        var entries: [AuditEntry] = []
        var local: [ListeningSocket] = []
        for s in sockets where s.proto == .tcp || s.proto == .udp {
            if s.isLoopback {
                local.append(s)
                continue
            }
            var families: [IPAddress.Family] = [s.address.family]
            if s.dualStack && s.address.family == .v6 { families.append(.v4) }
            for f in families {
                let want = intended.reach(proto: s.proto, port: s.port, family: f)
                let have: Reach
                switch loaded {
                case .absent: have = .anywhere
                case .same: have = want
                case .differs(let k): have = k.reach(proto: s.proto, port: s.port, family: f)
                }
                let entry = AuditEntry(socket: s, family: f, intended: want, reachable: have)
                if !entries.contains(where: {
                    $0.socket.proto == s.proto && $0.socket.port == s.port && $0.family == f
                        && $0.socket.address == s.address
                }) {
                    entries.append(entry)
                }
            }
        }
        entries.sort { a, b in
            (a.socket.proto.rawValue, a.socket.port, a.family == .v4 ? 0 : 1, a.socket.address.description)
                < (b.socket.proto.rawValue, b.socket.port, b.family == .v4 ? 0 : 1, b.socket.address.description)
        }
        var findings: [AuditFinding] = []
        let policyName =
            intended.files.first.map { $0.split(separator: "/").last.map(String.init) ?? $0 } ?? "the policy"
        for e in entries {
            let fam = e.family == .v4 ? "ipv4" : "ipv6"
            let what =
                "\(e.socket.proto.rawValue)/\(e.socket.port) (\(fam == "ipv4" ? "IPv4" : "IPv6"), \(e.socket.owner) on \(e.socket.address))"
            switch (e.intended, e.reachable) {
            case (.closed, .closed): break
            case (.closed, _):
                findings.append(
                    AuditFinding(
                        kind: .exposedNotInPolicy, proto: e.socket.proto, port: e.socket.port, family: fam,
                        process: e.socket.owner,
                        message: "\(what) is reachable from \(e.reachable) but \(policyName) does not allow it"))
            case (.only(let allowed), .anywhere):
                findings.append(
                    AuditFinding(
                        kind: .widerThanPolicy, proto: e.socket.proto, port: e.socket.port, family: fam,
                        process: e.socket.owner,
                        message:
                            "\(what) is reachable from anywhere; \(policyName) allows only \(allowed.joined(separator: ", "))"
                    ))
            case (.only(let allowed), .only(let have)) where !have.allSatisfy(allowed.contains):
                findings.append(
                    AuditFinding(
                        kind: .widerThanPolicy, proto: e.socket.proto, port: e.socket.port, family: fam,
                        process: e.socket.owner,
                        message:
                            "\(what) is reachable from \(have.joined(separator: ", ")); \(policyName) allows only \(allowed.joined(separator: ", "))"
                    ))
            default: break
            }
        }
        // Allowed ports without a listener, per family.
        let open = entries.map { ($0.socket.proto, $0.socket.port, $0.family) }
        for service in intended.services {
            for ports in service.ports where ports.proto == .tcp || ports.proto == .udp {
                for range in ports.ranges {
                    func listens(_ f: IPAddress.Family) -> Bool {
                        open.contains { $0.0 == ports.proto && $0.1 >= range.lower && $0.1 <= range.upper && $0.2 == f }
                    }
                    let allowedIn = [IPAddress.Family.v4, .v6].filter {
                        intended.reach(proto: ports.proto, port: range.lower, family: $0).isOpen
                    }
                    let listening = [IPAddress.Family.v4, .v6].filter(listens)
                    let label = "\(ports.proto.rawValue)/\(range)"
                    if listening.isEmpty && !allowedIn.isEmpty {
                        findings.append(
                            AuditFinding(
                                kind: .allowedNotListening, proto: ports.proto, port: range.lower,
                                family: allowedIn.count == 2 ? "both" : (allowedIn[0] == .v4 ? "ipv4" : "ipv6"),
                                process: "-",
                                message: "\(label) (service '\(service.name)') is allowed but nothing listens on it"))
                        continue
                    }
                    for f in allowedIn where !listens(f) {
                        let fam = f == .v4 ? "ipv4" : "ipv6"
                        let other = f == .v4 ? "IPv6" : "IPv4"
                        findings.append(
                            AuditFinding(
                                kind: .familyMismatch, proto: ports.proto, port: range.lower, family: fam,
                                process: "-",
                                message:
                                    "\(label) (service '\(service.name)') is allowed over \(fam == "ipv4" ? "IPv4" : "IPv6") but listens only on \(other)"
                            ))
                    }
                }
            }
        }
        var seen = Set<String>()
        findings = findings.filter { seen.insert("\($0.kind)|\($0.proto)|\($0.port)|\($0.family)").inserted }
        findings.sort {
            ($0.proto.rawValue, $0.port, $0.family, $0.kind.rawValue) < (
                $1.proto.rawValue, $1.port, $1.family, $1.kind.rawValue
            )
        }
        let loadedName: String
        switch loaded {
        case .absent: loadedName = "absent"
        case .same: loadedName = "same"
        case .differs: loadedName = "differs"
        }
        return AuditReport(entries: entries, local: local, findings: findings, loaded: loadedName)
    }
}
