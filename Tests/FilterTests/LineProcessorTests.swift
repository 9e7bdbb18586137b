import Configuration
import Core
import Foundation
import PortcullisTestKit
import Testing

@testable import Filter

func definition(
    _ failregex: [String], ignore: [String] = [], prefregex: String? = nil, maxlines: Int? = nil
) -> FilterConfiguration {
    FilterConfiguration(
        name: "t", file: "t.conf", failregex: failregex.map { ConfigValue($0) },
        ignoreregex: ignore.map { ConfigValue($0) }, prefregex: prefregex.map { ConfigValue($0) }, maxlines: maxlines)
}

@Suite struct FilterErrorTests {
    @Test func regexWithoutAddressNamesFileAndLine() {
        let def = FilterConfiguration(
            name: "t", file: "/etc/fail2ban/filter.d/t.conf",
            failregex: [
                ConfigValue(
                    "^ok from <HOST>$", location: SourceLocation(file: "/etc/fail2ban/filter.d/t.conf", line: 3)),
                ConfigValue(
                    "^user <F-USER>\\S+</F-USER>$",
                    location: SourceLocation(file: "/etc/fail2ban/filter.d/t.conf", line: 4)),
            ])
        #expect {
            try CompiledFilter(def)
        } throws: { error in
            guard let e = error as? FilterError else { return false }
            return e.code == .noFailureID && e.location?.line == 4
                && e.description.hasPrefix("/etc/fail2ban/filter.d/t.conf:4: no failure-id group in '^user")
        }
    }

    @Test func prefregexAddressOrIdSatisfiesTheRule() throws {
        _ = try CompiledFilter(
            definition(["^failed$"], prefregex: "^<F-MLFID>\\S+</F-MLFID> <F-CONTENT>.+</F-CONTENT>$"))
        _ = try CompiledFilter(definition(["^failed$"], prefregex: "^<HOST> <F-CONTENT>.+</F-CONTENT>$"))
        #expect(throws: FilterError.self) {
            try CompiledFilter(definition(["^failed$"], prefregex: "^\\S+ <F-CONTENT>.+</F-CONTENT>$"))
        }
    }

    @Test func badRegexCarriesPCRE2MessageAndLocation() {
        let def = FilterConfiguration(
            name: "t", file: "t.conf",
            failregex: [ConfigValue("^from <HOST> (unclosed$", location: SourceLocation(file: "t.conf", line: 9))])
        #expect {
            try CompiledFilter(def)
        } throws: { error in
            guard let e = error as? FilterError else { return false }
            return e.code == .badRegex && e.location == SourceLocation(file: "t.conf", line: 9)
                && e.message.contains("missing closing parenthesis")
        }
    }

    @Test func duplicateGroupIsAnError() {
        #expect(throws: FilterError.self) { try CompiledFilter(definition(["^<HOST> then <HOST>$"])) }
    }

    @Test func emptyRegexAndBadMaxLines() {
        #expect(throws: FilterError.self) { try CompiledFilter(definition(["  "])) }
        #expect(throws: FilterError.self) { try CompiledFilter(definition(["<HOST>"], maxlines: 0)) }
    }

    @Test func badIgnoreregexAndPrefregexAreReported() {
        #expect(throws: FilterError.self) { try CompiledFilter(definition(["<HOST>"], ignore: ["(x"])) }
        #expect(throws: FilterError.self) { try CompiledFilter(definition(["<HOST>"], prefregex: "[x")) }
    }
}

@Suite struct LineProcessorTests {
    static let sshd: FilterConfiguration? = try? ConfigTree(root: "/etc/fail2ban").loadFilter("sshd[mode=aggressive]")

