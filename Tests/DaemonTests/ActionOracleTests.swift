import Foundation
import PortcullisTestKit
import Testing

@testable import Daemon

/// The nine action shapes of issue 7, run by fail2ban 1.0.2's own code (`CommandAction.replaceDynamicTags` and
/// `Utils.executeCmd`, imported from the installed package) and by Portcullis, with the same hostile values.
/// Neither may run a payload; where fail2ban hands an action its value intact, Portcullis hands over exactly the
/// same bytes; where fail2ban does not (an unquoted word that the shell splits, a value that ends a here-document, a
/// nested shell), Portcullis hands over the value itself. In single quotes and quoted here-documents both leave the
/// variable's name (fail2ban `$f2bV_matches`, Portcullis `${_pcl_1}`): that text may be code for another program.
@Suite(.blocking) struct ActionOracleTests {
    struct Shape: Sendable {
        var name: String
        var template: String
        /// What the action should receive for a value; nil where the shape itself splits or interprets it (then
        /// Portcullis must agree with fail2ban byte for byte).
        var expected: (@Sendable (String) -> String)?
        /// What Portcullis writes where the tag stays a variable's name (single quotes, a quoted here-document);
        /// fail2ban writes the same with its name, or the value itself when it has no character fail2ban escapes.
        var unexpanded: String? = nil
    }

    static let shapes: [Shape] = [
        Shape(name: "unquoted", template: "printf '%s' <matches> > OUT", expected: { $0 }),
        Shape(name: "double quotes", template: "printf '%s' \"<matches>\" > OUT", expected: { $0 }),
        Shape(name: "single quotes", template: "printf '%s' '<matches>' > OUT", expected: nil, unexpanded: "${_pcl_1}"),
        Shape(
            name: "msg=$(printf '%s' \"<matches>\")",
            template: "msg=\"$(printf '%s' \"<matches>\")\"; printf '%s' \"$msg\" > OUT", expected: Corpus.trimmed),
        Shape(name: "here-document", template: "cat > OUT <<EOF\n<matches>\nEOF", expected: { $0 + "\n" }),
        Shape(
            name: "quoted here-document", template: "cat > OUT <<'EOF'\n<matches>\nEOF", expected: nil,
            unexpanded: "${_pcl_1}\n"),
        Shape(
            name: "after a comment with an apostrophe",
            template: "# the user's name\nprintf '%s' \"<matches>\" > OUT", expected: { $0 }),
        Shape(name: "echo `echo \"<matches>\"`", template: "echo `echo \"<matches>\"` > OUT", expected: nil),
        Shape(name: "<F-USER>", template: "printf '%s' \"<F-USER>\" > OUT", expected: { $0 }),
        // Program text for a nested shell: fail2ban's inner shell sees an unset `$f2bV_matches` (empty), ours the
        // exported variable; neither parses the value.
        Shape(name: "sh -c '…'", template: "sh -c 'printf \"%s\" \"<matches>\" > OUT'", expected: { $0 }),
        Shape(name: "sh <<'EOF'", template: "sh <<'EOF'\nprintf '%s' \"<matches>\" > OUT\nEOF", expected: { $0 }),
        Shape(name: "eval '…'", template: "eval 'printf \"%s\" \"<matches>\"' > OUT", expected: { $0 }),
    ]

