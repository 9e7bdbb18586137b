/// Builders for the reply values fail2ban-server sends, in exactly its shapes (observed from fail2ban 1.0.2), so
/// fail2ban-client prints the same for Portcullis.
///
/// ```swift
/// ControlReplies.serverStatus(jails: ["sshd"])
/// // [("Number of jail", 1), ("Jail list", "sshd")]
/// ```
public enum ControlReplies {
    /// Where a jail reads from, as `status JAIL` shows it.
    public enum Source: Sendable, Hashable {
        /// Log files: shown as `File list:` with the paths separated by spaces.
        case files([String])
        /// systemd journal matches, one inner array per alternative (`+` in `journalmatch`): shown as
        /// `Journal matches:` with the alternatives joined by ` + `.
        case journal([[String]])
    }

    /// `status`: `[("Number of jail", n), ("Jail list", "a, b")]`.
    public static func serverStatus(jails: [String]) -> ControlValue {
        [
            .tuple(["Number of jail", .int(jails.count)]),
            .tuple(["Jail list", .string(jails.joined(separator: ", "))]),
        ]
    }

    /// `status JAIL`: the Filter and Actions sections. `skipped` (Portcullis only, shown after the source
    /// when not empty, so the reply stays fail2ban's while nothing was skipped): lines not matched for a reason
    /// worth seeing, e.g. `("Lines too long", 3)`, `("Lines at match limit", 1)`. `actionsDropped` (command
    /// actions refused by a full queue or abandoned at a stop) is listed likewise only when non-zero.
    public static func jailStatus(
        currentlyFailed: Int, totalFailed: Int, source: Source, currentlyBanned: Int, totalBanned: Int,
        bannedAddresses: [String], skipped: [(String, Int)] = [], actionsDropped: Int = 0,
        extraActions: [(String, ControlValue)] = []
    ) -> ControlValue {
        var actions: [ControlValue] = [
            .tuple(["Currently banned", .int(currentlyBanned)]), .tuple(["Total banned", .int(totalBanned)]),
            .tuple(["Banned IP list", .list(bannedAddresses.map { .string($0) })]),
        ]
        if actionsDropped > 0 { actions.append(.tuple(["Command actions dropped", .int(actionsDropped)])) }
        // Only when present (prefix bans, fleet bans), so the usual reply stays byte for byte fail2ban-server's.
        for (name, value) in extraActions { actions.append(.tuple([.string(name), value])) }
        let sourceEntry: ControlValue
        switch source {
        case .files(let paths):
            sourceEntry = .tuple(["File list", .list(paths.map { .string($0) })])
        case .journal(let groups):
            let text = groups.map { $0.joined(separator: " ") }.joined(separator: " + ")
            sourceEntry = .tuple(["Journal matches", .list([.string(text)])])
        }
        var filter: [ControlValue] = [
            .tuple(["Currently failed", .int(currentlyFailed)]), .tuple(["Total failed", .int(totalFailed)]),
            sourceEntry,
        ]
        for (name, count) in skipped where count > 0 { filter.append(.tuple([.string(name), .int(count)])) }
        return [
            .tuple(["Filter", .list(filter)]),
            .tuple(["Actions", .list(actions)]),
        ]
    }

    /// `banned` without arguments: one single-entry dict per jail, every jail listed (empty lists included).
    public static func banned(byJail: [(jail: String, addresses: [String])]) -> ControlValue {
        .list(byJail.map { .dict([ControlValue.Pair(.string($0.jail), .list($0.addresses.map { .string($0) }))]) })
    }

    /// `banned ADDR…`: for each address, the list of jails banning it.
    public static func banned(jailsPerAddress: [[String]]) -> ControlValue {
        .list(jailsPerAddress.map { .list($0.map { .string($0) }) })
    }

    /// `get JAIL journalmatch`: one inner list per alternative.
    public static func journalMatch(_ groups: [[String]]) -> ControlValue {
        .list(groups.map { .list($0.map { .string($0) }) })
    }

    /// The error fail2ban-server gives for a `get`/`set` property it does not know.
    public static let invalidCommand = ControlError(
        .invalidCommand, "Invalid command (no get action or not yet implemented)")

    /// The error fail2ban-server gives when a command lacks arguments (`get sshd`): fail2ban-client prints
    /// "Sorry but the command is invalid".
    public static let incompleteCommand = ControlError(.incompleteCommand, "list index out of range")
}
