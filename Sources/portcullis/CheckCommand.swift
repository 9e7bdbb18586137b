import ArgumentParser
import Core
import Daemon
import Firewall

/// `portcullis check` (also `portcullis -t`, like `fail2ban-client -t`): loads the configuration as a start
/// would and lists every problem with its file and line. Exit status 0 clean, 1 warnings, 2 errors.
struct CheckCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "check",
        abstract: "Check the configuration as a start would load it; list every problem with its file and line.",
        discussion: """
            Exit status: 0 when clean, 1 when there are only warnings, 2 when there are errors. The address of \
            the SSH session it runs in (SSH_CONNECTION, SSH_CLIENT) is checked against every jail's ignoreip. \
            The host's forwarding (net.ipv4.ip_forward, net.ipv6.conf.all.forwarding, Docker's chains when the \
            ruleset can be read) decides which jails also ban forwarded connections and what the host policy's \
            forward = auto does; check says which.
            """)

    @OptionGroup var options: GlobalOptions

    func run() throws {
        let check = ConfigurationCheck(
            configDirectory: options.configDirectory,
            sshClient: ConfigurationCheck.sshClientAddress(environment: ProcessEnvironment.dictionary),
            forwarding: Self.forwarding())
        let report = check.run()
        if options.json {
            print(report.json.encoded())
        } else {
            for finding in report.findings { print(finding) }
            if options.quiet == 0 { for note in report.notes { print("note: " + note) } }
            if options.quiet == 0 { print(report.summary) }
        }
        if report.exitStatus != 0 { throw ExitCode(report.exitStatus) }
    }

    /// This host's forwarding state, read as a start would: the sysctls, and Docker's chains when the ruleset
    /// can be listed (root); without the listing Docker counts as absent.
    static func forwarding() -> ForwardingState {
        let listing: String? = (try? NFTContext()).flatMap { try? $0.run("list chains") }
        return ForwardingState.read(chainsListing: listing)
    }
}