    static let oracle = #"""
        import json, sys, os, logging
        logging.disable(logging.CRITICAL)
        from fail2ban.server.action import CommandAction
        from fail2ban.server.utils import Utils
        cases = json.load(open(sys.argv[1]))
        results = []
        for c in cases:
            try: os.unlink(c["out"])
            except FileNotFoundError: pass
            cmd = CommandAction.replaceDynamicTags(c["template"], {"matches": c["value"], "ip": "192.0.2.1", "F-*": {"user": c["value"]}})
            Utils.executeCmd(cmd, 10, shell=True)
            try: out = open(c["out"], "rb").read().hex()
            except FileNotFoundError: out = None
            ran = os.path.exists(c["marker"])
            if ran: os.unlink(c["marker"])
            results.append({"out": out, "ran": ran})
        json.dump(results, open(sys.argv[2], "w"))
        """#

    @Test(
        "the nine shapes and nested shells: no payload in either; Portcullis prints what fail2ban prints, or the exact value"
    )
    func nineShapes() throws {
        try #require(Corpus.exists("/usr/bin/python3"), "python3 with fail2ban 1.0.2 is the oracle")
        let dir = try Corpus.makeDirectory()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let marker = dir + "/pwned"
        let out = dir + "/out"
        let values = Corpus.hostileValues(marker: marker)

        var cases: [[String: String]] = []
        for shape in Self.shapes {
            for value in values {
                cases.append([
                    "template": shape.template.replacing("OUT", with: out), "value": value, "out": out,
                    "marker": marker,
                ])
            }
        }
        let input = dir + "/cases.json"
        let output = dir + "/results.json"
        try JSONSerialization.data(withJSONObject: cases).write(to: URL(fileURLWithPath: input))
        try Self.oracle.write(toFile: dir + "/oracle.py", atomically: true, encoding: .utf8)
        let status = Corpus.run(["/usr/bin/python3", dir + "/oracle.py", input, output], timeout: 300)
        try #require(status == 0, "fail2ban oracle failed (\(status))")
        let results = try #require(
            JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: output))) as? [[String: Any]])
        try #require(results.count == cases.count)

        var index = 0
        var summary: [String] = []
        for shape in Self.shapes {
            var same = 0
            var better = 0
            for value in values {
                let f2b = results[index]
                index += 1
                #expect(
                    f2b["ran"] as? Bool == false, "fail2ban ran the payload in \(shape.name): \(value.debugDescription)"
                )
                let fail2banOut = (f2b["out"] as? String).map { Data(hexString: $0) }
                unlink(out)
                let rendered = ActionScript.render(
                    shape.template.replacing("OUT", with: out),
                    values: ActionValues(["ip": "192.0.2.1"], untrusted: ["matches": value], captures: ["user": value]))
                _ = CommandAction.runShell(rendered, timeout: 10)
                #expect(
                    !Corpus.exists(marker), "Portcullis ran the payload in \(shape.name): \(value.debugDescription)")
                unlink(marker)
                let ours = FileManager.default.contents(atPath: out)
                if let unexpanded = shape.unexpanded {
                    let theirs = fail2banOut.map { String(decoding: $0, as: UTF8.self) }
                    #expect(
                        ours == Data(unexpanded.utf8),
                        "\(shape.name) with \(value.debugDescription): \(ours.debugDescription)")
                    // fail2ban writes a value with none of the characters it escapes into the script as it is.
                    let inlined = !value.contains(where: { "\\#&;`|*?~<>^()[]{}$'\"\n\r".contains($0) })
                    #expect(
                        theirs == unexpanded.replacing("${_pcl_1}", with: "$f2bV_matches") || inlined,
                        "\(shape.name) with \(value.debugDescription): fail2ban \(theirs.debugDescription)")
                    if !inlined { same += 1 }
                    continue
                }
                if ours == fail2banOut {
                    same += 1
                    continue
                }
                // Different from fail2ban: only allowed where fail2ban did not deliver the value and we did.
                if let expected = shape.expected {
                    let exact = Data(expected(value).utf8)
                    #expect(
                        ours == exact && fail2banOut != exact,
                        "\(shape.name) with \(value.debugDescription): fail2ban \(fail2banOut.map { String(decoding: $0, as: UTF8.self) }.debugDescription), Portcullis \(ours.map { String(decoding: $0, as: UTF8.self) }.debugDescription)"
                    )
                    better += 1
                } else {
                    Issue.record(
                        "\(shape.name) with \(value.debugDescription): fail2ban \(fail2banOut.map { String(decoding: $0, as: UTF8.self) }.debugDescription), Portcullis \(ours.map { String(decoding: $0, as: UTF8.self) }.debugDescription)"
                    )
                }
            }
            summary.append("\(shape.name): \(same) same as fail2ban, \(better) exact where fail2ban was not")
        }
        print("fail2ban oracle, \(values.count) values per shape:\n  " + summary.joined(separator: "\n  "))
    }
}

extension Data {
    init(hexString: String) {
        var bytes: [UInt8] = []
        var it = hexString.utf8.makeIterator()
        while let h = it.next(), let l = it.next() {
            func v(_ c: UInt8) -> UInt8 { c >= 97 ? c - 87 : c - 48 }
            bytes.append(v(h) << 4 | v(l))
        }
        self.init(bytes)
    }
}
