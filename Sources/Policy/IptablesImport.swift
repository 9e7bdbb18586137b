import Core
import Firewall

/// Reads `iptables-save` / `ip6tables-save` output (one or both, concatenated) into a policy.
///
/// Carried over from the `filter` table's INPUT chain (names in any case; user chains it jumps to without
/// conditions are read in place, and a conditional jump to a chain that only logs and drops counts as a drop):
/// `-i lo -j ACCEPT`, `--ctstate`/`--state ESTABLISHED,RELATED`, `INVALID -j DROP`, ICMP/ICMPv6 accepts, `-s NET -j DROP`
/// (bogons, per `-i` interface), `-p tcp|udp --dport`/`-m multiport --dports … -j ACCEPT` with optional `-s`,
/// `-m recent --update --seconds S --hitcount N` and `-m hashlimit --hashlimit-above R` drops (the port-scan guard),
/// `-m limit … -j LOG` (logging), the final `-j REJECT|DROP` or chain policy (the default), the FORWARD policy.
/// Everything else is listed in ``PolicyImport/unmapped`` with the reason.
///
/// ```swift
/// let result = IptablesImport.read(dumpText, serviceNames: [22: "ssh"])
/// print(PolicyWriter.text(result))
/// ```
public enum IptablesImport {
    /// One parsed `-A` rule.
    struct Rule {
        var line: Int
        var text: String
        var chain: String
        var table: String
        var family: IPAddress.Family?
        var proto: String?
        var sources: [Subnet] = []
        var destinations: [String] = []
        var inInterface: String?
        var outInterface: String?
        var dports: [PortRange] = []
        var sportSeen = false
        var states: Set<String> = []
        var icmpType: String?
        var comment: String?
        var limit: Rate?
        var limitBurst: Int?
        var recentUpdate = false
        var recentSet = false
        var recentSeconds: Int?
        var recentHits: Int?
        var hashAbove: Rate?
        var hashBurst: Int?
        var target: String?
        var rejectWith: String?
        var logPrefix: String?
        var problems: [String] = []
        var modules: [String] = []
        var negated = false
        var syn = false
    }

    /// Modules whose options are understood.
    static let knownModules: Set<String> = [
        "tcp", "udp", "multiport", "conntrack", "state", "icmp", "icmp6", "icmpv6", "comment", "limit", "recent",
        "hashlimit",
    ]

