import Foundation
import PortcullisTestKit
import Testing

@testable import Configuration
@testable import Daemon

/// Helpers for the injection corpus: a private directory with the payload's marker, hostile values, running a
/// rendered script with the real `/bin/sh`.
enum Corpus {
    /// A fresh directory, world-writable (the stock-template runs drop to `nobody`) so a payload *could* write
    /// its marker there.
    static func makeDirectory() throws -> String {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("pcl-actions-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        chmod(dir, 0o1777)
        return dir
    }

    /// Values an attacker can put in a user name or a log line; each payload would create `marker`.
    static func hostileValues(marker: String) -> [String] {
        let touch = "touch \(marker)"
        return [
            "$(\(touch))",
            "`\(touch)`",
            "$(touch${IFS}\(marker))",
            "x'; \(touch); echo '",
            "x\"; \(touch); echo \"",
            "x\\\"; \(touch) #",
            "'\"'\"'$(\(touch))'",
            "a;\(touch)",
            "a|\(touch)",
            "a&&\(touch)&",
            "\n\(touch)\n",
            "EOF\n\(touch)\nEOF",
            "A\n\(touch)\nB\n\(touch)",
            "EOF",
            "line1\nline2\n",
            "\\",
            "\\\\'\\\"",
            "%s%n%x 100% %%",
            "* /* ? [a] ~root",
            "-n",
            "-e \\c\\n",
            "${IFS}$HOME $1 $@ ${_pcl_1} $_pcl_2",
            "$((1+1)) a[$(\(touch))]",
            ") ;; esac \(touch) ;;",
            "}; \(touch); {",
            "user name\twith tab",
            "ünïcødé ✓ ' \" ` $",
            "",
            "'",
            "\"",
            "`",
            "$",
            "$(",
        ]
    }

    static func read(_ path: String) -> String? {
        guard let data = FileManager.default.contents(atPath: path) else { return nil }
        return String(decoding: data, as: UTF8.self)
    }

    static func exists(_ path: String) -> Bool { access(path, F_OK) == 0 }

    /// `v` as a command substitution returns it: trailing newlines removed.
    static func trimmed(_ v: String) -> String {
        var s = Substring(v)
        while s.hasSuffix("\n") { s = s.dropLast() }
        return String(s)
    }

    /// Runs `argv` (absolute program path) and waits, at most `timeout` seconds; returns the exit status.
    @discardableResult
    static func run(_ argv: [String], environment: [String]? = nil, timeout: Double = 20) -> Int32 {
        var pid: pid_t = 0
        let cargs: [UnsafeMutablePointer<CChar>?] = argv.map { strdup($0) } + [nil]
        defer { for p in cargs { free(p) } }
        let cenv: [UnsafeMutablePointer<CChar>?]? = environment.map { $0.map { strdup($0) } + [nil] }
        defer { for p in cenv ?? [] { free(p) } }
        let rc: Int32
        if let cenv {
            rc = posix_spawn(&pid, argv[0], nil, nil, cargs, cenv)
        } else {
            rc = posix_spawn(&pid, argv[0], nil, nil, cargs, environ)
        }
        guard rc == 0 else { return -1 }
        let deadline = Date().addingTimeInterval(timeout)
        var status: Int32 = 0
        while waitpid(pid, &status, WNOHANG) == 0 {
            if Date() > deadline {
                kill(pid, SIGKILL)
                waitpid(pid, &status, 0)
                return -2
            }
            usleep(1000)
        }
        return (status & 0x7f) == 0 ? (status >> 8) & 0xff : 128 + (status & 0x7f)
    }
}

/// The proof corpus of issue 7 item 2: hand-written template shapes × hostile values run by the real `/bin/sh`.
/// No payload may run, and every action must receive its value byte for byte.
@Suite(.blocking) struct ActionScriptCorpusTests {
    /// A template shape: what it writes to `<out>` for a value `v` (nil: only "no payload" is checked, the shape
    /// field-splits or interprets the value by design).
    struct Shape: Sendable, CustomStringConvertible {
        var name: String
        var template: String
        var expected: (@Sendable (String) -> String)?
        var description: String { name }
    }

    static let exact: @Sendable (String) -> String = { $0 }
    static let trimmed: @Sendable (String) -> String = { Corpus.trimmed($0) }
    static let line: @Sendable (String) -> String = { $0 + "\n" }

