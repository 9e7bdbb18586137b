import ArgumentParser

/// The `portcullis` command line: one subcommand per job. `regex` tests filters against logs; the daemon's
/// `start`, `stop`, `status`, … subcommands join `subcommands` as they are built.
///
/// ```
/// portcullis regex /var/log/auth.log sshd
/// portcullis regex --out ip /var/log/auth.log 'sshd[mode=aggressive]'
/// ```
@main
struct Portcullis: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "portcullis",
        abstract: "Intrusion prevention: bans addresses that fail to authenticate, using fail2ban's filters.",
        version: "0.1.0",
        subcommands: [RegexCommand.self]
    )
}
