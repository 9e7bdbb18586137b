import Foundation
import PortcullisTestKit
import Testing

@testable import Daemon

/// Templates whose single-quoted words or quoted here-documents are program text for another interpreter: a shell
/// (`sh -c '…'`, `eval '…'`, `su -c`, `ssh host '…'`, `sh <<'EOF'`), awk, sed or Python. Such text is read again as
/// code, so a value must never be spliced into it: fail2ban 1.0.2 leaves `$f2bV_matches` there and passes the value
/// in the environment, and so must Portcullis (`${_pcl_N}`, exported). A nested shell then expands the variable (the
/// right text, never parsed); any other interpreter sees the variable's name.
@Suite(.blocking) struct NestedInterpreterActionTests {
    struct Shape: Sendable, CustomStringConvertible {
        var name: String
        var template: String
        /// What `<out>` holds for a value (nil: only "no payload" is asserted).
        var expected: (@Sendable (String) -> String)?
        /// Read by awk, sed or Python rather than a shell: tried with payloads in those languages.
        var foreign = false
        var description: String { name }
    }

    static let shapes: [Shape] = [
        Shape(name: "sh -c '…\"<tag>\"…'", template: "sh -c 'printf \"%s\" \"<matches>\" > <out>'", expected: { $0 }),
        Shape(name: "sh -c '…<tag>…' unquoted", template: "sh -c 'printf \"%s\" <matches> > /dev/null'", expected: nil),
        Shape(name: "eval '…'", template: "eval 'printf \"%s\" \"<matches>\"' > <out>", expected: { $0 }),
        Shape(name: "F-USER in sh -c", template: "/bin/sh -c 'printf \"%s\" \"<F-USER>\" > <out>'", expected: { $0 }),
        Shape(
            name: "sh -c with -e and a label",
            template: "sh -e -c 'u=\"<F-USER>\"; printf \"%s\" \"$u\" > <out>' label", expected: { $0 }),
        Shape(
            name: "sh <<'EOF' (a script on standard input)",
            template: "sh <<'EOF'\nprintf '%s' \"<matches>\" > <out>\nEOF", expected: { $0 }),
        Shape(
            name: "sh <<-\"EOF\"",
            template: "sh <<-\"EOF\"\n\tprintf '%s' \"<F-USER>\" > <out>\n\tEOF", expected: { $0 }),
        Shape(name: "alias body", template: "alias p='printf \"%s\" \"<matches>\"'\np > <out>", expected: { $0 }),
        Shape(name: "trap handler", template: "trap 'printf \"%s\" \"<F-USER>\" > <out>' EXIT; true", expected: { $0 }),
        Shape(
            name: "find -exec sh -c", template: "find /dev/null -exec sh -c 'printf \"%s\" \"<matches>\" > <out>' \\;",
            expected: { $0 }),
        Shape(
            name: "awk program", template: "awk 'BEGIN { printf \"%s\", \"<matches>\" }' > /dev/null", expected: nil,
            foreign: true),
        Shape(
            name: "sed script", template: "printf 'a\\n' | sed 's/a/<F-USER>/' > /dev/null", expected: nil,
            foreign: true),
        Shape(
            name: "python3 -c", template: "python3 -c 'import sys; sys.stdout.write(\"<matches>\")' > /dev/null",
            expected: nil, foreign: true),
        Shape(
            name: "python3 on a quoted here-document",
            template: "python3 - <<'PY' > /dev/null\nprint(\"\"\"<matches>\"\"\")\nPY", expected: nil, foreign: true),
    ]

    /// Payloads in awk, sed and Python syntax, and a few of the corpus's shell ones.
    static func foreignPayloads(marker: String) -> [String] {
        Array(Corpus.hostileValues(marker: marker).prefix(4)) + [
            "\" ; system(\"touch \(marker)\") ; \"",
            "\"); system(\"touch \(marker)\"); (\"",
            "x/;1e touch \(marker)\n#",
            "x/e;e touch \(marker);#",
            "\")\nimport os; os.system(\"touch \(marker)\")\n(\"",
            "\"\"\")\nimport os; os.system(\"touch \(marker)\")\nprint(\"\"\"",
            "\" + __import__(\"os\").system(\"touch \(marker)\") * \"\" + \"",
        ]
    }

    @Test("no payload runs when a nested interpreter reads the template's text again", arguments: shapes)
    func nested(_ shape: Shape) throws {
        let dir = try Corpus.makeDirectory()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let marker = dir + "/pwned"
        let out = dir + "/out"
        for value in shape.foreign ? Self.foreignPayloads(marker: marker) : Corpus.hostileValues(marker: marker) {
            unlink(out)
            let values = ActionValues(
                ["out": out, "ip": "192.0.2.1"], untrusted: ["matches": value], captures: ["user": value])
            let rendered = ActionScript.render(shape.template, values: values)
            let status = CommandAction.runShell(rendered, timeout: 10).status
            #expect(
                !Corpus.exists(marker), "payload ran: \(shape.name) with \(value.debugDescription)\n\(rendered.script)")
            unlink(marker)
            if let expected = shape.expected {
                #expect(status == 0, "\(shape.name) failed with \(value.debugDescription): \(rendered.script)")
                #expect(
                    Corpus.read(out) == expected(value),
                    "\(shape.name) with \(value.debugDescription) received \(Corpus.read(out).debugDescription)\n\(rendered.script)"
                )
            }
        }
    }
}
