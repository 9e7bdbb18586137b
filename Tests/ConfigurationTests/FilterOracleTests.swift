import Foundation
import PortcullisTestKit
import Testing

@testable import Configuration

/// Every filter in /etc/fail2ban/filter.d, in every mode it offers, resolved by us and by fail2ban's reader.
@Suite("Filter oracle", .blocking)
struct FilterOracleTests {
    struct Expected: Decodable, Sendable {
        var name: String
        var mode: String?
        var spec: String
        var error: String?
        var prefregex: String?
        var failregex: [String]?
        var ignoreregex: [String]?
        var maxlines: Int?
        var datepattern: String?
        var journalmatch: [[String]]?
    }

    static let root = "/etc/fail2ban"

    @Test("all installed filters resolve as fail2ban resolves them")
    func allFilters() throws {
        let data = try Oracle.run(filterOracleScript, [Self.root])
        let expected = try JSONDecoder().decode([Expected].self, from: data)
        #expect(expected.count > 80, "the oracle found too few filters")
        let tree = ConfigTree(root: Self.root)
        var agree = 0
        var differences: [String] = []
        for e in expected {
            var diffs: [String] = []
            do {
                let f = try tree.loadFilter(e.spec)
                if let err = e.error {
                    diffs.append("fail2ban fails (\(err)) but we load it")
                } else {
                    if f.prefregex?.value != e.prefregex {
                        diffs.append("prefregex: ours \(f.prefregex?.value ?? "nil") | f2b \(e.prefregex ?? "nil")")
                    }
                    if f.failregex.map(\.value) != e.failregex! {
                        diffs.append("failregex: ours \(f.failregex.map(\.value)) | f2b \(e.failregex!)")
                    }
                    if f.ignoreregex.map(\.value) != e.ignoreregex! {
                        diffs.append("ignoreregex: ours \(f.ignoreregex.map(\.value)) | f2b \(e.ignoreregex!)")
                    }
                    if f.maxlines != e.maxlines {
                        diffs.append(
                            "maxlines: ours \(String(describing: f.maxlines)) | f2b \(String(describing: e.maxlines))")
                    }
                    if f.datepattern?.value != e.datepattern {
                        diffs.append(
                            "datepattern: ours \(f.datepattern?.value ?? "nil") | f2b \(e.datepattern ?? "nil")")
                    }
                    if f.journalmatch != e.journalmatch! {
                        diffs.append("journalmatch: ours \(f.journalmatch) | f2b \(e.journalmatch!)")
                    }
                }
            } catch {
                if e.error == nil { diffs.append("we fail: \(error)") }
            }
            if diffs.isEmpty {
                agree += 1
            } else {
                differences.append("\(e.spec):\n  " + diffs.joined(separator: "\n  "))
            }
        }
        print("Filter oracle: \(agree)/\(expected.count) filter×mode resolutions agree with fail2ban")
        for d in differences { print("DIFF " + d) }
        #expect(differences.isEmpty)
    }
}