    /// Reads a dump. `serviceNames` names ports in the written policy (from /etc/services).
    public static func read(_ text: String, serviceNames: [UInt16: String] = [:]) -> PolicyImport {
        var b = PolicyImport.Builder()
        var table = ""
        var blockRules: [Rule] = []
        var policies: [(chain: String, policy: String, line: Int, text: String, family: IPAddress.Family?)] = []
        var allRules: [Rule] = []
        var lineNumber = 0
        var blockStart = 0
        func closeBlock() {
            // The block's family: from its addresses and ICMP flavour; unknown stays nil (both).
            var fam: IPAddress.Family? = nil
            for r in blockRules {
                if let f = r.family {
                    fam = f
                    break
                }
            }
            for i in blockRules.indices where blockRules[i].family == nil { blockRules[i].family = fam }
            for i in policies.indices where policies[i].line >= blockStart && policies[i].family == nil {
                policies[i].family = fam
            }
            allRules += blockRules
            blockRules = []
        }
        for raw in text.split(separator: "\n", omittingEmptySubsequences: false) {
            lineNumber += 1
            let line = raw.trimmingSpaces()
            if line.isEmpty || line.hasPrefix("#") { continue }
            if line.hasPrefix("*") {
                closeBlock()
                table = String(line.dropFirst()).lowercased()
                blockStart = lineNumber
                continue
            }
            if line == "COMMIT" {
                closeBlock()
                continue
            }
            if line.hasPrefix(":") {
                let f = line.dropFirst().split(separator: " ")
                if f.count >= 2, table == "filter" {
                    policies.append((String(f[0]), String(f[1]).uppercased(), lineNumber, line, nil))
                }
                continue
            }
            if line.hasPrefix("-A ") || line.hasPrefix("--append ") {
                var rule = parseRule(line, line: lineNumber, table: table)
                if table.isEmpty { rule.problems.append("rule outside any *table block") }
                blockRules.append(rule)
                continue
            }
            b.unmapped(lineNumber, line, "not an iptables-save line (expected *table, :CHAIN, -A or COMMIT)")
        }
        closeBlock()
        for r in allRules {
            if r.family == .v4 || r.family == nil { b.result.sawV4 = true }
            if r.family == .v6 { b.result.sawV6 = true }
        }
        if allRules.isEmpty && !policies.isEmpty { b.result.sawV4 = true }

        // Chains of the filter table by lower-cased name.
        var chains: [String: [Rule]] = [:]
        for r in allRules where r.table == "filter" { chains[r.chain.lowercased(), default: []].append(r) }
        let builtin: Set<String> = ["input", "forward", "output"]
        var consumed = Set<Int>()

        // INPUT, with user chains inlined.
        var trailingVerdicts: [String] = []
        func walk(_ chain: String, depth: Int) {
            for r in chains[chain] ?? [] {
                consumed.insert(r.line)
                if let t = r.target?.lowercased(), chains[t] != nil, !builtin.contains(t) {
                    if isUnconditional(r) {
                        if depth < 8 {
                            walk(t, depth: depth + 1)
                        } else {
                            b.unmapped(r.line, r.text, "user chains nest too deeply")
                        }
                        continue
                    }
                    // A conditional jump to a chain that only logs and drops is a drop with these conditions.
                    let body = chains[t] ?? []
                    let verdicts = body.map { $0.target?.uppercased() ?? "" }
                    if !body.isEmpty, body.allSatisfy({ isUnconditional($0) }),
                        verdicts.allSatisfy({ $0 == "LOG" || $0 == "DROP" || $0 == "REJECT" }),
                        verdicts.last == "DROP" || verdicts.last == "REJECT"
                    {
                        for x in body { consumed.insert(x.line) }
                        var asDrop = r
                        asDrop.target = verdicts.last
                        classify(asDrop, &b, trailing: &trailingVerdicts)
                        continue
                    }
                    b.unmapped(
                        r.line, r.text, "jump to chain \(r.target!) under conditions: the policy has no sub-chains")
                    continue
                }
                classify(r, &b, trailing: &trailingVerdicts)
            }
        }
        walk("input", depth: 0)

        // Chain policies.
        for p in policies {
            switch p.chain.lowercased() {
            case "input":
                if p.policy == "DROP" && !b.defaultSet {
                    b.result.policy.defaultAction = .drop
                    b.defaultSet = true
                }
                b.result.mapped += 1
            case "forward":
                if p.policy == "DROP" || p.policy == "REJECT" {
                    b.result.policy.forward = .drop
                    b.result.mapped += 1
                } else if !(chains["forward"] ?? []).isEmpty {
                    b.result.policy.forward = .none
                    b.result.mapped += 1
                } else {
                    b.result.policy.forward = .auto
                    b.result.mapped += 1
                }
            case "output":
                if p.policy != "ACCEPT" {
                    b.unmapped(
                        p.line, p.text,
                        "OUTPUT policy \(p.policy): the policy filters incoming and forwarded traffic only")
                } else {
                    b.result.mapped += 1
                }
            default: break
            }
        }
        if !b.defaultSet {
            b.result.policy.defaultAction = .reject
            b.result.notes.append(
                "the INPUT chain accepts by default and ends without a REJECT or DROP: the policy rejects everything it does not allow"
            )
        }
        // Everything not read from INPUT.
        for r in allRules where !consumed.contains(r.line) {
            if r.table != "filter" {
                b.unmapped(r.line, r.text, "table \(r.table): only the filter table maps to the host policy")
            } else if r.chain.lowercased() == "forward" {
                b.unmapped(
                    r.line, r.text,
                    "FORWARD rules (Docker, routing) are not carried over; forward = none leaves forwarding to them")
            } else if r.chain.lowercased() == "output" {
                b.unmapped(r.line, r.text, "OUTPUT rules: the policy filters incoming and forwarded traffic only")
            } else {
                b.unmapped(r.line, r.text, "chain \(r.chain) is not reached from INPUT")
            }
        }
        return b.finish(serviceNames: serviceNames)
    }

    static func isUnconditional(_ r: Rule) -> Bool {
        r.proto == nil && r.sources.isEmpty && r.destinations.isEmpty && r.inInterface == nil && r.dports.isEmpty
            && r.states.isEmpty && r.icmpType == nil && r.limit == nil && !r.recentSet && !r.recentUpdate
            && r.hashAbove == nil && r.problems.isEmpty && !r.negated
    }