    static let shapes: [Shape] = [
        Shape(name: "unquoted", template: "printf '%s' <matches> > <out>", expected: exact),
        Shape(name: "double quotes", template: "printf '%s' \"<matches>\" > <out>", expected: exact),
        // In single quotes the shell expands nothing: the tag stays the variable's name (fail2ban: `$f2bV_matches`).
        Shape(name: "single quotes", template: "printf '%s' '<matches>' > <out>", expected: { _ in "${_pcl_1}" }),
        Shape(
            name: "mixed quotes", template: "printf '%s' \"a\"'<matches>'\"b\"c<matches> > <out>",
            expected: { "a${_pcl_1}bc\($0)" }),
        Shape(
            name: "apostrophe in double quotes", template: "printf '%s' \"it's <matches>\" > <out>",
            expected: { "it's \($0)" }),
        Shape(name: "escaped quotes", template: "printf '%s' \"\\\"<matches>\\\"\" > <out>", expected: { "\"\($0)\"" }),
        Shape(
            name: "msg=$(printf '%s' \"…\") (issue shape)",
            template: "msg=\"$(printf '%s' \"<matches>\")\"; printf '%s' \"$msg\" > <out>", expected: trimmed),
        Shape(
            name: "nested $( $( ) )",
            template: "printf '%s' \"$(printf '%s' \"$(printf '%s' \"<matches>\")\")\" > <out>", expected: trimmed),
        Shape(
            name: "backquotes in double quotes",
            template: "printf '%s' \"`printf '%s' \"<matches>\"`\" > <out>", expected: trimmed),
        Shape(
            name: "backquote assignment", template: "x=`printf '%s' \"<matches>\"`; printf '%s' \"$x\" > <out>",
            expected: trimmed),
        Shape(name: "echo `echo \"…\"` (issue shape)", template: "echo `echo \"<matches>\"` > <out>", expected: nil),
        Shape(
            name: "nested backquotes",
            template: "x=`printf '%s' \"\\`printf '%s' <matches>\\`\"`; printf '%s' \"$x\" > <out>", expected: trimmed),
        Shape(name: "here-document (issue shape)", template: "cat > <out> <<EOF\n<matches>\nEOF", expected: line),
        Shape(
            name: "here-document, quoted delimiter",
            template: "cat > <out> <<'EOF'\nliteral $HOME `x` \\ \\$ <matches>\nEOF",
            expected: { _ in "literal $HOME `x` \\ \\$ ${_pcl_1}\n" }),
        Shape(name: "here-document <<-", template: "cat > <out> <<-EOF\n\t<matches>\n\tEOF", expected: line),
        Shape(
            name: "here-document <<- quoted", template: "cat > <out> <<-\"EOF\"\n\t<matches>\n\tEOF",
            expected: { _ in "${_pcl_1}\n" }),
        Shape(
            name: "two here-documents on one line",
            template: "cat <<A > <out>; cat <<'B' >> <out>\n<matches>\nA\n<matches>\nB",
            expected: { "\($0)\n${_pcl_1}\n" }),
        Shape(
            name: "here-document in $( )",
            template: "x=$(cat <<EOF\n<matches>\nEOF\n); printf '%s' \"$x\" > <out>", expected: trimmed),
        Shape(
            name: "here-document then command",
            template: "cat > <out> <<EOF\n<matches>\nEOF\nprintf '%s' \"<matches>\" >> <out>",
            expected: { "\($0)\n\($0)" }),
        Shape(
            name: "comment with apostrophe (issue shape)",
            template: "# don't do this\nprintf '%s' \"<matches>\" > <out>", expected: exact),
        Shape(
            name: "comment with quotes after code",
            template: "true # it's \"quoted\" `x`\nprintf '%s' \"<matches>\" > <out>", expected: exact),
        Shape(
            name: "comment in $( )",
            template: "x=$(printf '%s' \"<matches>\" # it's a comment\n); printf '%s' \"$x\" > <out>", expected: trimmed
        ),
        Shape(
            name: "case", template: "case \"<matches>\" in *) printf '%s' \"<matches>\" > <out>;; esac", expected: exact
        ),
        Shape(
            name: "case in $( )",
            template: "r=$(case x in x) printf '%s' \"<matches>\";; (y) true;; esac); printf '%s' \"$r\" > <out>",
            expected: trimmed),
        Shape(name: "function", template: "f() { printf '%s' \"$1\" > <out>; }; f \"<matches>\"", expected: exact),
        Shape(name: "function body", template: "f() { printf '%s' \"<matches>\" > <out>; }; f other", expected: exact),
        Shape(name: "assignment", template: "V=<matches>; printf '%s' \"$V\" > <out>", expected: exact),
        Shape(name: "${x:-…} quoted", template: "printf '%s' \"${PCL_UNSET:-<matches>}\" > <out>", expected: exact),
        Shape(name: "${x:-…} unquoted", template: "printf '%s' ${PCL_UNSET:-<matches>} > <out>", expected: exact),
        Shape(name: "line continuation", template: "printf '%s' \\\n  \"<matches>\" > <out>", expected: exact),
        Shape(name: "subshell", template: "(printf '%s' \"<matches>\") > <out>", expected: exact),
        Shape(name: "pipe", template: "printf '%s' \"<matches>\" | cat > <out>", expected: exact),
        Shape(name: "F-USER capture", template: "printf '%s' \"<F-USER>\" > <out>", expected: exact),
        Shape(
            name: "printf %b (stock mail shape)", template: "printf %b \"Lines:\\n<matches>\\n\" > <out>", expected: nil
        ),
        Shape(name: "echo (stock shape)", template: "echo \"<matches>\" > <out>", expected: nil),
        Shape(name: "arithmetic", template: "printf '%s' \"$(( <failures> + 1 ))\" > <out>", expected: { _ in "4" }),
        Shape(
            name: "trusted values in here-documents",
            template: "cat > <out> <<EOF\n<ip> <failures>\nEOF\ncat >> <out> <<'Q'\n<ip>\nQ",
            expected: { _ in "192.0.2.1 3\n192.0.2.1\n" }),
        // Odd and broken shapes: only "no payload" is asserted.
        Shape(name: "unterminated double quote", template: "printf '%s' \"<matches> > <out>", expected: nil),
        Shape(name: "unterminated single quote", template: "printf '%s' '<matches> > <out>", expected: nil),
        Shape(name: "unterminated $(", template: "x=$(printf '%s' <matches>", expected: nil),
        Shape(name: "unterminated backquote", template: "x=`printf '%s' <matches>", expected: nil),
        Shape(
            name: "tag as here-document delimiter", template: "cat << <matches>\n<matches>\n<matches>", expected: nil),
        Shape(name: "<<< after <<", template: "cat <<<matches> > <out>\n<matches>", expected: nil),
        Shape(
            name: "here-document in backquotes",
            template: "x=`cat <<EOF\n<matches>\nEOF\n`; printf '%s' \"$x\" > <out>", expected: nil),
        Shape(name: "arithmetic with a log value", template: "printf '%s' \"$(( <matches> ))\" > <out>", expected: nil),
        Shape(name: "${#…} with a tag", template: "printf '%s' \"${#<matches>}\" > <out>", expected: nil),
        Shape(
            name: "tag at command position", template: "<matches>\n<F-USER> arg\n$(<matches>)\n`<matches>`",
            expected: nil),
        Shape(
            name: "tag after a backslash", template: "printf '%s' \\<matches> \"\\<matches>\" > <out>", expected: nil),
        Shape(
            name: "quote closed by case pattern",
            template: "case '<matches>' in (*) printf '%s' \"<matches>\";; esac > <out>", expected: nil),
    ]

