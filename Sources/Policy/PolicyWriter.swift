import Core
import Firewall

/// Writes a policy as `firewall.conf` text (what `portcullis firewall import` prints).
///
/// ```swift
/// print(PolicyWriter.text(IptablesImport.read(dump), source: "rules.v4"))
/// ```
public enum PolicyWriter {
    /// The policy file, with the import's notes and every rule it could not carry over as comments at the top.
    public static func text(_ result: PolicyImport, source: String, serviceNames: [UInt16: String] = [:]) -> String {
        var out = "# Imported by `portcullis firewall import` from \(source).\n"
        out += "# \(result.mapped) rules carried over, \(result.unmapped.count) not carried over.\n"
        for n in result.notes { out += "# note: \(n)\n" }
        if !result.unmapped.isEmpty {
            out += "#\n# Not carried over (review these by hand):\n"
            for u in result.unmapped { out += "#   line \(u.line): \(u.text)\n#     reason: \(u.reason)\n" }
        }
        out += "\n" + text(result.policy, serviceNames: serviceNames)
        return out
    }

    /// The policy's sections and keys.
    public static func text(_ p: HostPolicy, serviceNames: [UInt16: String] = [:]) -> String {
        func yes(_ b: Bool) -> String { b ? "yes" : "no" }
        var out = "[firewall]\n"
        out += "default = \(p.defaultAction.rawValue)\n"
        out += "loopback = \(yes(p.loopback))\n"
        out += "established = \(yes(p.established))\n"
        out += "invalid = \(p.dropInvalid ? "drop" : "ignore")\n"
        out += "icmp = \(yes(p.icmp))\n"
        out += "ping = \(yes(p.ping))\n"
        out += "log = \(p.log?.description ?? "no")\n"
        if p.log != nil { out += "logprefix = \"\(p.logPrefix)\"\n" }
        out += "forward = \(p.forward.rawValue)\n\n[groups]\n"
        for g in p.groups { out += "\(g.name) = \(g.networks.map(\.description).joined(separator: ", "))\n" }
        out += "\n[services]\n"
        for s in p.services {
            var items: [String] = []
            for ports in s.ports {
                for r in ports.ranges {
                    let name = r.lower == r.upper && ports.proto == .tcp ? serviceNames[r.lower] : nil
                    let port = name ?? r.description
                    items.append(ports.proto == .tcp ? port : "\(ports.proto.rawValue)/\(port)")
                }
            }
            out += "\(s.name) = \(items.joined(separator: ", "))"
            if !s.sources.isEmpty { out += " from \(s.sources.map(\.description).joined(separator: ", "))" }
            out += "\n"
        }
        out += "\n[antispoof]\nrpfilter = \(yes(p.antispoof.reversePath))\n"
        for b in p.antispoof.bogons {
            out +=
                "bogons\(b.interface.map { ".\($0)" } ?? "") = \(b.networks.map(\.description).joined(separator: ", "))\n"
        }
        out += "\n[portscan]\n"
        if let g = p.portscan {
            out += "enabled = yes\nrate = \(g.rate)\nburst = \(g.burst)\nbantime = \(g.blockSeconds)\n"
            if !g.exempt.isEmpty { out += "exempt = \(g.exempt.joined(separator: ", "))\n" }
        } else {
            out += "enabled = no\n"
        }
        return out
    }
}
