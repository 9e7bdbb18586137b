import Control
import Synchronization

/// A handler double for ControlServer's own tests (framing, transports, limits, permissions): it answers a small
/// in-memory set of jails in fail2ban-server's reply shapes. It proves nothing about fail2ban compatibility; that is
/// Fail2banClientTests, which runs the real fail2ban-client against fail2ban-server and the real Portcullis daemon.
final class FakeJails: ControlHandler {
    struct Jail {
        var name: String
        var maxRetry = 5
        var findTime = 600
        var banTime = 3600
        var ignoreIP: [String] = ["127.0.0.0/8", "::1"]
        var logPaths: [String]
        var banned: [String] = []
        var totalBanned = 0
    }

    private let state: Mutex<[Jail]>
    /// Every command received, in order.
    let received = Mutex<[[String]]>([])

    init(_ jails: [Jail]) { state = Mutex(jails) }

    /// Two jails, sshd and web (maxretry 3, permanent bans, two log files).
    static func reference(logDir: String) -> FakeJails {
        FakeJails([
            Jail(name: "sshd", logPaths: ["\(logDir)/auth.log"]),
            Jail(name: "web", maxRetry: 3, banTime: -1, logPaths: ["\(logDir)/auth.log", "\(logDir)/other.log"]),
        ])
    }

    func handle(_ command: [String]) async -> ControlResponse {
        received.withLock { $0.append(command) }
        return state.withLock { jails in Self.run(command, &jails) }
    }

    private static func invalid() -> ControlResponse {
        .failure(ControlError(.invalidCommand, "Invalid command (no get action or not yet implemented)"))
    }

    private static func run(_ c: [String], _ jails: inout [Jail]) -> ControlResponse {
        func jailIndex(_ name: String) -> Int? { jails.firstIndex { $0.name == name } }
        switch c[0] {
        case "ping": return .success("pong")
        case "version": return .success("1.0.2")
        case "stop": return .success(.null)
        case "reload": return .success("OK")
        case "status":
            if c.count == 1 {
                return .success([
                    .tuple(["Number of jail", .int(jails.count)]),
                    .tuple(["Jail list", .string(jails.map(\.name).joined(separator: ", "))]),
                ])
            }
            guard let j = jailIndex(c[1]) else { return .failure(.unknownJail(c[1])) }
            let jail = jails[j]
            return .success([
                .tuple([
                    "Filter",
                    [
                        .tuple(["Currently failed", 0]), .tuple(["Total failed", 0]),
                        .tuple(["File list", .list(jail.logPaths.map { .string($0) })]),
                    ],
                ]),
                .tuple([
                    "Actions",
                    [
                        .tuple(["Currently banned", .int(jail.banned.count)]),
                        .tuple(["Total banned", .int(jail.totalBanned)]),
                        .tuple(["Banned IP list", .list(jail.banned.map { .string($0) })]),
                    ],
                ]),
            ])
        case "banned":
            if c.count == 1 {
                return .success(
                    .list(
                        jails.map { .dict([ControlValue.Pair(.string($0.name), .list($0.banned.map { .string($0) }))]) }
                    ))
            }
            return .success(
                .list(
                    c.dropFirst().map { ip in .list(jails.filter { $0.banned.contains(ip) }.map { .string($0.name) }) })
            )
        case "unban":
            guard c.count > 1 else { return .failure(ControlError(.incompleteCommand, "list index out of range")) }
            var count = 0
            if c[1] == "--all" {
                for j in jails.indices {
                    count += jails[j].banned.count
                    jails[j].banned = []
                }
                return .success(.int(count))
            }
            for ip in c.dropFirst() {
                for j in jails.indices where jails[j].banned.contains(ip) {
                    jails[j].banned.removeAll { $0 == ip }
                    count += 1
                }
            }
            return .success(.int(count))
        case "set":
            guard c.count >= 3 else { return .failure(ControlError(.incompleteCommand, "list index out of range")) }
            guard let j = jailIndex(c[1]) else { return .failure(.unknownJail(c[1])) }
            switch c[2] {
            case "banip":
                var count = 0
                for ip in c.dropFirst(3) where !jails[j].banned.contains(ip) {
                    jails[j].banned.append(ip)
                    jails[j].totalBanned += 1
                    count += 1
                }
                return .success(.int(count))
            case "unbanip":
                var count = 0
                for ip in c.dropFirst(3) where jails[j].banned.contains(ip) {
                    jails[j].banned.removeAll { $0 == ip }
                    count += 1
                }
                return .success(.int(count))
            case "maxretry":
                guard c.count > 3, let v = Int(c[3]) else {
                    return .failure(
                        ControlError(
                            .invalidArgument, "invalid literal for int() with base 10: '\(c.count > 3 ? c[3] : "")'"))
                }
                jails[j].maxRetry = v
                return .success(.int(v))
            default: return invalid()
            }
        case "get":
            guard c.count >= 3 else { return .failure(ControlError(.incompleteCommand, "list index out of range")) }
            guard let j = jailIndex(c[1]) else { return .failure(.unknownJail(c[1])) }
            let jail = jails[j]
            switch c[2] {
            case "maxretry": return .success(.int(jail.maxRetry))
            case "findtime": return .success(.int(jail.findTime))
            case "bantime": return .success(.int(jail.banTime))
            case "ignoreip": return .success(.list(jail.ignoreIP.map { .string($0) }))
            case "logpath": return .success(.list(jail.logPaths.map { .string($0) }))
            case "banip": return .success(.list(jail.banned.map { .string($0) }))
            case "actions": return .success([])
            case "ignoreself": return .success(true)
            case "usedns": return .success("warn")
            default: return invalid()
            }
        default:
            return invalid()
        }
    }
}
