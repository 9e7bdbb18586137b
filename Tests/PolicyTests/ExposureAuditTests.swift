import Core
import Firewall
import Policy
import Testing

@Suite struct ExposureAuditTests {
    static func policy() throws -> HostPolicy {
        try loadPolicy(
            "[groups]\nadmin = 198.51.100.0/24\n[services]\nssh = ssh\nmunin = 4949 from admin\ndns = udp/53\nweb = http\n"
        )
    }

    static let sockets = [
        ListeningSocket(proto: .tcp, address: IPAddress("0.0.0.0")!, port: 22, pid: 10, process: "sshd"),
        ListeningSocket(proto: .tcp, address: IPAddress("::")!, port: 22, pid: 10, process: "sshd"),
        ListeningSocket(
            proto: .tcp, address: IPAddress("::")!, port: 4949, dualStack: true, pid: 11, process: "munin-node"),
        ListeningSocket(proto: .tcp, address: IPAddress("::")!, port: 8081, dualStack: true, pid: 12, process: "stray"),
        ListeningSocket(proto: .udp, address: IPAddress("0.0.0.0")!, port: 53, pid: 13, process: "named"),
        ListeningSocket(proto: .tcp, address: IPAddress("127.0.0.1")!, port: 5432, pid: 14, process: "postgres"),
    ]

    @Test func withoutPolicyTable() throws {
        let r = ExposureAudit.run(sockets: Self.sockets, intended: try Self.policy(), loaded: .absent)
        #expect(r.local.map(\.port) == [5432])
        let f = r.findings.map { "\($0.kind.rawValue) \($0.proto.rawValue)/\($0.port) \($0.family) \($0.process)" }
        #expect(
            f == [
                "allowed-not-listening tcp/80 both -",
                "wider-than-policy tcp/4949 ipv4 munin-node (11)",
                // The admin group has no IPv6 network: over IPv6 munin is not in the policy at all.
                "exposed-not-in-policy tcp/4949 ipv6 munin-node (11)",
                "exposed-not-in-policy tcp/8081 ipv4 stray (12)",
                "exposed-not-in-policy tcp/8081 ipv6 stray (12)",
                "family-mismatch udp/53 ipv6 -",
            ])
        #expect(r.entries.filter { $0.socket.port == 4949 }.map(\.family) == [.v4, .v6])
    }

    @Test func withPolicyLoaded() throws {
        let r = ExposureAudit.run(sockets: Self.sockets, intended: try Self.policy(), loaded: .same)
        let f = r.findings.map { "\($0.kind.rawValue) \($0.proto.rawValue)/\($0.port) \($0.family)" }
        #expect(f == ["allowed-not-listening tcp/80 both", "family-mismatch udp/53 ipv6"])
        let munin = r.entries.filter { $0.socket.port == 4949 }.map { "\($0.family) \($0.reachable)" }
        #expect(munin == ["v4 admin", "v6 closed"])
        #expect(r.entries.filter { $0.socket.port == 8081 }.allSatisfy { $0.reachable == .closed })
    }

    @Test func loadedPolicyWiderThanFiles() throws {
        let loaded = try loadPolicy("[services]\nssh = ssh\nmunin = 4949\n")
        let r = ExposureAudit.run(
            sockets: Array(Self.sockets.prefix(3)), intended: try Self.policy(), loaded: .differs(loaded))
        #expect(r.findings.contains { $0.kind == .widerThanPolicy && $0.port == 4949 && $0.family == "ipv4" })
        #expect(r.findings.contains { $0.kind == .exposedNotInPolicy && $0.port == 4949 && $0.family == "ipv6" })
    }
}
