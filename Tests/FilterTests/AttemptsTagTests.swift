import Configuration
import Foundation
import Testing

@testable import Filter

/// `<F-ATTEMPTS>`: how many attempts one line stands for (digits; absent → 1; clamped to 1…100).
@Suite struct AttemptsTagTests {
    static let configDirectory = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
        .deletingLastPathComponent().deletingLastPathComponent().appendingPathComponent("config").path

    func failures(_ failregex: [String], _ lines: [String]) throws -> [Failure] {
        let filter = try CompiledFilter(
            FilterConfiguration(name: "t", file: "t.conf", failregex: failregex.map { ConfigValue($0) }))
        let p = try filter.makeProcessor()
        var out: [Failure] = []
        for line in lines {
            _ = p.process(line)
            out += p.failures
        }
        return out
    }

    @Test("the capture is the count; absent, empty, zero or not digits count 1; large values are clamped")
    func values() throws {
        let found = try failures(
            [#"^\s*fail from <HOST>(?: n=<F-ATTEMPTS>\S*</F-ATTEMPTS>)?$"#],
            [
                "2024-03-01 10:00:00 fail from 192.0.2.1 n=3", "2024-03-01 10:00:00 fail from 192.0.2.2",
                "2024-03-01 10:00:00 fail from 192.0.2.3 n=", "2024-03-01 10:00:00 fail from 192.0.2.4 n=0",
                "2024-03-01 10:00:00 fail from 192.0.2.5 n=x7", "2024-03-01 10:00:00 fail from 192.0.2.6 n=100",
                "2024-03-01 10:00:00 fail from 192.0.2.7 n=101",
                "2024-03-01 10:00:00 fail from 192.0.2.8 n=99999999999999999999",
            ])
        #expect(found.map(\.countedAttempts) == [3, 1, 1, 1, 1, 100, 100, 100])
        // fail2ban's `attempts` (the lines of a failure) is unchanged by the tag.
        #expect(found.allSatisfy { $0.attempts == 1 })
    }

    @Test("our dovecot filter: '(auth failed, 3 attempts in 18 secs)' stands for 3, a proxy refusal for 1")
    func dovecot() throws {
        let definition = try ConfigTree(root: Self.configDirectory).loadFilter("dovecot")
        let filter = try CompiledFilter(definition)
        let p = try filter.makeProcessor()
        let lines = [
            "Nov 30 00:52:01 mail dovecot: imap-login: Disconnected: Aborted login by logging out (auth failed, 3 attempts in 18 secs): user=<bob>, method=PLAIN, rip=192.0.2.7, lip=203.0.113.25, TLS, session=<abcdEFGH1234>",
            "Nov 30 00:52:02 mail dovecot: pop3-login: Disconnected (auth failed, 1 attempts in 2 secs): user=<alice>, method=PLAIN, rip=192.0.2.7, lip=203.0.113.25, session=<abcdEFGH1235>",
            "Nov 30 00:52:03 mail dovecot: imap-login: Disconnected (auth failed, 2 attempts in 4 secs): user=<x (auth failed, 90 attempts in 1 secs): user=<y>, rip=198.51.100.8>, method=PLAIN, rip=192.0.2.7, lip=203.0.113.25, session=<abcdEFGH1236>",
        ]
        var counts: [Int] = []
        var hosts: [String] = []
        for line in lines {
            _ = p.process(line)
            counts += p.failures.map(\.countedAttempts)
            hosts += p.failures.compactMap(\.host)
        }
        // The user name cannot raise the count: Dovecot's own count comes before it.
        #expect(counts == [3, 1, 2])
        #expect(hosts == ["192.0.2.7", "192.0.2.7", "192.0.2.7"])
    }
}
