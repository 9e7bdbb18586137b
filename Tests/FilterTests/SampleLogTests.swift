import Configuration
import Foundation
import PortcullisTestKit
import Testing

@testable import Filter

/// fail2ban's own filters on fail2ban's sample logs (both read from the installed package at test time),
/// compared line by line with fail2ban itself.
@Suite(.enabled(if: Oracle.available), .blocking) struct SampleLogTests {
    static let logs = "/usr/lib/python3/dist-packages/fail2ban/tests/files/logs/"

    static func sampleLines(_ name: String) throws -> [String] {
        let text = try String(contentsOfFile: logs + name, encoding: .utf8)
        return text.split(separator: "\n", omittingEmptySubsequences: true).map(String.init).filter {
            !$0.hasPrefix("#") && !$0.trimmingCharacters(in: .whitespaces).isEmpty
        }
    }

    struct Case: Sendable, CustomStringConvertible {
        var filter: String
        var opts: [String: String]
        var description: String { opts.isEmpty ? filter : "\(filter)\(opts)" }
    }

    static let cases: [Case] = [
        Case(filter: "sshd", opts: [:]),
        Case(filter: "sshd", opts: ["mode": "aggressive"]),
        Case(filter: "sshd", opts: ["mode": "ddos"]),
        Case(filter: "postfix", opts: [:]),
        Case(filter: "postfix", opts: ["mode": "aggressive"]),
        Case(filter: "dovecot", opts: [:]),
    ]

    @Test(arguments: cases) func filterAgreesWithFail2ban(_ c: Case) throws {
        let spec =
            c.opts.isEmpty
            ? c.filter : c.filter + "[" + c.opts.map { "\($0.key)=\($0.value)" }.joined(separator: ",") + "]"
        let config = try ConfigTree(root: "/etc/fail2ban").loadFilter(spec)
        let lines = try Self.sampleLines(c.filter)
        for checkAll in [false, true] {
            let problems = try Differential.compare(
                config, spec: ["filter": c.filter, "opts": c.opts], lines: lines, checkAll: checkAll, dates: .syslog,
                compareTime: false)
            #expect(
                problems.isEmpty,
                "checkAll=\(checkAll): \(problems.count) differences\n\(problems.prefix(8).joined(separator: "\n"))")
        }
    }
}