    /// Maps one INPUT rule onto the policy, or records why not.
    static func classify(_ r: Rule, _ b: inout PolicyImport.Builder, trailing: inout [String]) {
        let target = (r.target ?? "").uppercased()
        if let p = r.problems.first {
            b.unmapped(r.line, r.text, p)
            return
        }
        if r.negated {
            b.unmapped(r.line, r.text, "negated match (!): the policy has no negation")
            return
        }
        if r.sportSeen {
            b.unmapped(r.line, r.text, "source-port match: the policy matches destination ports only")
            return
        }
        if !r.destinations.isEmpty {
            b.unmapped(
                r.line, r.text,
                "destination match -d \(r.destinations.joined(separator: ",")): the policy applies to every address of the host"
            )
            return
        }
        if let o = r.outInterface {
            b.unmapped(r.line, r.text, "output interface -o \(o) in INPUT has no meaning")
            return
        }
        let isICMP = ["icmp", "ipv6-icmp", "icmpv6", "icmp6", "1", "58"].contains(r.proto ?? "")
        // Loopback.
        if target == "ACCEPT", r.inInterface == "lo", r.proto == nil, r.sources.isEmpty, r.dports.isEmpty,
            r.states.isEmpty
        {
            b.result.policy.loopback = true
            b.result.mapped += 1
            return
        }
        // Connection tracking.
        if !r.states.isEmpty, r.proto == nil, r.sources.isEmpty, r.dports.isEmpty, r.inInterface == nil,
            r.limit == nil, r.hashAbove == nil, !r.recentSet, !r.recentUpdate
        {
            if target == "ACCEPT", r.states.isSubset(of: ["ESTABLISHED", "RELATED"]) {
                b.result.policy.established = true
                b.result.mapped += 1
                return
            }
            if target == "DROP" || target == "REJECT", r.states == ["INVALID"] {
                b.result.policy.dropInvalid = true
                b.result.mapped += 1
                return
            }
        }
        // ICMP.
        if isICMP, target == "ACCEPT", r.sources.isEmpty, r.inInterface == nil {
            b.sawICMPAccept = true
            let t = (r.icmpType ?? "any").lowercased()
            if t == "any" || t == "echo-request" || t == "8" || t == "128" { b.sawPing = true }
            if r.limit != nil {
                b.result.notes.append(
                    "line \(r.line): ICMP rate limit dropped (the policy accepts the ICMP a host needs without one)")
            }
            b.result.mapped += 1
            return
        }
        if isICMP, target == "DROP" || target == "REJECT" {
            b.result.mapped += 1
            b.result.notes.append("line \(r.line): ICMP drop is implied by the default")
            return
        }
        // Port-scan guard: recent / hashlimit drops.
        if r.recentSet && (target.isEmpty || target == "ACCEPT" || target == "LOG") && r.dports.isEmpty {
            b.result.mapped += 1
            return
        }
        if r.recentSet, target.isEmpty || r.target == nil {
            b.result.mapped += 1
            return
        }
        if target == "DROP" || target == "REJECT", r.recentUpdate || r.hashAbove != nil, r.sources.isEmpty {
            var g = b.result.policy.portscan ?? PortscanGuard()
            if let above = r.hashAbove {
                g.rate = above
                g.burst = r.hashBurst ?? 5
            } else if let hits = r.recentHits, let seconds = r.recentSeconds, seconds > 0 {
                let (count, unit) =
                    seconds % 3600 == 0
                    ? (hits * 3600 / seconds, Rate.Unit.hour)
                    : seconds % 60 == 0
                        ? (max(1, hits * 60 / seconds), Rate.Unit.minute)
                        : (max(1, hits / seconds), Rate.Unit.second)
                g.rate = Rate(count: max(1, count), unit: unit)
                g.burst = hits
                g.blockSeconds = max(1, seconds)
                b.result.notes.append(
                    "line \(r.line): -m recent (\(hits) hits in \(seconds) s) became the port-scan guard at \(g.rate) burst \(hits)"
                )
            } else {
                b.unmapped(r.line, r.text, "-m recent without --seconds and --hitcount cannot be expressed as a rate")
                return
            }
            if !r.dports.isEmpty {
                b.result.notes.append(
                    "line \(r.line): the rate limit applied to ports \(r.dports.map(\.description).joined(separator: ",")) only; the port-scan guard counts new connections to every port"
                )
            }
            b.result.policy.portscan = g
            b.result.mapped += 1
            return
        }
        // Logging.
        if target == "LOG" {
            b.result.policy.log = r.limit ?? Rate(count: 5, unit: .minute)
            if let p = r.logPrefix { b.result.policy.logPrefix = p }
            if r.limit == nil { b.result.notes.append("line \(r.line): logging without a limit became log = 5/minute") }
            b.result.mapped += 1
            return
        }
        // Bogons.
        if target == "DROP" || target == "REJECT", !r.sources.isEmpty, r.proto == nil, r.dports.isEmpty,
            r.states.isEmpty
        {
            b.bogon(r.sources, interface: r.inInterface)
            b.result.mapped += 1
            return
        }
        // Services.
        if target == "ACCEPT", let p = r.proto, let proto = TransportProtocol(rawValue: p), !r.dports.isEmpty {
            if let i = r.inInterface, i != "lo" {
                b.unmapped(r.line, r.text, "accept on interface \(i) only: the policy has no per-interface services")
                return
            }
            if !r.states.isEmpty && !r.states.contains("NEW") {
                b.unmapped(
                    r.line, r.text,
                    "accept limited to states \(r.states.sorted().joined(separator: ",")) has no service equivalent")
                return
            }
            if r.limit != nil || r.hashAbove != nil {
                b.result.notes.append(
                    "line \(r.line): the rate limit on this accept was dropped; the port-scan guard limits new connections per source"
                )
            }
            b.accept(proto: proto, ranges: PortResolver.mergedRanges(r.dports), sources: r.sources, comment: r.comment)
            b.result.mapped += 1
            return
        }
        if target == "ACCEPT", r.proto != nil, r.dports.isEmpty, !isICMP {
            b.unmapped(
                r.line, r.text, "accepts a whole protocol (\(r.proto!)) on every port: list the ports in [services]")
            return
        }
        if target == "ACCEPT", r.proto == nil, !r.sources.isEmpty, r.dports.isEmpty {
            b.unmapped(
                r.line, r.text,
                "accepts everything from \(r.sources.map(\.description).joined(separator: ",")): the policy allows services, not whole sources"
            )
            return
        }
        // Explicit closes: what the default does anyway.
        if target == "DROP" || target == "REJECT", r.sources.isEmpty, r.inInterface == nil {
            if r.proto == nil && r.dports.isEmpty && r.states.isEmpty && r.limit == nil {
                b.result.policy.defaultAction = target == "DROP" ? .drop : .reject
                b.defaultSet = true
                b.result.mapped += 1
                return
            }
            if !r.dports.isEmpty || r.proto != nil {
                b.result.notes.append("line \(r.line): explicit \(target) of a port is implied by the default")
                b.result.mapped += 1
                return
            }
        }
        if target == "RETURN" {
            b.unmapped(r.line, r.text, "RETURN inside a chain: the policy has no sub-chains")
            return
        }
        if target.isEmpty {
            b.unmapped(r.line, r.text, "rule without a target (a counter): nothing to carry over")
            return
        }
        if !["ACCEPT", "DROP", "REJECT"].contains(target) {
            b.unmapped(r.line, r.text, "target \(r.target!) is not a filter verdict the policy can express")
            return
        }
        b.unmapped(r.line, r.text, "this combination of matches has no equivalent in the policy")
    }

