import Foundation
import PortcullisTestKit
import Testing

@testable import Daemon

/// Attacker's extra template shapes, beyond the corpus: no payload may run.
@Suite(.blocking) struct RedActionShapesTests {
    static let templates: [String] = [
        "printf '%s' $'<matches>' > <out>",
        "x=abc; printf '%s' \"${x#<matches>}\" > <out>",
        "x=abc; printf '%s' ${x%%<matches>} > <out>",
        "printf '%s' \\'<matches>\\' > <out>",
        "printf '%s' \\\"<matches>\\\" > <out>",
        "printf '%s' $(( $(printf '%s' 1) + <failures> )) > <out>",
        "printf '%s' $(printf '%s' $((1)) <matches>) > <out>",
        "printf '%s' \"$( (printf '%s' '<matches>') )\" > <out>",
        "printf '%s' $((printf '%s' '<matches>') ) > <out>",
        "cat > <out> <<<F-USER>\nx\n<F-USER>\n",
        "cat > <out> << \"EOF\"\n<matches>\nEOF\n",
        "cat > <out> <<E\"O\"F\n$(<matches>)\nEOF\n",
        "cat > <out> <<\\EOF\n<matches>`x`$(y)\nEOF\n",
        "cat > <out> <<EOF\n$(printf '%s' '<matches>')\n`printf '%s' \"<matches>\"`\nEOF\n",
        "printf '%s' \"<matches>\" > <out> #'\n",
        "printf '%s' x#<matches> > <out>",
        "printf '%s' \"${PCL_UNSET:-'<matches>'}\" > <out>",
        "printf '%s' ${PCL_UNSET:-\"<matches>\"} > <out>",
        "printf '%s' \"${PCL_UNSET:-$(printf '%s' \"<matches>\")}\" > <out>",
        "printf '%s' `printf '%s' \\`printf '%s' \\\\\\`printf <matches>\\\\\\`\\``  > <out>",
        "printf '%s' \"`printf '%s' '<matches>'`\" > <out>",
        "printf '%s' '`<matches>`' > <out>",
        "printf '%s' \"'\"<matches>\"'\" > <out>",
        "case x in (<matches>) true;; *) printf '%s' y > <out>;; esac",
        "case <matches> in x) ;; esac; printf '%s' \"<matches>\" > <out>",
        "for i in <matches>; do printf '%s' \"$i\"; done > <out>",
        "f() (printf '%s' \"<matches>\"); f > <out>",
        "{ printf '%s' <matches>; } > <out>",
        "printf '%s' \"<matches>\"\\\n'<matches>'\\\n<matches> > <out>",
        "printf '%s' \"${PCL_UNSET:=<matches>}\" > <out>",
        "printf '%s' \"$((<F-USER>))\" > <out>",
        "printf '%s' \"$(( <F-USER> ))\" > <out>",
        "x=<F-USER>; printf '%s' \"$((x))\" > <out>",
        "printf '%s' \"<matches\" > <out>",
        "printf '%s' <<matches>> > <out>",
        "printf '%s' \"<ip-host>\" '<fid>' <ipmatches> \"<ipjailmatches>\" > <out>",
        "printf '%s' $(cat <<'EOF'\n<matches>\nEOF\n) > <out>",
        "printf '%s' \"$(cat <<EOF\n'<matches>'\nEOF\n)\" > <out>",
        "alias p='printf %s'; p <matches> > <out>",
        "printf '%s' ~<matches> > <out>",
        "printf '%s' <matches>=<matches> > <out>",
        "<matches>=1 printf '%s' x > <out>",
        "printf '%s' \"$(echo \"$(echo '<matches>' # ')\" )\" ) \" > <out>",
    ]

    @Test("no payload runs in exotic shapes", arguments: templates)
    func exotic(_ template: String) throws {
        let dir = try Corpus.makeDirectory()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let marker = dir + "/pwned"
        let out = dir + "/out"
        for value in Corpus.hostileValues(marker: marker) + ["1)) ; touch \(marker) ; ((1", "x\0$(touch \(marker))"] {
            unlink(out)
            let values = ActionValues(
                ["out": out, "failures": "3", "ip": "192.0.2.1"],
                untrusted: [
                    "matches": value, "ip-host": value, "fid": value, "ipmatches": value, "ipjailmatches": value,
                ],
                captures: ["user": value])
            let rendered = ActionScript.render(template, values: values)
            _ = CommandAction.runShell(rendered, timeout: 10)
            #expect(
                !Corpus.exists(marker),
                "payload ran: \(template.debugDescription) with \(value.debugDescription)\n\(rendered.script)")
            unlink(marker)
        }
    }
}