    @Test("control: the same payloads pasted into the script text do run (the marker check can fail)")
    func naivePastingRuns() throws {
        let dir = try Corpus.makeDirectory()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let marker = dir + "/pwned"
        var ran = 0
        for value in Corpus.hostileValues(marker: marker) {
            let naive = ActionScript(script: "printf '%s' \"\(value)\" > /dev/null", arguments: [])
            _ = CommandAction.runShell(naive, timeout: 10)
            if Corpus.exists(marker) { ran += 1 }
            unlink(marker)
        }
        #expect(ran >= 5)
    }

    @Test("no payload runs; each shape receives the value byte for byte", arguments: shapes)
    func shape(_ shape: Shape) throws {
        let dir = try Corpus.makeDirectory()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let marker = dir + "/pwned"
        let out = dir + "/out"
        for value in Corpus.hostileValues(marker: marker) {
            unlink(out)
            let values = ActionValues(
                ["out": out, "failures": "3", "ip": "192.0.2.1"], untrusted: ["matches": value],
                captures: ["user": value])
            let rendered = ActionScript.render(shape.template, values: values)
            let status = CommandAction.runShell(rendered, timeout: 10).status
            #expect(
                !Corpus.exists(marker), "payload ran: \(shape.name) with \(value.debugDescription)\n\(rendered.script)")
            unlink(marker)
            #expect(!rendered.script.contains("MARKER") && !rendered.script.contains(marker), "value in script text")
            if let expected = shape.expected {
                #expect(status == 0, "\(shape.name) failed with \(value.debugDescription): \(rendered.script)")
                #expect(
                    Corpus.read(out) == expected(value),
                    "\(shape.name) with \(value.debugDescription) received \(Corpus.read(out).debugDescription)\n\(rendered.script)"
                )
            }
        }
    }

    @Test("the script never contains a value's text, only references")
    func valuesNeverInScript() {
        for shape in Self.shapes {
            let r = ActionScript.render(
                shape.template,
                values: ActionValues(
                    ["out": "/o"], untrusted: ["matches": "PAYLOAD$(x)"], captures: ["user": "PAYLOAD"]))
            #expect(!r.script.contains("PAYLOAD"))
        }
    }
}