    /// Splits a rule into words (double quotes group, `\"` escapes) and reads its options.
    static func parseRule(_ text: String, line: Int, table: String) -> Rule {
        let words = split(text)
        var r = Rule(line: line, text: text, chain: words.count > 1 ? words[1] : "", table: table)
        var i = 2
        func next() -> String? {
            i += 1
            return i < words.count ? words[i] : nil
        }
        func addresses(_ v: String?) {
            guard let v else { return }
            for part in v.split(separator: ",") {
                if let s = Subnet(part) {
                    r.sources.append(s)
                    r.family = s.network.family == .v4 && !part.contains(":") ? .v4 : .v6
                } else {
                    r.problems.append("'\(part)' is not an address or network")
                }
            }
        }
        func ports(_ v: String?) {
            guard let v else { return }
            for part in v.split(separator: ",") {
                let ends = part.split(separator: ":", omittingEmptySubsequences: false)
                if ends.count == 1, let p = UInt16(ends[0]) {
                    r.dports.append(PortRange(p))
                } else if ends.count == 2 {
                    let lo = ends[0].isEmpty ? 0 : UInt16(ends[0])
                    let hi = ends[1].isEmpty ? 65535 : UInt16(ends[1])
                    if let lo, let hi, lo <= hi {
                        r.dports.append(PortRange(lo, hi))
                    } else {
                        r.problems.append("malformed port range '\(part)'")
                    }
                } else {
                    r.problems.append("port '\(part)' is not a number (iptables-save writes numbers)")
                }
            }
        }
        while i < words.count {
            let w = words[i]
            switch w {
            case "!":
                // `! -i lo` is what a bogon list means anyway (every interface but loopback); other negations are not.
                if i + 2 < words.count, words[i + 1] == "-i" || words[i + 1] == "--in-interface", words[i + 2] == "lo" {
                    i += 3
                    continue
                }
                r.negated = true
            case "-p", "--protocol":
                r.proto = next()?.lowercased()
                if r.proto == "ipv6-icmp" || r.proto == "icmpv6" { r.family = .v6 }
                if r.proto == "icmp" { r.family = r.family ?? .v4 }
            case "-s", "--source", "--src": addresses(next())
            case "-d", "--destination", "--dst": if let v = next() { r.destinations.append(v) }
            case "-i", "--in-interface": r.inInterface = next()
            case "-o", "--out-interface": r.outInterface = next()
            case "-m", "--match":
                if let m = next()?.lowercased() {
                    r.modules.append(m)
                    if !knownModules.contains(m) {
                        r.problems.append("match module '\(m)' has no equivalent in the policy")
                    }
                }
            case "--dport", "--destination-port", "--dports", "--destination-ports": ports(next())
            case "--sport", "--source-port", "--sports", "--source-ports":
                _ = next()
                r.sportSeen = true
            case "--ctstate", "--state":
                if let v = next() { r.states = Set(v.uppercased().split(separator: ",").map(String.init)) }
            case "--icmp-type", "--icmpv6-type": r.icmpType = next()
            case "--comment": r.comment = next()
            case "--limit": r.limit = next().flatMap(Rate.init(parsing:))
            case "--limit-burst": r.limitBurst = next().flatMap { Int($0) }
            case "--set": r.recentSet = true
            case "--update", "--rcheck": r.recentUpdate = true
            case "--seconds": r.recentSeconds = next().flatMap { Int($0) }
            case "--hitcount": r.recentHits = next().flatMap { Int($0) }
            case "--name", "--mask", "--hashlimit-name", "--hashlimit-htable-expire", "--hashlimit-htable-size",
                "--hashlimit-htable-max", "--hashlimit-htable-gcinterval", "--hashlimit-srcmask", "--log-level",
                "--reap-placeholder":
                _ = next()
            case "--rsource", "--rdest", "--reap", "--rttl", "--log-uid", "--log-tcp-options", "--log-ip-options",
                "--log-tcp-sequence":
                break
            case "--hashlimit-above": r.hashAbove = next().flatMap(Rate.init(parsing:))
            case "--hashlimit-upto":
                _ = next()
                r.problems.append(
                    "hashlimit --hashlimit-upto (accept under a rate) has no equivalent; the port-scan guard drops above a rate"
                )
            case "--hashlimit-burst": r.hashBurst = next().flatMap { Int($0) }
            case "--hashlimit-mode":
                if let v = next(), v != "srcip" {
                    r.problems.append("hashlimit per '\(v)': the port-scan guard counts per source address only")
                }
            case "--syn": r.syn = true
            case "--tcp-flags":
                _ = next()
                _ = next()
                r.problems.append("TCP flag match has no equivalent in the policy")
            case "-j", "--jump": r.target = next()
            case "-g", "--goto": r.target = next()
            case "--reject-with": r.rejectWith = next()
            case "--log-prefix": r.logPrefix = next()
            case "-f", "--fragment": r.problems.append("fragment match has no equivalent in the policy")
            default:
                if w.hasPrefix("-") {
                    r.problems.append("option \(w) has no equivalent in the policy")
                    // Skip its value, if any.
                    if i + 1 < words.count, !words[i + 1].hasPrefix("-") { i += 1 }
                }
            }
            i += 1
        }
        // Rate units iptables writes: 10/sec, 5/min, 1/hour, 3/day.
        return r
    }

    /// Words of a line: white space separates, double quotes group (with `\"` and `\\` escapes).
    static func split(_ text: String) -> [String] {
        var out: [String] = []
        var cur = ""
        var quoted = false
        var has = false
        var escape = false
        for c in text {
            if escape {
                cur.append(c)
                escape = false
                continue
            }
            if c == "\\" && quoted {
                escape = true
                continue
            }
            if c == "\"" {
                quoted.toggle()
                has = true
                continue
            }
            if c.isWhitespace && !quoted {
                if has || !cur.isEmpty { out.append(cur) }
                cur = ""
                has = false
                continue
            }
            cur.append(c)
        }
        if has || !cur.isEmpty { out.append(cur) }
        return out
    }
}
