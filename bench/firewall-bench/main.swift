// Firewall benchmark: in-process libnftables transactions inside a network namespace (see bench/firewall.sh,
// which creates the namespace, runs this, compares with one `nft` process per ban, and deletes the namespace).
//
// Usage: portcullis-firewall-bench --netns NAME [--bans 10000] [--restore 20000] [--syntax text|json]
import Core
import Firewall
import Foundation
import Synchronization

struct Options {
    var netns = ""
    var bans = 10_000
    var restore = 20_000
    var syntax = FirewallConfiguration.Syntax.text
}

func parseOptions() -> Options {
    var o = Options()
    var args = CommandLine.arguments.dropFirst()
    while let a = args.popFirst() {
        switch a {
        case "--netns": o.netns = args.popFirst() ?? ""
        case "--bans": o.bans = Int(args.popFirst() ?? "") ?? o.bans
        case "--restore": o.restore = Int(args.popFirst() ?? "") ?? o.restore
        case "--syntax": o.syntax = FirewallConfiguration.Syntax(rawValue: args.popFirst() ?? "") ?? .text
        default:
            FileHandle.standardError.write(Data("unknown argument \(a)\n".utf8))
            exit(2)
        }
    }
    guard o.netns.hasPrefix("pcl-") else {
        FileHandle.standardError.write(Data("--netns pcl-… is required (never the host namespace)\n".utf8))
        exit(2)
    }
    return o
}

/// `n` addresses from `base` up, inside the benchmarking range 198.18.0.0/15 (RFC 2544) or 203.0.113.0/24.
func requests(_ n: Int, base: UInt32, timeout: Duration = .seconds(3600)) -> [BanRequest] {
    precondition(n <= 32_768, "at most 32768 addresses per block (each block is a quarter of 198.18.0.0/15)")
    return (0..<n).map {
        BanRequest(address: IPAddress(v4: base + UInt32($0)), jail: "sshd", duration: .timeout(timeout))
    }
}

func ms(_ d: Duration) -> String {
    String(format: "%.1f ms", Double(d.components.seconds) * 1000 + Double(d.components.attoseconds) / 1e15)
}

func shell(_ argv: [String]) {
    let p = Process()
    p.executableURL = URL(fileURLWithPath: "/usr/bin/env")
    p.arguments = argv
    try? p.run()
    p.waitUntilExit()
}

let options = parseOptions()
let clock = ContinuousClock()
let restoredAt = Mutex<(ContinuousClock.Instant, Int, Duration)?>(nil)
let firewall = try NFTablesFirewall(
    configuration: FirewallConfiguration(
        keepTableOnStop: true, syntax: options.syntax, networkNamespace: options.netns,
        healthCheckInterval: .milliseconds(250))
) { event in
    if case .restored(let n, let took) = event { restoredAt.withLock { $0 = (clock.now, n, took) } }
}
let sshd = JailFirewall(name: "sshd", ports: .ports([PortRange(22)]))
try await firewall.setUp(jails: [sshd])

print("syntax: \(options.syntax.rawValue), namespace: \(options.netns)")

// 1. N bans in one transaction (fresh addresses).
var start = clock.now
try await firewall.ban(requests(options.bans, base: 0xC612_0000))
let banTime = start.duration(to: clock.now)
print("ban \(options.bans) addresses, one transaction:       \(ms(banTime))")

// 1b. Another N fresh bans while the set already holds N.
start = clock.now
try await firewall.ban(requests(options.bans, base: 0xC612_8000))
print("ban \(options.bans) more (set holds \(options.bans)):           \(ms(start.duration(to: clock.now)))")
try await firewall.unban(requests(options.bans, base: 0xC612_8000).map { BanKey(address: $0.address, jail: $0.jail) })

// 1b'. Single bans while the set holds N (the daemon's common case): libnftables' cache refresh dominates.
do {
    let singles = requests(20, base: 0xCB00_7100)
    start = clock.now
    for r in singles { try await firewall.ban([r]) }
    let each = start.duration(to: clock.now) / singles.count
    print("single ban while the set holds \(options.bans) (mean of 20):  \(ms(each))")
    try await firewall.unban(singles.map { BanKey(address: $0.address, jail: $0.jail) })
}

// 1c. Only the command text (no kernel): the Swift share of a transaction.
start = clock.now
let text = firewall.ruleset.ban(requests(options.bans, base: 0xC613_0000)).rendered(options.syntax)
print(
    "render \(options.bans) bans as \(options.syntax.rawValue) (\(text.utf8.count) bytes):  \(ms(start.duration(to: clock.now)))"
)

// 2. Re-ban the same N (timeouts replaced: add + delete + add).
start = clock.now
try await firewall.ban(requests(options.bans, base: 0xC612_0000, timeout: .seconds(7200)))
print("re-ban \(options.bans) addresses (new timeouts):      \(ms(start.duration(to: clock.now)))")

// 3. Restore: the backend holds `restore` active bans; someone flushes the ruleset.
try await firewall.flush(jail: "sshd")
try await firewall.unban(requests(options.bans, base: 0xC612_0000).map { BanKey(address: $0.address, jail: $0.jail) })
try await firewall.ban(requests(options.restore, base: 0xC613_8000))
let active = try await firewall.activeBanCount()
let flushAt = clock.now
shell(["ip", "netns", "exec", options.netns, "nft", "flush", "ruleset"])
while restoredAt.withLock({ $0 }) == nil { try await Task.sleep(for: .milliseconds(5)) }
let (doneAt, restored, took) = restoredAt.withLock { $0! }
let listed = try await firewall.list(jail: "sshd").count
print("restore after `nft flush ruleset`: \(restored) bans (\(active) active), rebuild transaction \(ms(took)),")
print("  flush → table back (includes ≤250 ms detection):  \(ms(flushAt.duration(to: doneAt))); kernel holds \(listed)")

try await firewall.flush(jail: "sshd")
firewall.shutdown()
// Leave the table (keepTableOnStop) so bench/firewall.sh can time `nft` one process per ban against it.
