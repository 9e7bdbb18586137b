import ArgumentParser
import Configuration
import Firewall
import HostFirewall
import Policy

#if canImport(Glibc)
import Glibc
#endif

/// `portcullis firewall plan|apply|confirm|import`: the host firewall policy of `firewall.conf`.
struct FirewallCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "firewall",
        abstract: "The host firewall policy (firewall.conf): plan, apply with automatic revert, confirm, import.",
        discussion: """
            The policy lives in DIR/firewall.conf, overridden by firewall.local and firewall.d/*.conf|*.local. \
            It is loaded into Portcullis's own table `inet portcullis-policy` (base chains at priority filter); \
            the ban table `inet portcullis` (priority filter - 1) still sees every packet first, so a ban wins \
            over an allowed service. No other table is touched.

            Sections and keys (see the README for defaults):
              [firewall]   default = reject|drop       for everything not accepted
                           loopback, established, icmp, ping = yes|no
                           invalid = drop|ignore       conntrack-invalid packets
                           log = 5/minute|no           rate-limited logging
                           logprefix = TEXT
                           forward = auto|none|reject|drop|accept
              [groups]     NAME = NET[, NET...]        admin = 192.0.2.0/24
              [services]   NAME = PORT[, ...] [from GROUP|NET[, ...]]
                           PORT: ssh, 443, 6000-6010, udp/53 (/etc/services)
              [antispoof]  rpfilter = yes|no           reverse-path check
                           bogons = NET[, ...]         dropped on all but lo
                           bogons.IFACE = NET[, ...]   dropped on IFACE
              [portscan]   enabled = yes|no, rate = 10/second, burst = 10,
                           bantime = 60, exempt = GROUP...

            Workflow: `plan` shows the ruleset and the difference from the kernel; `apply` loads it and reverts \
            unless `confirm` follows within --timeout seconds (default 60).
            """,
        subcommands: [
            FirewallPlanCommand.self, FirewallApplyCommand.self, FirewallConfirmCommand.self,
            FirewallImportCommand.self, FirewallRevertCommand.self,
        ]
    )
}

/// Options shared by the policy commands.
struct PolicyOptions: ParsableArguments {
    @Option(name: [.customShort("c"), .customLong("conf")], help: "Configuration directory (default /etc/portcullis).")
    var conf: String = "/etc/portcullis"

    @Option(help: "Services file for port names.")
    var services: String = "/etc/services"

    @Option(help: ArgumentHelp("Policy table (family inet).", visibility: .hidden))
    var table: String = "portcullis-policy"

    /// The policy, or a CLIError with file:line.
    func loadPolicy() throws -> HostPolicy {
        let resolver: PortResolver
        do {
            resolver = try PortResolver(servicesPath: services)
        } catch {
            throw CLIError(.config, "\(error)")
        }
        do {
            return try PolicyLoader.load(tree: ConfigTree(root: conf), services: resolver)
        } catch {
            throw CLIError(.config, "\(error)")
        }
    }

    var kernel: PolicyKernel { PolicyKernel(table: table) }
    var renderer: PolicyRenderer { PolicyRenderer(table: table) }
}

/// Options of the commands that keep apply state.
struct RunDirectoryOption: ParsableArguments {
    @Option(help: "Directory for the pending apply's state (per network namespace).")
    var runDir: String = "/run/portcullis"
}

struct FirewallPlanCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "plan",
        abstract: "Print the ruleset the policy would load and its difference from what the kernel has.")

    @OptionGroup var options: PolicyOptions

    @Flag(help: "Print only the difference.")
    var diffOnly = false

    func run() throws {
        let policy = try options.loadPolicy()
        let kernel = options.kernel
        let forwarding = kernel.forwardingEnabled()
        let script = options.renderer.loadScript(policy, forwarding: forwarding)
        print("# policy: \(policy.files.joined(separator: ", "))")
        print("# \(policy.summary)")
        if policy.forward == .auto {
            print(
                forwarding
                    ? "# forward = auto: this host forwards packets (Docker or routing), so no forward chain is loaded"
                    : "# forward = auto: this host does not forward packets, so forwarded packets are rejected")
        }
        let candidate: String
        do {
            candidate = try kernel.scratchListing(of: script)
        } catch {
            if error.code == .networkNamespace {
                print("# (cannot check in a scratch namespace: \(error.message); showing the text as generated)")
                candidate = options.renderer.ruleset(policy, forwarding: forwarding)
            } else {
                throw CLIError(.config, "the kernel refuses the policy: \(error)")
            }
        }
        if !diffOnly { print(candidate, terminator: candidate.hasSuffix("\n") ? "" : "\n") }
        let current: String?
        do {
            current = try kernel.listing()
        } catch {
            throw CLIError(.io, "cannot read the kernel's ruleset: \(error)")
        }
        guard let current else {
            print("# difference from the kernel: table inet \(options.table) is not loaded; all of it is new")
            return
        }
        let diff = RulesetText.diff(RulesetText.normalized(current), RulesetText.normalized(candidate))
        if !RulesetText.hasChanges(diff) {
            print("# difference from the kernel: none (table inet \(options.table) is up to date)")
            return
        }
        print("# difference from the kernel (- loaded now, + after apply):")
        for line in diff where !line.hasPrefix("  ") { print(line) }
    }
}

