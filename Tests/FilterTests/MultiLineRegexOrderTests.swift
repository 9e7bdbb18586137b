import Configuration
import Core
import Foundation
import PortcullisTestKit
import Testing

@testable import Filter

/// Several failregexes matching one multi-line buffer (maxlines > 1, every regex checked): once one takes its
/// lines, the next ones search the lines left. The old engine kept the first subject and its line positions for
/// the next regexes and indexed the shrunk buffer out of range: a crash from log text.
enum TwoRegexBuffer {
    // Our own filter: both regexes span buffered lines; on the third line both match the full buffer (regex 0 all
    // three lines, regex 1 the last two).
    static let failregex = [
        #"^ user \S+ login from <HOST>\n user \S+ failed\n peer \S+ reset$"#,
        #"^(?: user \S+ failed\n)? peer <HOST> reset$"#,
    ]
    static let lines = [
        "2024-05-01 12:00:00 user bob login from 192.0.2.10",
        "2024-05-01 12:00:01 user bob failed",
        "2024-05-01 12:00:02 peer 198.51.100.20 reset",
        "2024-05-01 12:00:03 peer 198.51.100.21 reset",
        "2024-05-01 12:00:04 user eve failed",
        "2024-05-01 12:00:05 peer 198.51.100.22 reset",
        "2024-05-01 12:00:06 nothing here",
    ]
    static var definition: FilterConfiguration { FilterTestSupport.definition(failregex, maxlines: 3) }
}

enum FilterTestSupport {
    static func definition(_ failregex: [String], maxlines: Int) -> FilterConfiguration {
        FilterConfiguration(
            name: "t", file: "t.conf", failregex: failregex.map { ConfigValue($0) }, maxlines: maxlines)
    }
}

@Suite struct MultiLineRegexOrderTests {
    @Test func secondRegexAfterTheFirstTookItsLinesDoesNotCrash() throws {
        let filter = try CompiledFilter.testing(TwoRegexBuffer.definition, options: FilterOptions(checkAllRegex: true))
        let p = try filter.makeProcessor()
        var found: [[String]] = []
        for line in TwoRegexBuffer.lines {
            p.process(line)
            found.append(p.failures.map { "\($0.regexIndex) \($0.host ?? "-")" })
        }
        // Line 3: regex 0 takes the three lines; regex 1 (which matched lines 2-3 of that buffer) then sees none.
        #expect(found[2] == ["0 192.0.2.10"])
        #expect(found[3] == ["1 198.51.100.21"])
        #expect(found[5] == ["1 198.51.100.22"])
        #expect(found[6].isEmpty)
    }
}

@Suite(.enabled(if: Oracle.available), .blocking) struct MultiLineRegexOrderOracleTests {
    @Test func twoRegexesOverOneBufferAgreeWithFail2ban() throws {
        let spec: [String: Any] = ["failregex": TwoRegexBuffer.failregex, "maxlines": 3]
        for checkAll in [false, true] {
            let problems = try Differential.compare(
                TwoRegexBuffer.definition, spec: spec, lines: TwoRegexBuffer.lines, checkAll: checkAll)
            #expect(problems.isEmpty, "checkAll=\(checkAll)\n\(problems.joined(separator: "\n"))")
        }
    }

    static let fail2ban = "/usr/lib/python3/dist-packages/fail2ban"
    static let testFilter = fail2ban + "/tests/config/filter.d/zzz-sshd-obsolete-multiline.conf"
    static let sshdLog = fail2ban + "/tests/files/logs/sshd"

    /// fail2ban's own multi-line test filter (copied into a temporary tree at test time only, its include pointed at
    /// the installed common.conf) over fail2ban's sshd sample log: `portcullis regex` agrees with fail2ban-regex.
    @Test func fail2banMultiLineTestFilterAgreesWithFail2banRegex() throws {
        let fm = FileManager.default
        #expect(fm.fileExists(atPath: Self.testFilter), "fail2ban's test filter missing (scripts/deps.sh --test)")
        #expect(fm.fileExists(atPath: "/etc/fail2ban/filter.d/common.conf"), "fail2ban not installed")
        #expect(fm.fileExists(atPath: "/usr/bin/fail2ban-regex"), "fail2ban-regex not installed")
        let tree = fm.temporaryDirectory.appendingPathComponent("pcl-zzz-ml-\(getpid())")
        defer { try? fm.removeItem(at: tree) }
        let filterDir = tree.appendingPathComponent("filter.d")
        try fm.createDirectory(at: filterDir, withIntermediateDirectories: true)
        let text = try String(contentsOfFile: Self.testFilter, encoding: .utf8)
        let rewritten = text.split(separator: "\n", omittingEmptySubsequences: false).map { line in
            line.hasPrefix("before") && line.hasSuffix("common.conf") ? "before = common.conf" : String(line)
        }.joined(separator: "\n")
        #expect(rewritten != text, "the test filter no longer includes common.conf by path")
        try rewritten.write(
            to: filterDir.appendingPathComponent("zzz-sshd-obsolete-multiline.conf"),
            atomically: true, encoding: .utf8)
        try fm.copyItem(
            atPath: "/etc/fail2ban/filter.d/common.conf",
            toPath: filterDir.appendingPathComponent("common.conf").path)
        let conf = filterDir.appendingPathComponent("zzz-sshd-obsolete-multiline.conf").path

        func run(_ exe: String, _ args: [String]) throws -> (status: Int32, out: String) {
            let p = Process()
            p.executableURL = URL(fileURLWithPath: exe)
            p.arguments = args
            p.currentDirectoryURL = tree
            let out = Pipe()
            p.standardOutput = out
            p.standardError = FileHandle.nullDevice
            try p.run()
            let data = out.fileHandleForReading.readDataToEndOfFile()
            p.waitUntilExit()
            return (p.terminationStatus, String(decoding: data, as: UTF8.self))
        }
        func linesSummary(_ s: String) -> String? {
            s.split(separator: "\n").first { $0.hasPrefix("Lines: ") }.map(String.init)
        }
        let ours = Self.productsDirectory.appendingPathComponent("portcullis").path
        let oursAll = try run(ours, ["regex", "--conf", tree.path, Self.sshdLog, "zzz-sshd-obsolete-multiline"])
        let theirsAll = try run("/usr/bin/fail2ban-regex", [Self.sshdLog, conf])
        #expect(oursAll.status == 0, "portcullis regex failed (crashed?): status \(oursAll.status)")
        #expect(theirsAll.status == 0)
        let theirsLines = try #require(linesSummary(theirsAll.out))
        #expect(!theirsLines.contains(" 0 matched"), "fail2ban matched nothing: the test exercises nothing")
        #expect(linesSummary(oursAll.out) == theirsLines)

        let oursIDs = try run(
            ours,
            [
                "regex", "--conf", tree.path, "--out", "id", Self.sshdLog,
                "zzz-sshd-obsolete-multiline",
            ])
        let theirsIDs = try run("/usr/bin/fail2ban-regex", ["--out", "id", Self.sshdLog, conf])
        #expect(oursIDs.status == 0 && theirsIDs.status == 0)
        #expect(!theirsIDs.out.isEmpty)
        #expect(oursIDs.out == theirsIDs.out)
    }

    /// Directory holding the build products (the test bundle and `portcullis` live there).
    static let productsDirectory: URL = {
        let exe = URL(
            fileURLWithPath: (try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/exe"))
                ?? CommandLine.arguments[0])
        var dir = exe.deletingLastPathComponent()
        while dir.pathComponents.contains(where: { $0.hasSuffix(".xctest") }) { dir.deleteLastPathComponent() }
        return dir
    }()
}
