import Configuration
import PortcullisTestKit
import Testing

@testable import Filter

/// The `<F-MLFID>` cache, compared line by line with fail2ban on sequences that exercise each rule.
@Suite(.enabled(if: Oracle.available), .blocking) struct MultiLineFailureTests {
    static let prefregex = #"^ <F-MLFID>\[\d+\]</F-MLFID> <F-CONTENT>.+</F-CONTENT>$"#
    static let failregex = [
        #"^fail <F-USER>\S+</F-USER> from <HOST>$"#,
        #"^<F-NOFAIL>nofail</F-NOFAIL> <F-USER>\S+</F-USER> from <HOST>$"#,
        #"^<F-MLFFORGET>forget</F-MLFFORGET> from <HOST>$"#,
        #"^<F-NOFAIL><F-MLFFORGET>nfforget</F-MLFFORGET></F-NOFAIL>(?: from <HOST>)?$"#,
        #"^<F-MLFFORGET><F-MLFGAINED>gained</F-MLFGAINED></F-MLFFORGET> <F-USER>\S+</F-USER> from <HOST>$"#,
        #"^<F-NOFAIL>conn</F-NOFAIL> from <HOST>$"#,
        #"^user <F-USER>\S+</F-USER>$"#,
        #"^fail2 <F-USER>\S+</F-USER>$"#,
        #"^gainednf <F-MLFGAINED>ok</F-MLFGAINED> <F-USER>\S+</F-USER>$"#,
    ]
    static var definition: FilterConfiguration {
        FilterConfiguration(
            name: "test", file: "test.conf", failregex: failregex.map { ConfigValue($0) },
            prefregex: ConfigValue(prefregex))
    }
    static var spec: [String: Any] { ["failregex": failregex, "prefregex": prefregex] }

    static func dated(_ lines: [String]) -> [String] {
        lines.enumerated().map { "2024-03-01 10:00:\(String(format: "%02d", $0.offset % 60)) \($0.element)" }
    }

    static let sequences: [[String]] = [
        [
            "[1] conn from 192.0.2.4", "[1] fail bob from 192.0.2.4", "[1] fail al from 192.0.2.4",
            "[1] forget from 192.0.2.4", "[1] fail x from 192.0.2.4",
        ],
        [
            "[2] nofail root from 192.0.2.5", "[2] nofail sudoer from 192.0.2.5", "[2] gained known from 192.0.2.5",
            "[2] fail x from 192.0.2.5",
        ],
        ["[3] nofail root from 192.0.2.6", "[3] nofail root from 192.0.2.6", "[3] gained known from 192.0.2.6"],
        [
            "[4] nofail root from 192.0.2.7", "[4] gained root from 192.0.2.7", "[4] nofail root from 192.0.2.7",
            "[4] fail root from 192.0.2.7",
        ],
        ["[5] conn from 192.0.2.8", "[5] user bob", "[5] fail2 al", "[5] nfforget", "[5] fail2 z"],
        ["[6] fail bob from 192.0.2.9", "[6] nfforget from 192.0.2.9", "[6] nfforget"],
        [
            "[7] gainednf ok bob", "[7] fail al from 192.0.2.1", "[8] nofail root from 192.0.2.2",
            "[8] gainednf ok root", "[8] fail al from 192.0.2.2", "[9] fail x from 192.0.2.3",
            "[9] nofail x from 192.0.2.3", "[9] fail y from 192.0.2.3",
        ],
        // Interleaved connections and an IPv6 address learnt from a later line.
        [
            "[10] user a", "[11] conn from 2001:db8::1", "[10] fail2 a", "[11] fail b from 2001:db8::1",
            "[10] forget from 192.0.2.10", "[11] nfforget",
        ],
    ]

    @Test(arguments: 0..<sequences.count) func sequenceMatchesFail2ban(index: Int) throws {
        let lines = Self.dated(Self.sequences[index])
        let problems = try Differential.compare(Self.definition, spec: Self.spec, lines: lines)
        #expect(problems.isEmpty, "\(problems.joined(separator: "\n"))")
    }

    @Test(arguments: 0..<sequences.count) func sequenceMatchesFail2banCheckingAll(index: Int) throws {
        let lines = Self.dated(Self.sequences[index])
        let problems = try Differential.compare(Self.definition, spec: Self.spec, lines: lines, checkAll: true)
        #expect(problems.isEmpty, "\(problems.joined(separator: "\n"))")
    }

    @Test func cacheKeepsAtMostOneHundredConnections() throws {
        var lines = (0..<105).map { "[\($0)] nofail u from 192.0.2.4" }
        lines += ["[0] fail x from 192.0.2.4", "[5] fail x from 192.0.2.4", "[104] fail x from 192.0.2.4"]
        let problems = try Differential.compare(Self.definition, spec: Self.spec, lines: Self.dated(lines))
        #expect(problems.isEmpty, "\(problems.joined(separator: "\n"))")
    }

    @Test func entriesExpireAfterFiveMinutes() throws {
        let clock = TestClock()
        let filter = try CompiledFilter.testing(Self.definition, options: FilterOptions(now: { clock.value }))
        let p = try filter.makeProcessor()
        #expect(p.process("2024-03-01 10:00:00 [1] conn from 192.0.2.4") == .missed)
        clock.value += 299
        #expect(p.process("2024-03-01 10:00:01 [1] fail bob from 192.0.2.4") == .matched)
        #expect(p.failures.first?.attempts == 2)
        #expect(p.process("2024-03-01 10:00:02 [2] conn from 192.0.2.4") == .missed)
        clock.value += 301
        #expect(p.process("2024-03-01 10:00:03 [2] fail bob from 192.0.2.4") == .matched)
        #expect(p.failures.first?.attempts == 1)
    }
}

final class TestClock: @unchecked Sendable {
    // SAFETY: tests use it from one thread.
    var value: Double = 1_000_000
}
