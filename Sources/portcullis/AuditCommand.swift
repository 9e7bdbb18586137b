import ArgumentParser
import Core
import Firewall
import HostFirewall
import Policy

/// `portcullis audit [--json]`: the listening sockets against the policy and the loaded ruleset.
struct AuditCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "audit",
        abstract: "Compare the listening sockets with the firewall policy and the loaded ruleset.",
        discussion: """
            Reads the listening TCP and UDP sockets (IPv4 and IPv6, with process and PID) from the kernel, and for \
            each says who the policy (firewall.conf) allows to reach it and who the loaded policy table actually \
            lets through, per family and per source class (anywhere, each address group). Findings: \
            exposed-not-in-policy, allowed-not-listening, wider-than-policy, family-mismatch. Only Portcullis's \
            policy table is evaluated; other tables (Docker's, the admin's) may close more. Exit status 0 when \
            there are no findings, 1 otherwise.
            """)

    @OptionGroup var options: PolicyOptions

    @Flag(help: "Print a JSON object with `sockets` and `findings`.")
    var json = false

    func run() throws {
        let policy = try options.loadPolicy()
        let kernel = options.kernel
        var loaded = LoadedPolicy.absent
        var note: String? = nil
        do {
            if let listing = try kernel.listing() {
                let candidate = try kernel.scratchListing(
                    of: options.renderer.loadScript(policy, forwarding: kernel.forwardingEnabled()))
                if RulesetText.normalized(listing) == RulesetText.normalized(candidate) {
                    loaded = .same
                } else if let read = try? PolicyReadBack.read(kernel: kernel) {
                    loaded = .differs(read)
                    note = "the loaded policy table differs from the policy files (run `portcullis firewall plan`)"
                } else {
                    note =
                        "the loaded policy table differs from the policy files and could not be read back; "
                        + "treating every listening port as reachable"
                }
            } else {
                note = "no policy table is loaded: every listening port is reachable as far as Portcullis knows"
            }
        } catch {
            throw CLIError(.io, "cannot read the kernel's ruleset: \(error)")
        }
        let report = ExposureAudit.run(sockets: SocketTable.listening(), intended: policy, loaded: loaded)
        if json {
            print(Self.json(report, policy: policy, note: note).encoded())
        } else {
            print(Self.table(report, note: note), terminator: "")
        }
        if !report.findings.isEmpty { throw ExitCode(1) }
    }

    static func json(_ r: AuditReport, policy: HostPolicy, note: String?) -> JSON {
        func fam(_ f: IPAddress.Family) -> String { f == .v4 ? "ipv4" : "ipv6" }
        let sockets: [JSON] = r.entries.map { e in
            .object([
                ("proto", .string(e.socket.proto.rawValue)), ("port", .int(Int(e.socket.port))),
                ("family", .string(fam(e.family))), ("address", .string(e.socket.address.description)),
                ("process", .string(e.socket.process ?? "?")), ("pid", e.socket.pid.map { .int(Int($0)) } ?? .null),
                ("intended", .string(e.intended.description)), ("reachable", .string(e.reachable.description)),
            ])
        }
        let findings: [JSON] = r.findings.map { f in
            .object([
                ("kind", .string(f.kind.rawValue)), ("proto", .string(f.proto.rawValue)), ("port", .int(Int(f.port))),
                ("family", .string(f.family)), ("process", .string(f.process)), ("message", .string(f.message)),
            ])
        }
        return .object([
            ("policy", .array(policy.files.map { .string($0) })), ("loaded", .string(r.loaded)),
            ("note", note.map { .string($0) } ?? .null), ("sockets", .array(sockets)), ("findings", .array(findings)),
        ])
    }

    static func table(_ r: AuditReport, note: String?) -> String {
        var rows: [[String]] = [["PROTO", "PORT", "FAMILY", "ADDRESS", "PROCESS", "POLICY ALLOWS", "REACHABLE FROM"]]
        for e in r.entries {
            rows.append([
                e.socket.proto.rawValue, "\(e.socket.port)", e.family == .v4 ? "ipv4" : "ipv6",
                e.socket.address.description + (e.socket.dualStack && e.family == .v4 ? " (dual-stack)" : ""),
                e.socket.owner, e.intended.description, e.reachable.description,
            ])
        }
        var widths = [Int](repeating: 0, count: rows[0].count)
        for row in rows { for (i, c) in row.enumerated() { widths[i] = max(widths[i], c.count) } }
        var out = ""
        if let note { out += "note: \(note)\n" }
        for row in rows {
            var line = ""
            for (i, c) in row.enumerated() {
                line += i == row.count - 1 ? c : c + String(repeating: " ", count: widths[i] - c.count + 2)
            }
            out += line + "\n"
        }
        if !r.local.isEmpty {
            out += "loopback only (not reachable from outside): "
            out += r.local.map { "\($0.proto.rawValue)/\($0.port) \($0.owner)" }.joined(separator: ", ") + "\n"
        }
        if r.findings.isEmpty {
            out += "findings: none\n"
        } else {
            out += "findings (\(r.findings.count)):\n"
            for f in r.findings { out += "  \(f.kind.rawValue): \(f.message)\n" }
        }
        return out
    }
}

/// Reads the loaded policy table back into a policy (through the nftables JSON importer).
enum PolicyReadBack {
    static func read(kernel: PolicyKernel) throws -> HostPolicy? {
        guard let json = try kernel.jsonListing() else { return nil }
        return NFTJSONImport.read(json).policy
    }
}
