import Configuration
import Core
import Filter
import Testing

@testable import Daemon

/// Portcullis writes its log in fail2ban's format so fail2ban's own stock recidive filter, read unmodified from
/// the installed package, counts its bans (and nothing else).
@Suite struct RecidiveCompatibilityTests {
    @Test func stockRecidiveFilterMatchesOurBanLines() throws {
        let config = try ConfigTree(root: "/etc/fail2ban").loadFilter("recidive")
        let filter = try CompiledFilter(config)
        let processor = try filter.makeProcessor()
        let handler = FailLogHandler(label: "fail2ban.actions", sink: .init(target: .standardError), pid: 4242)
        let now = FilterClock.now()

        for (message, expected) in [
            ("[sshd] Ban 192.0.2.7", "192.0.2.7"),
            ("[postfix-sasl] Ban 2001:db8::66", "2001:db8::66"),
        ] {
            let line = handler.format(level: .notice, message: message, at: now)
            #expect(processor.process(line) == .matched, "recidive must match: \(line)")
            #expect(processor.failures.first?.address == IPAddress(expected))
        }
        for message in ["[recidive] Ban 192.0.2.8", "[sshd] Restore Ban 192.0.2.9", "[sshd] Unban 192.0.2.7"] {
            let line = handler.format(level: .notice, message: message, at: now)
            #expect(processor.process(line) != .matched, "recidive must not count: \(line)")
        }
        // An INFO "Found" line is not a ban either.
        let found = FailLogHandler(label: "fail2ban.filter", sink: .init(target: .standardError), pid: 4242)
            .format(level: .info, message: "[sshd] Found 192.0.2.7 - 2026-11-30 01:02:03", at: now)
        #expect(processor.process(found) != .matched)
    }
}
