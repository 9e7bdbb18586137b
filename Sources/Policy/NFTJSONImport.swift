import Core
import Firewall

/// Reads `nft -j list ruleset` into a policy: the rules of every base chain hooked at `input` (any family and table
/// but Portcullis's ban table), mapped like ``IptablesImport`` maps iptables rules; the rest is listed as unmapped.
///
/// ```swift
/// let result = NFTJSONImport.read(try String(contentsOfFile: "ruleset.json"))
/// ```
public enum NFTJSONImport {
    /// Reads the JSON document.
    public static func read(_ text: String, serviceNames: [UInt16: String] = [:]) -> PolicyImport {
        var b = PolicyImport.Builder()
        let doc: JSON
        do {
            doc = try JSON.parse(text)
        } catch {
            b.unmapped(0, String(text.prefix(80)), "not valid JSON: \(error)")
            return b.finish(serviceNames: serviceNames)
        }
        guard let items = doc["nftables"]?.arrayValue else {
            b.unmapped(0, String(text.prefix(80)), "not an nftables JSON document (no \"nftables\" array)")
            return b.finish(serviceNames: serviceNames)
        }
        // Base chains hooked at input / forward, by (family, table, name).
        var inputChains: Set<String> = []
        var forwardChains: Set<String> = []
        var index = 0
        for item in items {
            guard let c = item["chain"] else { continue }
            let key =
                "\(c["family"]?.stringValue ?? "") \(c["table"]?.stringValue ?? "") \(c["name"]?.stringValue ?? "")"
            if c["table"]?.stringValue == "portcullis" { continue }
            switch c["hook"]?.stringValue {
            case "input":
                inputChains.insert(key)
                b.result.mapped += 1
                if c["policy"]?.stringValue == "drop" {
                    b.result.policy.defaultAction = .drop
                    b.defaultSet = true
                }
            case "forward":
                forwardChains.insert(key)
                b.result.mapped += 1
                if c["policy"]?.stringValue == "drop" { b.result.policy.forward = .drop }
            default: break
            }
            switch c["family"]?.stringValue {
            case "ip": b.result.sawV4 = true
            case "ip6": b.result.sawV6 = true
            case "inet":
                b.result.sawV4 = true
                b.result.sawV6 = true
            default: break
            }
        }
        // Named sets' elements (for `ip saddr @set`).
        var sets: [String: [Subnet]] = [:]
        var dynamicSets: Set<String> = []
        for item in items {
            guard let s = item["set"] else { continue }
            let key =
                "\(s["family"]?.stringValue ?? "") \(s["table"]?.stringValue ?? "") \(s["name"]?.stringValue ?? "")"
            sets[key] = (s["elem"]?.arrayValue ?? []).compactMap(subnet)
            let flags = s["flags"]?.arrayValue?.compactMap(\.stringValue) ?? [s["flags"]?.stringValue ?? ""]
            if flags.contains("dynamic") { dynamicSets.insert(key) }
        }
        for item in items {
            guard let r = item["rule"] else { continue }
            index += 1
            let family = r["family"]?.stringValue ?? ""
            let table = r["table"]?.stringValue ?? ""
            if table == "portcullis" { continue }
            let key = "\(family) \(table) \(r["chain"]?.stringValue ?? "")"
            let text = describe(r)
            guard inputChains.contains(key) else {
                if forwardChains.contains(key) {
                    b.unmapped(index, text, "forward rules (Docker, routing) are not carried over")
                } else {
                    b.unmapped(index, text, "chain \(r["chain"]?.stringValue ?? "?") is not an input base chain")
                }
                continue
            }
            classify(
                r["expr"]?.arrayValue ?? [], text: text, index: index, family: family, table: table, sets: sets,
                dynamicSets: dynamicSets, comment: r["comment"]?.stringValue, &b)
        }
        if !b.defaultSet {
            b.result.policy.defaultAction = .reject
            b.result.notes.append("the input chains accept by default: the policy rejects everything it does not allow")
        }
        return b.finish(serviceNames: serviceNames)
    }

    static func subnet(_ v: JSON) -> Subnet? {
        if let s = v.stringValue { return Subnet(s) }
        if let p = v["prefix"], let a = p["addr"]?.stringValue, let l = p["len"]?.intValue {
            return Subnet("\(a)/\(l)")
        }
        if let e = v["elem"], let inner = e["val"] { return subnet(inner) }
        return nil
    }