struct FirewallApplyCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "apply",
        abstract: "Load the policy in one transaction; it is reverted unless `confirm` follows within the timeout.",
        discussion: """
            Returns at once. A detached reverter restores the previous policy table after --timeout seconds \
            unless `portcullis firewall confirm` runs first (the daemon need not run). Refuses a policy that \
            would cut the SSH session it is run from (SSH_CONNECTION) unless --force.
            """)

    @OptionGroup var options: PolicyOptions
    @OptionGroup var state: RunDirectoryOption

    @Option(help: "Seconds until the policy is reverted unless confirmed (1-86400).")
    var timeout: Int = 60

    @Flag(help: "Apply even if the policy would cut the current SSH session.")
    var force = false

    func run() throws {
        guard (1...86400).contains(timeout) else { throw CLIError(.usage, "--timeout must be 1 to 86400 seconds") }
        let policy = try options.loadPolicy()
        if !force, let ssh = PolicyProcess.get("SSH_CONNECTION"), !ssh.isEmpty {
            do {
                try policy.checkSSHSession(ssh)
            } catch {
                throw CLIError(.usage, "refused: \(error)")
            }
        }
        let kernel = options.kernel
        let script = options.renderer.loadScript(policy, forwarding: kernel.forwardingEnabled())
        let safe = SafeApply(runDirectory: state.runDir, kernel: kernel)
        let reverter = [
            PolicyProcess.executablePath(), "firewall", "_revert", "--run-dir", state.runDir, "--table",
            options.table,
        ]
        do {
            let pending = try safe.apply(script, timeout: Double(timeout), reverter: reverter)
            print(
                "applied: table inet \(options.table) loaded (\(policy.summary)); "
                    + "it is reverted in \(timeout) s unless you run `portcullis firewall confirm` "
                    + "(reverter pid \(pending.reverter))")
        } catch {
            throw CLIError(.io, "\(error)")
        }
    }
}

struct FirewallConfirmCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "confirm", abstract: "Keep the policy loaded by the last `apply` (stops its revert).")

    @OptionGroup var state: RunDirectoryOption

    @Option(help: ArgumentHelp("Policy table (family inet).", visibility: .hidden))
    var table: String = "portcullis-policy"

    func run() throws {
        let safe = SafeApply(runDirectory: state.runDir, kernel: PolicyKernel(table: table))
        do {
            try safe.confirm()
            print("confirmed: the policy in table inet \(table) stays")
        } catch {
            printError("\(error)\n")
            throw ExitCode(1)
        }
    }
}

/// The detached reverter `apply` starts (hidden).
struct FirewallRevertCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "_revert", abstract: "Restore the previous policy table when an apply is not confirmed.",
        shouldDisplay: false)

    @OptionGroup var state: RunDirectoryOption

    @Option var table: String = "portcullis-policy"
    @Option var token: String

    func run() throws {
        let safe = SafeApply(runDirectory: state.runDir, kernel: PolicyKernel(table: table))
        _ = safe.revertWhenDue(token: token)
    }
}

/// The environment and this executable.
enum PolicyProcess {
    static func get(_ name: String) -> String? { getenv(name).map { String(cString: $0) } }

    static func executablePath() -> String {
        var buffer = [CChar](repeating: 0, count: 4096)
        let n = readlink("/proc/self/exe", &buffer, buffer.count - 1)
        guard n > 0 else { return CommandLine.arguments[0] }
        return String(decoding: buffer[0..<n].map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }
}

struct FirewallImportCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "import",
        abstract: "Write the policy equivalent to an iptables-save dump or an `nft -j list ruleset` document.",
        discussion: """
            Reads iptables-save / ip6tables-save output (either or both; chain names in any case; multiport, \
            conntrack/state, -s, -i, ACCEPT/DROP/REJECT, recent and hashlimit drops, limited LOG) or nftables JSON, \
            and prints firewall.conf text (to stdout, or to -o FILE). Every rule that could not be carried over is \
            listed with its reason, on stderr and as comments in the policy. A dump with IPv4 rules only gives a \
            policy that applies the same intent to IPv6, and says so.
            """)

    @Argument(help: "The dump (iptables-save text or nft -j JSON); - for standard input.")
    var file: String

    @Option(name: .shortAndLong, help: "Write the policy here instead of standard output.")
    var output: String?

    @Option(help: "Services file for naming ports.")
    var services: String = "/etc/services"

    func run() throws {
        let text: String
        if file == "-" {
            var lines: [String] = []
            while let line = readLine(strippingNewline: false) { lines.append(line) }
            text = lines.joined()
        } else {
            guard let t = PolicyFiles.read(file) else { throw CLIError(.io, "cannot read \(file)") }
            text = t
        }
        let names = PolicyFiles.read(services).map { PolicyImport.serviceNames(servicesText: $0) } ?? [:]
        let result = PolicyImport.read(text, serviceNames: names)
        let policyText = PolicyWriter.text(result, source: file == "-" ? "standard input" : file, serviceNames: names)
        if let output {
            guard PolicyFiles.write(output, policyText) else { throw CLIError(.io, "cannot write \(output)") }
        } else {
            print(policyText, terminator: "")
        }
        var report = "import: \(result.mapped) rules carried over, \(result.unmapped.count) not carried over\n"
        for u in result.unmapped { report += "  line \(u.line): \(u.text)\n    not carried over: \(u.reason)\n" }
        for n in result.notes { report += "  note: \(n)\n" }
        printError(report)
    }
}

/// Whole-file reads and writes for import.
enum PolicyFiles {
    static func read(_ path: String) -> String? {
        guard let f = fopen(path, "r") else { return nil }
        defer { fclose(f) }
        var bytes: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: 65536)
        while true {
            let n = fread(&buffer, 1, buffer.count, f)
            if n == 0 { break }
            bytes += buffer[0..<n]
        }
        return String(decoding: bytes, as: UTF8.self)
    }

    static func write(_ path: String, _ text: String) -> Bool {
        guard let f = fopen(path, "w") else { return false }
        let bytes = Array(text.utf8)
        let ok = fwrite(bytes, 1, bytes.count, f) == bytes.count
        return fclose(f) == 0 && ok
    }
}