    @Test(.enabled(if: sshd != nil)) func attackerControlledUserCannotChooseTheAddress() throws {
        let p = try CompiledFilter.testing(try #require(Self.sshd), dates: .syslog).makeProcessor()
        let cases = [
            (
                "Nov 28 09:16:05 srv sshd[32310]: Failed password for invalid user root from 192.0.2.9 port 22 from 198.51.100.7 port 4242 ssh2",
                "198.51.100.7"
            ),
            (
                "Nov 28 09:16:05 srv sshd[32311]: Failed password for root from 192.0.2.9 port 22 from 198.51.100.7 port 4242 ssh2",
                "198.51.100.7"
            ),
            (
                "Nov 28 09:16:05 srv sshd[32312]: Invalid user root from 192.0.2.9 from 198.51.100.8 port 4242",
                "198.51.100.8"
            ),
            (
                "Nov 28 09:16:05 srv sshd[32313]: Connection closed by authenticating user root from 192.0.2.9 port 22 198.51.100.9 port 4242 [preauth]",
                "198.51.100.9"
            ),
        ]
        for (line, address) in cases {
            #expect(p.process(line) == .matched, "\(line)")
            #expect(p.failures.map(\.address) == [IPAddress(address)], "\(line)")
        }
    }

    @Test func badBytesAreProcessedWithoutCrashing() throws {
        let p = try CompiledFilter.testing(definition(["^ Failed for \\S* from <HOST>( port \\d+)?$"])).makeProcessor()
        // Invalid UTF-8 in the user name, the address is still found.
        var line =
            Array("2024-05-01 12:00:00 Failed for ".utf8) + [0xFF, 0xC3, 0x28, 0x80] + Array(" from 192.0.2.3".utf8)
        #expect(line.withUnsafeBufferPointer { p.process($0) } == .matched)
        #expect(p.failures.first?.address == IPAddress("192.0.2.3"))
        // NUL bytes.
        line = Array("2024-05-01 12:00:00 Failed for a\0b from 192.0.2.4".utf8)
        #expect(line.withUnsafeBufferPointer { p.process($0) } == .matched)
        #expect(p.failures.first?.address == IPAddress("192.0.2.4"))
        // A CR at the end is kept, as fail2ban keeps it: `$` does not match before it.
        #expect(p.process("2024-05-01 12:00:00 Failed for a from 192.0.2.5\r") == .missed)
        // Empty line, line of only the date.
        #expect(p.process("") == .missed)
        #expect(p.process("2024-05-01 12:00:00") == .missed)
        // A 1 MB line is longer than the maximum: skipped whole, never matched from a prefix.
        let big = "2024-05-01 12:00:00 Failed for " + String(repeating: "x", count: 1 << 20) + " from 192.0.2.6"
        #expect(p.process(big) == .tooLong)
        let huge = [UInt8](repeating: 0x80, count: 1 << 20)
        #expect(huge.withUnsafeBufferPointer { p.process($0) } == .tooLong)
        #expect(p.stats.lines == 5)
        #expect(p.stats.tooLong == 2)
    }

    @Test func maxLineLengthIsConfigurable() throws {
        let def = definition(["from <HOST>$"])
        let long = "2024-05-01 12:00:00 " + String(repeating: "y", count: 70_000) + " from 192.0.2.7"
        let capped = try CompiledFilter.testing(def).makeProcessor()
        #expect(capped.process(long) == .tooLong)
        #expect(capped.failures.isEmpty)
        let wide = try CompiledFilter.testing(def, options: FilterOptions(maxLineLength: 1 << 17)).makeProcessor()
        #expect(wide.process(long) == .matched)
    }

    @Test func firstMatchingFailregexWinsAndStatsCount() throws {
        let def = definition(
            ["^ a from <HOST>", "^ a from (?:<HOST>)", "^ b from <HOST>"], ignore: ["^ b from 192\\.0\\.2\\.9$"])
        let p = try CompiledFilter.testing(def).makeProcessor()
        #expect(p.process("2024-05-01 12:00:00 a from 192.0.2.1") == .matched)
        #expect(p.failures.map(\.regexIndex) == [0])
        #expect(p.process("2024-05-01 12:00:01 b from 192.0.2.2") == .matched)
        #expect(p.process("2024-05-01 12:00:02 b from 192.0.2.9") == .ignored)
        #expect(p.process("2024-05-01 12:00:03 c from 192.0.2.9") == .missed)
        let s = p.stats
        #expect((s.lines, s.matched, s.ignored, s.missed) == (4, 2, 1, 1))
        #expect(s.failregexHits == [1, 0, 1])
        #expect(s.ignoreregexHits == [1])
        #expect(p.failures.isEmpty)
    }

    @Test func journalLinesCarryTheirTime() throws {
        let p = try CompiledFilter.testing(definition(["^from <HOST>$"])).makeProcessor()
        var line = "from 192.0.2.1"
        #expect(line.withUTF8 { p.process($0, time: 1234.5) } == .matched)
        #expect(p.failures.first?.time == 1234.5)
    }
}

/// Prefregex, ignoreregex and multi-line buffers compared with fail2ban.
@Suite(.enabled(if: Oracle.available), .blocking) struct LineSemanticsTests {
    func agree(
        _ fail: [String], ignore: [String] = [], prefregex: String? = nil, maxlines: Int? = nil, _ lines: [String]
    ) throws {
        var spec: [String: Any] = ["failregex": fail, "ignoreregex": ignore]
        if let prefregex { spec["prefregex"] = prefregex }
        if let maxlines { spec["maxlines"] = maxlines }
        let def = definition(fail, ignore: ignore, prefregex: prefregex, maxlines: maxlines)
        for checkAll in [false, true] {
            let problems = try Differential.compare(def, spec: spec, lines: lines, checkAll: checkAll)
            #expect(problems.isEmpty, "checkAll=\(checkAll)\n\(problems.joined(separator: "\n"))")
        }
    }

    @Test func prefregexContentAndGroups() throws {
        try agree(
            ["^fail (?:<F-USER>\\S+</F-USER> )?from <HOST>$", "^<F-NOFAIL>ok</F-NOFAIL> from <HOST>$"],
            prefregex: "^ <F-USER>\\S+</F-USER> \\w+\\[\\d+\\]: <F-CONTENT>.+</F-CONTENT>$",
            [
                "2024-05-01 12:00:00 bob app[1]: fail from 192.0.2.1",
                "2024-05-01 12:00:01 bob app[1]: fail al from 192.0.2.1",
                "2024-05-01 12:00:02 bob app[1]: ok from 192.0.2.1",
                "2024-05-01 12:00:03 no prefix fail from 192.0.2.1",
                "2024-05-01 12:00:04 bob app[1]: other",
            ])
    }

    @Test func ignoreregexAfterAndBeforeFailregex() throws {
        let lines = [
            "2024-05-01 12:00:00 a from 192.0.2.1", "2024-05-01 12:00:01 a from 192.0.2.1 trusted",
            "2024-05-01 12:00:02 trusted only", "2024-05-01 12:00:03 d from 192.0.2.4",
        ]
        // Fewer failregexes than ignoreregexes + 3: ignoreregex only after a failregex matched.
        try agree(["^ a from <HOST>"], ignore: ["trusted"], lines)
        // Many failregexes: fail2ban checks ignoreregex first, so an ignore-only line is "ignored".
        try agree(
            ["^ a from <HOST>", "^ b from <HOST>", "^ c from <HOST>", "^ d from <HOST>"], ignore: ["trusted"], lines)
    }

    @Test func multiLineBuffer() throws {
        let lines = (0..<12).map { i in
            "2024-05-01 12:00:\(String(format: "%02d", i)) "
                + [
                    "x", "a from 192.0.2.1", "y", "b", "z", "c from 192.0.2.2", "d", "e", "a from 192.0.2.3", "q", "r",
                    "b",
                ][i]
        }
        try agree(["^ a from <HOST>\\n(?:.*\\n)*? b$", "^ c from <HOST><SKIPLINES> e$"], maxlines: 3, lines)
        try agree(["^ a from <HOST>\\n(?:.*\\n)*? b$"], maxlines: 5, lines)
    }

    @Test func multiLineBufferWithPrefregex() throws {
        let lines = (0..<8).map { i in
            "2024-05-01 12:00:0\(i) "
                + [
                    "p: a from 192.0.2.1", "p: a from 192.0.2.4", "p: b", "q: c", "p: a from 192.0.2.2",
                    "p: a from 192.0.2.3", "p: b", "p: b",
                ][i]
        }
        try agree(
            ["^a from <HOST>$", "^a from <HOST>\\n(?:.*\\n)*?b$"], prefregex: "^ p: <F-CONTENT>.+</F-CONTENT>$",
            maxlines: 3,
            lines)
    }
}

@Suite struct CombinedPrecheckTests {
    @Test func anchoredFailregexesLetTheCombinedMatchPickTheRegex() throws {
        let anchored = try CompiledFilter(
            definition(["^a (?P<x>x)? from <HOST>", "^b from <HOST>", "^(?:c|d) from <HOST>"]))
        #expect(anchored.combined != nil && anchored.combinedSelectsRegex)
        #expect(anchored.combinedBranchGroups == [1, 6, 10])  // <HOST> has three groups
        let p = try anchored.makeProcessor()
        #expect(p.process("d from 192.0.2.1") == .matched)
        #expect(p.failures.first?.regexIndex == 2)
        #expect(p.process("a  from 192.0.2.1") == .matched)
        #expect(p.failures.first?.regexIndex == 0)

        // Unanchored: the leftmost match is not necessarily the first regex; every regex is tried in order.
        let loose = try CompiledFilter(definition(["later <HOST>", "^early .* later <HOST>"]))
        #expect(!loose.combinedSelectsRegex)
        let q = try loose.makeProcessor()
        #expect(q.process("early x later 192.0.2.1") == .matched)
        #expect(q.failures.first?.regexIndex == 0)

        // Numbered back-references cannot be combined.
        let numbered = try CompiledFilter(definition([#"^(a)\1 <HOST>"#, "^b <HOST>"]))
        #expect(numbered.combined == nil)
        let r = try numbered.makeProcessor()
        #expect(r.process("aa 192.0.2.1") == .matched)
    }

    @Test(.enabled(if: LineProcessorTests.sshd != nil)) func sshdUsesTheCombinedShortcut() throws {
        let f = try CompiledFilter(try #require(LineProcessorTests.sshd))
        #expect(f.combined != nil)
        #expect(f.combinedSelectsRegex)
    }
}

extension LineSemanticsTests {
    @Test func ignoreregexIsNotMultiLine() throws {
        let lines = (0..<6).map { i in
            "2024-05-01 12:00:0\(i) "
                + ["a from 192.0.2.1", "x", "a from 192.0.2.2", "a from 192.0.2.3", "y", "a from 192.0.2.4"][i]
        }
        try agree(["^ a from <HOST>$"], ignore: ["^ a from 192\\.0\\.2\\.[23]$", "^ x$"], maxlines: 2, lines)
    }
}

extension CombinedPrecheckTests {
    @Test func combinedMatchLimitIsNotAVerdict() throws {
        // The first regex backtracks catastrophically on this line; the second matches it. The combined pattern
        // hits PCRE2's match limit, which must not make the line "missed".
        let def = definition([#"^(?:\w+\s?)*<HOST>!$"#, #"^\S+ .* from <HOST>$"#])
        let f = try CompiledFilter(def)
        #expect(f.combined != nil)
        let p = try f.makeProcessor()
        let line = String(repeating: "word ", count: 40) + "x from 192.0.2.1"
        let combined = try #require(f.combined).makeMatcher()
        #expect(!combined.matches(line))
        #expect(combined.lastError != 0)
        #expect(p.process(line) == .matched)
        #expect(p.failures.first?.regexIndex == 1)
    }
}

extension CombinedPrecheckTests {
    @Test func matchLimitIsCountedApartNotMissed() throws {
        // Only the catastrophic regex: nothing else can give a verdict, so the line hits the match limit.
        let def = definition([#"^(?:(?:\w+)+\s?)+ from <HOST> never$"#, #"^never <HOST>$"#])
        let p = try CompiledFilter(def).makeProcessor()
        let hostile = String(repeating: "word ", count: 40) + "x from 192.0.2.1"
        #expect(p.process(hostile) == .matchLimit)
        #expect(p.failures.isEmpty)
        #expect(p.process("plain line") == .missed)
        #expect(p.process("never 192.0.2.9") == .matched)
        #expect(p.stats.matchLimit == 1)
        #expect(p.stats.missed == 1)
        #expect(p.stats.lines == 3)
    }
}
