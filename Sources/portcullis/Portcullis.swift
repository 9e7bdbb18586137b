import ArgumentParser

/// The `portcullis` command line: one subcommand per job. `regex` tests filters against logs; the daemon's
/// `start`, `stop`, `status`, … subcommands join `subcommands` as they are built.
///
/// ```
/// portcullis regex /var/log/auth.log sshd
/// portcullis regex --out ip /var/log/auth.log 'sshd[mode=aggressive]'
/// ```
@main
struct Portcullis: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "portcullis",
        abstract: "Intrusion prevention: bans addresses that fail to authenticate, using fail2ban's filters.",
        version: "0.1.0",
        subcommands: [
            RegexCommand.self, FirewallCommand.self, AuditCommand.self, StartCommand.self, StopCommand.self,
            RestartCommand.self, PingCommand.self, StatusCommand.self, ReloadCommand.self, SetCommand.self,
            GetCommand.self, BannedCommand.self, UnbanCommand.self, AddCommand.self, FlushLogsCommand.self,
            EchoCommand.self, VersionCommand.self, RawCommand.self,
            CheckCommand.self,
        ]
    )

    /// fail2ban-client puts its global options before the command word (`portcullis -c DIR -s SOCK status sshd`);
    /// they are moved behind it so each subcommand parses them.
    static func main() async {
        var arguments = GlobalOptionsOrder.reorder(Array(CommandLine.arguments.dropFirst()))
        // A command word of fail2ban-client's that has no subcommand here goes to the server as it is.
        let known = Set(configuration.subcommands.map { $0._commandName } + ["help"])
        if let first = arguments.first, !first.hasPrefix("-"), !known.contains(first) { arguments.insert("raw", at: 0) }
        do {
            var command = try parseAsRoot(arguments)
            if var asyncCommand = command as? AsyncParsableCommand {
                try await asyncCommand.run()
            } else {
                try command.run()
            }
        } catch let failure as CLIError {
            // The policy commands: one line, exit status by kind (2 usage, 3 configuration, 4 I/O).
            printError("portcullis: error: \(failure)\n")
            Self.exit(withError: ExitCode(failure.code.rawValue))
        } catch let failure as CLIFailure {
            // One line and fail2ban-client's status, as CLIFailure promises.
            printError("ERROR: \(failure)\n")
            Self.exit(withError: ExitCode(255))
        } catch {
            exit(withError: error)
        }
    }
}

/// Moves fail2ban-client-style global options from before the command word to after it.
enum GlobalOptionsOrder {
    /// Options that take a value.
    static let withValue: Set<String> = ["-c", "--conf", "-s", "--socket", "-p", "--pidfile", "--timeout"]
    /// Options that are flags.
    static let flags: Set<String> = [
        "-f", "--foreground", "-b", "--background", "-x", "--force", "-v", "-vv", "-vvv", "-q", "-qq", "--json",
    ]

    /// fail2ban-client's `-t` / `--test` (test the configuration): the `check` command.
    static let test: Set<String> = ["-t", "--test"]

    /// `["-c", "D", "-f", "start"]` → `["start", "-c", "D", "-f"]`; `["-c", "D", "-t"]` → `["check", "-c", "D"]`;
    /// anything else is returned as it is.
    static func reorder(_ args: [String]) -> [String] {
        var leading: [String] = []
        var testing = false
        var i = 0
        while i < args.count {
            let a = args[i]
            if test.contains(a) {
                testing = true
                i += 1
            } else if withValue.contains(a), i + 1 < args.count {
                leading += [a, args[i + 1]]
                i += 2
            } else if flags.contains(a) {
                leading.append(a)
                i += 1
            } else {
                break
            }
        }
        if testing { return ["check"] + leading + args[i...] }
        guard !leading.isEmpty, i < args.count else { return args }
        return [args[i]] + leading + args[(i + 1)...]
    }
}
