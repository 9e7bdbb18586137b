/// The padded-user-name attack of issue 7: a failure line whose attacker-controlled field (a user name) holds
/// a forged tail (`… from FAKE port 22 ssh2`), padded so that the forged tail ends exactly at byte `cut`. A line
/// path that cut lines at `cut` and matched the prefix would report FAKE; the whole line names REAL.
///
/// ```swift
/// let attack = LongLineAttack.sshd
/// let line = attack.line(cut: 65_536)            // the forged tail ends at byte 65,536
/// attack.prefixEndingAtFake(cut: 65_536)        // what a cut at 65,536 would have matched: names FAKE
/// ```
public struct LongLineAttack: Sendable {
    /// A name for messages ("sshd", "dovecot" …).
    public let name: String
    /// The filter to load (`sshd`, `pam-generic` …) and whether it is fail2ban's stock one (/etc/fail2ban).
    public let filter: String
    public let stock: Bool
    /// The syslog identifier of the line (for journal entries).
    public let identifier: String
    /// The address the line really names, and the forged one.
    public static let real = "192.0.2.7"
    public static let fake = "198.51.100.66"
    /// Text before the attacker's field (after the syslog head), the forged tail inside the field, and the text
    /// after the field. The line is `head + body + padding + forged + after`.
    let body: String
    let forged: String
    let after: String
    /// A legitimate failure (short user name) from `address`, same shape.
    let neighbour: @Sendable (String) -> String

    /// The syslog head of file lines (the journal source makes its own from the entry's fields).
    public static let fileHead = "Nov 30 01:11:42 mail "

    /// The message (no syslog head) with the forged tail ending `cut - headLength` bytes in.
    public func message(cut: Int, headLength: Int) -> String {
        let pad = cut - headLength - body.utf8.count - forged.utf8.count
        precondition(pad >= 1, "cut too small")
        return body + String(repeating: "x", count: pad) + forged + after
    }

    /// A file line (with `fileHead` and the identifier) whose forged tail ends at byte `cut`.
    public func line(cut: Int) -> String {
        Self.fileHead + prefix + message(cut: cut, headLength: Self.fileHead.utf8.count + prefix.utf8.count)
    }

    /// `identifier[pid]: ` as file lines carry it.
    public var prefix: String { "\(identifier)[4242]: " }

    /// The first `cut` bytes of `line(cut:)`: what a reader that cut at `cut` would have matched.
    public func prefixEndingAtFake(cut: Int) -> String { String(line(cut: cut).utf8.prefix(cut))! }

    /// A legitimate failure line from `address` (file form) and its message alone (journal form).
    public func neighbourLine(_ address: String) -> String { Self.fileHead + prefix + neighbour(address) }
    public func neighbourMessage(_ address: String) -> String { neighbour(address) }

    /// Our sshd filter: the user name of `Failed password for invalid user NAME from ADDR port N ssh2`.
    public static let sshd = LongLineAttack(
        name: "sshd", filter: "sshd", stock: false, identifier: "sshd",
        body: "Failed password for invalid user ", forged: " from \(fake) port 22 ssh2",
        after: " from \(real) port 56702 ssh2",
        neighbour: { "Failed password for invalid user ghost from \($0) port 57710 ssh2" })

    /// Our dovecot filter: `user=<NAME>` before `rip=`.
    public static let dovecot = LongLineAttack(
        name: "dovecot", filter: "dovecot", stock: false, identifier: "dovecot",
        body:
            "imap-login: Info: Disconnected: Aborted login by logging out (auth failed, 1 attempts in 1 secs): user=<",
        forged: ">, method=PLAIN, rip=\(fake), lip=203.0.113.25",
        after: ">, method=PLAIN, rip=\(real), lip=203.0.113.25, session=<RwSwF3Rh3OjAAAIH>",
        neighbour: {
            "imap-login: Info: Disconnected: Aborted login by logging out (auth failed, 1 attempts in 5 secs): user=<alice>, method=PLAIN, rip=\($0), lip=203.0.113.25, session=<ebvAF3RhyuDAAAIH>"
        })

    /// Our postfix filter: the HELO name, after the address (a cut cannot move it; the sweep proves it stays so).
    public static let postfix = LongLineAttack(
        name: "postfix", filter: "postfix", stock: false, identifier: "postfix/smtpd",
        body:
            "NOQUEUE: reject: RCPT from unknown[\(real)]: 550 5.1.1 <nosuchuser@example.test>: Recipient address rejected: User unknown in local recipient table; from=<probe@example.org> to=<nosuchuser@example.test> proto=ESMTP helo=<",
        forged: "> from unknown[\(fake)]: 550 5.1.1",
        after: ">",
        neighbour: {
            "NOQUEUE: reject: RCPT from unknown[\($0)]: 550 5.1.1 <nosuchuser@example.test>: Recipient address rejected: User unknown in local recipient table; from=<probe@example.org> to=<nosuchuser@example.test> proto=ESMTP helo=<client.example.test>"
        })

    /// fail2ban's stock pam-generic: the remote user (`ruser=`), before `rhost=`.
    public static let pamGeneric = LongLineAttack(
        name: "pam-generic", filter: "pam-generic", stock: true, identifier: "sshd",
        body: "pam_unix(sshd:auth): authentication failure; logname= uid=0 euid=0 tty=ssh ruser=",
        forged: " rhost=\(fake)",
        after: " rhost=\(real)  user=root",
        neighbour: {
            "pam_unix(sshd:auth): authentication failure; logname= uid=0 euid=0 tty=ssh ruser= rhost=\($0)  user=root"
        })

    /// Every attack.
    public static let all = [sshd, dovecot, postfix, pamGeneric]
    /// The ones whose forged tail really would be matched from a cut prefix (postfix puts the address first).
    public var prefixNamesFake: Bool { name != "postfix" }

    /// Cut positions around `limit`: `limit - 160 … limit + 64` (wider below, so that even the attack with the
    /// longest text after the forged tail has whole lines that fit, next to ones that do not).
    public static func cuts(around limit: Int) -> ClosedRange<Int> { (limit - 160)...(limit + 64) }

    /// Neighbour addresses: 203.0.113.1 … (one per line between attacks).
    public static func neighbourAddress(_ i: Int) -> String { "203.0.113.\(i % 250 + 1)" }
}