    static func ports(_ v: JSON) -> [PortRange]? {
        if let n = v.intValue, let p = UInt16(exactly: n) { return [PortRange(p)] }
        if let r = v["range"]?.arrayValue, r.count == 2, let lo = r[0].intValue, let hi = r[1].intValue,
            let l = UInt16(exactly: lo), let h = UInt16(exactly: hi)
        {
            return [PortRange(l, h)]
        }
        if let s = v["set"]?.arrayValue {
            var out: [PortRange] = []
            for e in s {
                guard let p = ports(e) else { return nil }
                out += p
            }
            return out
        }
        return nil
    }

    static func describe(_ r: JSON) -> String {
        var t = r.encoded()
        if let i = t.firstRange(of: "\"expr\"") { t = String(t[i.lowerBound...]) }
        return String(t.prefix(300))
    }

    /// Maps one rule's expressions.
    static func classify(
        _ exprs: [JSON], text: String, index: Int, family: String, table: String, sets: [String: [Subnet]],
        dynamicSets: Set<String>, comment ruleComment: String?, _ b: inout PolicyImport.Builder
    ) {
        var dynamicRef = false
        var proto: String? = nil
        var dports: [PortRange] = []
        var sources: [Subnet] = []
        var states: Set<String> = []
        var iif: String? = nil
        var iifNot = false
        var icmp = false
        var ping = false
        var verdict: String? = nil
        var limit: Rate? = nil
        var log = false
        var logPrefix: String? = nil
        var meter: (Rate, Int)? = nil
        var problem: String? = nil
        var comment: String? = ruleComment
        for e in exprs {
            if let m = e["match"] {
                let op = m["op"]?.stringValue ?? "=="
                let left = m["left"] ?? .null
                let right = m["right"] ?? .null
                if let payload = left["payload"] {
                    let p = payload["protocol"]?.stringValue ?? ""
                    let field = payload["field"]?.stringValue ?? ""
                    switch (p, field) {
                    case ("tcp", "dport"), ("udp", "dport"):
                        guard op == "==" || op == "in", let ps = ports(right) else {
                            problem = "port match '\(op)' has no equivalent"
                            continue
                        }
                        proto = p
                        dports += ps
                    case ("ip", "saddr"), ("ip6", "saddr"):
                        if let name = right.stringValue, name.hasPrefix("@"),
                            dynamicSets.contains("\(family) \(table) \(name.dropFirst())")
                        {
                            dynamicRef = true
                            continue
                        }
                        guard op == "==" || op == "in" else {
                            problem = "negated source match has no equivalent"
                            continue
                        }
                        if let name = right.stringValue, name.hasPrefix("@") {
                            guard let s = sets["\(family) \(table) \(name.dropFirst())"] else {
                                problem = "source set \(name) is not in the dump"
                                continue
                            }
                            sources += s
                        } else if let s = subnet(right) {
                            sources.append(s)
                        } else if let list = right["set"]?.arrayValue {
                            sources += list.compactMap(subnet)
                        } else {
                            problem = "source match it cannot read"
                        }
                    case ("icmp", "type"), ("icmpv6", "type"):
                        icmp = true
                        let types = right["set"]?.arrayValue?.compactMap(\.stringValue) ?? [right.stringValue ?? ""]
                        if types.contains("echo-request") { ping = true }
                    case ("ip6", "hoplimit"): break
                    case ("ip", "daddr"), ("ip6", "daddr"):
                        problem = "destination match: the policy applies to every address of the host"
                    case ("tcp", "sport"), ("udp", "sport"):
                        problem = "source-port match: the policy matches destination ports only"
                    default:
                        problem = "match on \(p) \(field) has no equivalent in the policy"
                    }
                } else if let meta = left["meta"] {
                    switch meta["key"]?.stringValue {
                    case "iif", "iifname":
                        iif = right.stringValue
                        iifNot = op == "!="
                    case "l4proto", "nfproto":
                        if let v = right.stringValue {
                            if ["icmp", "ipv6-icmp", "icmpv6"].contains(v) {
                                icmp = true
                                ping = true
                            } else {
                                proto = v
                            }
                        }
                    default: problem = "meta \(meta["key"]?.stringValue ?? "?") match has no equivalent"
                    }
                } else if let ct = left["ct"], ct["key"]?.stringValue == "state" {
                    let list = right.arrayValue?.compactMap(\.stringValue) ?? [right.stringValue ?? ""]
                    states = Set(list.map { $0.uppercased() })
                } else if left["fib"] != nil {
                    b.result.policy.antispoof.reversePath = true
                    b.result.mapped += 1
                    return
                } else {
                    problem = "a match it cannot read"
                }
            } else if e["accept"] != nil {
                verdict = "ACCEPT"
            } else if e["drop"] != nil {
                verdict = "DROP"
            } else if e["reject"] != nil {
                verdict = "REJECT"
            } else if let l = e["limit"] {
                if let rate = l["rate"]?.intValue, let per = l["per"]?.stringValue, let unit = Rate.Unit(rawValue: per)
                {
                    limit = Rate(count: rate, unit: unit)
                }
            } else if let l = e["log"] {
                log = true
                logPrefix = l["prefix"]?.stringValue
            } else if e["counter"] != nil {
            } else if let m = e["meter"] ?? e["set"], let stmt = m["stmt"]?.arrayValue,
                let l = stmt.first?["limit"], let rate = l["rate"]?.intValue, let per = l["per"]?.stringValue,
                let unit = Rate.Unit(rawValue: per)
            {
                meter = (Rate(count: rate, unit: unit), l["burst"]?.intValue ?? 5)
            } else if e["set"] != nil {
                // `add @set { ip saddr }` — part of a meter rule.
            } else if let c = e["comment"]?.stringValue {
                comment = c
            } else if let j = e["jump"] ?? e["goto"] {
                problem = "jump to chain \(j["target"]?.stringValue ?? "?"): the policy has no sub-chains"
            } else {
                problem = "statement \(e.members.first?.key ?? "?") has no equivalent in the policy"
            }
        }
        if let problem {
            b.unmapped(index, text, problem)
            return
        }
        if dynamicRef && meter == nil && (verdict == "DROP" || verdict == "REJECT") {
            // `ip saddr @offenders drop`: the port-scan guard's block set.
            b.result.mapped += 1
            return
        }
        if let meter, verdict == "DROP" || verdict == "REJECT" {
            var g = b.result.policy.portscan ?? PortscanGuard()
            g.rate = meter.0
            g.burst = meter.1
            b.result.policy.portscan = g
            b.result.mapped += 1
            return
        }
        if verdict == "ACCEPT", iif == "lo", !iifNot, proto == nil, sources.isEmpty, dports.isEmpty {
            b.result.policy.loopback = true
            b.result.mapped += 1
            return
        }
        if !states.isEmpty, proto == nil, sources.isEmpty, dports.isEmpty {
            if verdict == "ACCEPT", states.isSubset(of: ["ESTABLISHED", "RELATED"]) {
                b.result.policy.established = true
                b.result.mapped += 1
                return
            }
            if verdict == "DROP", states == ["INVALID"] {
                b.result.policy.dropInvalid = true
                b.result.mapped += 1
                return
            }
        }
        if icmp, verdict == "ACCEPT", sources.isEmpty {
            b.sawICMPAccept = true
            if ping { b.sawPing = true }
            b.result.mapped += 1
            return
        }
        if log {
            b.result.policy.log = limit ?? Rate(count: 5, unit: .minute)
            if let logPrefix { b.result.policy.logPrefix = logPrefix }
            b.result.mapped += 1
            if verdict == nil { return }
        }
        if verdict == "DROP" || verdict == "REJECT", !sources.isEmpty, proto == nil, dports.isEmpty {
            b.bogon(sources, interface: iifNot ? nil : iif)
            b.result.mapped += 1
            return
        }
        if verdict == "ACCEPT", let p = proto, let tp = TransportProtocol(rawValue: p), !dports.isEmpty {
            if let iif, iif != "lo", !iifNot {
                b.unmapped(index, text, "accept on interface \(iif) only: the policy has no per-interface services")
                return
            }
            b.accept(proto: tp, ranges: PortResolver.mergedRanges(dports), sources: sources, comment: comment)
            b.result.mapped += 1
            return
        }
        if verdict == "DROP" || verdict == "REJECT", sources.isEmpty, iif == nil {
            if proto == nil || proto == "tcp", dports.isEmpty, states.isEmpty {
                b.result.policy.defaultAction = verdict == "DROP" ? .drop : .reject
                b.defaultSet = true
            }
            b.result.mapped += 1
            return
        }
        if verdict == nil {
            b.unmapped(index, text, "rule without a verdict: nothing to carry over")
            return
        }
        b.unmapped(index, text, "this combination of matches has no equivalent in the policy")
    }
}
