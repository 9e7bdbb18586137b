import Foundation
import PortcullisTestKit
import Testing

@testable import Daemon

/// Random template shapes built from shell fragments (quotes, substitutions, backquotes, here-documents,
/// comments, `case`, arithmetic, tags at command position) with values that are themselves commands: if the
/// renderer ever misread a context so that a reference stood unquoted where the shell runs words, `touch` would
/// run. A fixed seed keeps the corpus the same from run to run.
@Suite(.blocking) struct ActionScriptRandomShapesTests {
    static let fragments = [
        "'", "\"", "`", "$(", ")", "${PCL_X:-", "}", "<<EOF\n", "\nEOF\n", "<<'Q'\n", "\nQ\n", "<<-T\n", "\n\tT\n",
        "#", "# it's\n", "\n", ";", "case x in ", " x) ", ";;", " esac", "\\", "echo ", "<matches>", "<F-USER>",
        " ", "$((", "))", "|", "(", "&&", "{ ", " }", "f() ", "\\\"", "\\`", "printf '%s' ", "<ip>", "=", "x",
        "then ", "if ", "fi", "do ", "done", "for i in 1; ", "! ", "$", "<", ">", "/dev/null",
    ]

    struct Generator: RandomNumberGenerator {
        var state: UInt64
        mutating func next() -> UInt64 {
            state &+= 0x9E37_79B9_7F4A_7C15
            var z = state
            z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
            z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
            return z ^ (z >> 31)
        }
    }

    @Test("1,500 random shapes × command-like values: no payload ever runs")
    func randomShapes() throws {
        let dir = try Corpus.makeDirectory()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let marker = dir + "/pwned"
        let values = [
            "touch \(marker)", "$(touch \(marker))", "`touch \(marker)`", "x;touch \(marker)", "\ntouch \(marker)\n",
            "EOF\ntouch \(marker)\nEOF",
        ]
        var rng = Generator(state: 0x5EED_0007)
        var runs = 0
        for _ in 0..<1500 {
            let count = Int.random(in: 2...14, using: &rng)
            // Every shape has a tag at command position somewhere, the spot a misread context would expose.
            var template = ["<matches> "]
            for _ in 0..<count { template.append(Self.fragments.randomElement(using: &rng)!) }
            template.shuffle(using: &rng)
            let text = template.joined()
            for value in values {
                let rendered = ActionScript.render(
                    text,
                    values: ActionValues(["ip": "192.0.2.1"], untrusted: ["matches": value], captures: ["user": value]))
                // Redirections in random shapes create files: in the test's directory, never the working one.
                var confined = rendered
                confined.script = "cd '\(dir)' || exit 99\n" + rendered.script
                _ = CommandAction.runShell(confined, timeout: 5)
                runs += 1
                #expect(
                    !Corpus.exists(marker),
                    "payload ran for \(text.debugDescription) with \(value.debugDescription)\n\(rendered.script)")
                unlink(marker)
            }
        }
        print("random shapes: \(runs) runs")
    }
}
