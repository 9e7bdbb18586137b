import Configuration
import Core
import Foundation
import Synchronization
import Testing

@testable import Filter

/// Lines of a few KiB that make a stock regex backtrack deeply: a user name of 4,000 `a ` made PCRE2's JIT run out
/// of its default 32 KiB stack ("JIT stack limit reached"), so the line was dropped as "at match limit" while
/// fail2ban matched it and banned the address — an attacker's way out of every ban. Compared line by line with
/// fail2ban, up to the 64 KiB line limit.
@Suite(.enabled(if: Oracle.available), .blocking) struct BacktrackingLineTests {
    static let sizes = [100, 2_000, 4_000, 8_000, 16_000, 32_000, 64_000]

    static func lines(_ make: (String) -> String) -> [String] {
        sizes.flatMap { n in
            [
                make(String(repeating: "a ", count: n / 2)), make(String(repeating: " rhost=x", count: n / 8)),
                make(String(repeating: " for ", count: n / 5)),
            ]
        }.filter { $0.utf8.count <= Bounds.maximumLineLength }
    }

    struct Case: Sendable, CustomStringConvertible {
        var filter: String
        var line: @Sendable (String) -> String
        var description: String { filter }
    }

    static let cases: [Case] = [
        Case(filter: "sshd") { user in
            "Feb 25 14:34:10 belka sshd[31602]: Failed password for invalid user \(user)root from 192.0.2.7 port 12345 ssh2"
        },
        Case(filter: "roundcube-auth") { user in
            "Jul 11 03:06:37 myhostname roundcube: IMAP Error: Login failed for \(user)x from 192.0.2.7. AUTHENTICATE PLAIN: A0002 NO Login failed. in /usr/share/roundcube/program/lib/Roundcube/rcube_imap.php on line 184 (POST /?_task=login&_action=login)"
        },
        Case(filter: "pam-generic") { user in
            "Feb 25 14:34:10 belka sshd[31602]: pam_unix(sshd:auth): authentication failure; logname= uid=0 euid=0 tty=ssh ruser=\(user) rhost=192.0.2.7  user=root"
        },
    ]

    @Test("padded user names: the same verdict as fail2ban, never dropped at a limit", arguments: cases)
    func sameAsFail2ban(_ c: Case) throws {
        let config = try ConfigTree(root: "/etc/fail2ban").loadFilter(c.filter)
        let lines = Self.lines(c.line)
        let problems = try Differential.compare(
            config, spec: ["filter": c.filter], lines: lines, dates: .syslog, compareTime: false)
        #expect(
            problems.isEmpty,
            "\(problems.count) differences\n\(problems.prefix(4).map { String($0.prefix(400)) }.joined(separator: "\n"))"
        )
        let p = try CompiledFilter.testing(config, dates: .syslog).makeProcessor()
        for line in lines { _ = p.process(line) }
        #expect(p.stats.matchLimit == 0)
    }

    @Test("deep matches on four threads at once: each thread's own JIT stack, the same verdicts as on one")
    func concurrentThreads() throws {
        let config = try ConfigTree(root: "/etc/fail2ban").loadFilter("sshd")
        let filter = try CompiledFilter.testing(config, dates: .syslog)
        let lines = Self.lines(Self.cases[0].line)
        @Sendable func run() -> (failures: Int, matchLimit: Int) {
            guard let p = try? filter.makeProcessor() else { return (-1, -1) }
            var failures = 0
            for _ in 0..<3 {
                for line in lines {
                    _ = p.process(line)
                    failures += p.failures.count
                }
            }
            return (failures, p.stats.matchLimit)
        }
        let alone = run()
        #expect(alone.failures > 0 && alone.matchLimit == 0, "\(alone) for \(lines.count) lines")
        let results = Mutex<[(failures: Int, matchLimit: Int)]>([])
        DispatchQueue.concurrentPerform(iterations: 4) { _ in
            let r = run()
            results.withLock { $0.append(r) }
        }
        #expect(results.withLock { $0.count } == 4)
        for r in results.withLock({ $0 }) { #expect(r == alone) }
    }
}
