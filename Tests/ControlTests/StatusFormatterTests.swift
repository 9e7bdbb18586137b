import Foundation
import PortcullisTestKit
import Testing

@testable import Control

/// (command, reply) pairs covering every branch fail2ban-client's output formatting has.
let formatterCases: [([String], ControlValue)] = [
    (["ping"], "pong"),
    (["version"], "1.0.2"),
    (["stop"], .null),
    (["stop", "sshd"], .null),
    (["start", "sshd"], .null),
    (["add", "sshd", "auto"], "sshd"),
    (["flushlogs"], "rolled over"),
    (["echo", "a", "b"], ["a", "b"]),
    (["status"], [.tuple(["Number of jail", 1]), .tuple(["Jail list", "sshd"])]),
    (["status"], [.tuple(["Number of jail", 0]), .tuple(["Jail list", ""])]),
    (
        ["status", "sshd"],
        [
            .tuple([
                "Filter",
                [
                    .tuple(["Currently failed", 3]), .tuple(["Total failed", 17]),
                    .tuple(["File list", ["/var/log/auth.log", "/var/log/secure"]]),
                ],
            ]),
            .tuple([
                "Actions",
                [
                    .tuple(["Currently banned", 2]), .tuple(["Total banned", 9]),
                    .tuple(["Banned IP list", ["192.0.2.1", "2001:db8::1"]]),
                ],
            ]),
        ]
    ),
    (
        ["status", "sshd", "short"],
        [.tuple(["Filter", [.tuple(["Journal matches", ["_SYSTEMD_UNIT=sshd.service", "+", "_COMM=sshd"]])]])]
    ),
    (["banned"], [["sshd": ["192.0.2.1", "192.0.2.2"]], ["web": []]]),
    (["banned", "192.0.2.1", "192.0.2.9"], [["sshd"], []]),
    (["set", "sshd", "banip", "192.0.2.1"], 1),
    (["unban", "--all"], 0),
    (["get", "sshd", "maxretry"], 5),
    (["get", "sshd", "bantime"], -1),
    (["get", "sshd", "ignoreself"], true),
    (["get", "sshd", "bantime.increment"], .null),
    (["get", "sshd", "bantime.factor"], 1.5),
    (["get", "sshd", "usedns"], "warn"),
    (["set", "syslogsocket", "auto"], "auto"),
    (["get", "logtarget"], "/var/log/portcullis.log"),
    (["get", "loglevel"], "INFO"),
    (["get", "loglevel"], 20),
    (["get", "loglevel"], 40),
    (["get", "dbfile"], "/var/lib/portcullis/portcullis.sqlite3"),
    (["get", "dbfile"], .null),
    (["get", "dbpurgeage"], 86400),
    (["get", "dbpurgeage"], .null),
    (["get", "sshd", "logpath"], ["/var/log/auth.log"]),
    (["get", "sshd", "logpath"], ["/a.log", "/b.log", "/c.log"]),
    (["get", "sshd", "logpath"], []),
    (["set", "sshd", "addlogpath", "/x.log"], ["/x.log"]),
    (["get", "sshd", "logencoding"], "UTF-8"),
    (["get", "sshd", "journalmatch"], []),
    (["get", "sshd", "journalmatch"], [["_SYSTEMD_UNIT=sshd.service", "_COMM=sshd"], ["_COMM=sshd-session"]]),
    (["get", "sshd", "datepattern"], .null),
    (["get", "sshd", "datepattern"], .tuple([.null, "Default Detectors"])),
    (["get", "sshd", "datepattern"], .tuple(["%Y-%m-%d", "{^LN-BEG}Year-Month-Day"])),
    (["get", "sshd", "ignoreip"], []),
    (["get", "sshd", "ignoreip"], ["127.0.0.0/8", "::1", "192.0.2.0/24"]),
    (["get", "sshd", "failregex"], []),
    (["get", "sshd", "failregex"], ["^a <HOST>$", "^b <HOST>$"]),
    (["get", "sshd", "ignoreregex"], ["^ignored$"]),
    (["get", "sshd", "actions"], []),
    (["get", "sshd", "actions"], ["nftables", "sendmail"]),
    (["get", "sshd", "actionproperties", "nftables"], ["blocktype", "name"]),
    (["get", "sshd", "actionmethods", "nftables"], []),
    (["get", "sshd", "banip"], ["192.0.2.1", "192.0.2.2"]),
    (["get", "sshd", "banip", ","], ["192.0.2.1", "192.0.2.2"]),
    (["get", "sshd", "banip", "--with-time"], ["192.0.2.1 \t2026-01-01 00:00:00 + 600 = 2026-01-01 00:10:00", "x"]),
    (["get", "sshd", "banip"], []),
    (["get", "sshd", "matches"], ["line 'one'", "line \"two\"\t\u{1}"]),
    (["reload"], "OK"),
    (["get"], "odd"),
]

@Suite("StatusFormatter", .blocking)
struct StatusFormatterTests {
    @Test("prints exactly what fail2ban-client's formatter prints", .enabled(if: Python.available))
    func matchesFail2banClient() throws {
        // The oracle: fail2ban's own client-side formatter, fed the same command and value.
        var input = ""
        for (command, value) in formatterCases {
            input +=
                PythonRepr.render(.list(command.map { .string($0) })) + "\u{1}" + PythonRepr.render(value) + "\u{0}"
        }
        let script = """
            import sys, ast
            from fail2ban.client.beautifier import Beautifier
            out = []
            for case in sys.stdin.read().split('\\x00'):
                if not case: continue
                cmd, value = case.split('\\x01')
                b = Beautifier(ast.literal_eval(cmd))
                out.append(str(b.beautify(ast.literal_eval(value))))
            sys.stdout.write('\\x00'.join(out))
            """
        let expected = String(decoding: try Python.run(script, input: Array(input.utf8)), as: UTF8.self)
            .split(separator: "\0", omittingEmptySubsequences: false).map(String.init)
        #expect(expected.count == formatterCases.count)
        for ((command, value), want) in zip(formatterCases, expected) {
            #expect(StatusFormatter.format(value, for: command) == want, "\(command)")
        }
    }

    @Test("the status example from fail2ban's documentation layout")
    func statusLayout() {
        let text = StatusFormatter.format(
            [.tuple(["Number of jail", 1]), .tuple(["Jail list", "sshd"])], for: ["status"])
        #expect(text == "Status\n|- Number of jail:\t1\n`- Jail list:\tsshd")
    }

    @Test("errors print like fail2ban-client and exit 255")
    func errors() {
        #expect(
            StatusFormatter.render(.failure(.unknownJail("nosuch")), for: ["status", "nosuch"])
                == ("Sorry but the jail 'nosuch' does not exist", 255))
        #expect(
            StatusFormatter.render(.failure(ControlError(.incompleteCommand, "list index out of range")), for: ["get"])
                == ("Sorry but the command is invalid", 255))
        #expect(
            StatusFormatter.render(.failure(ControlError(.duplicateJail, "sshd")), for: ["add", "sshd"])
                == ("The jail 'sshd' already exists", 255))
        #expect(StatusFormatter.render(.failure(ControlError(.invalidArgument, "bad")), for: ["set"]) == ("bad", 255))
        #expect(StatusFormatter.render(.success(2), for: ["set", "sshd", "banip", "a", "b"]) == ("2", 0))
    }

    @Test("Python repr of strings picks quotes and escapes like Python", .enabled(if: Python.available))
    func reprMatchesPython() throws {
        let strings = [
            "plain", "it's", "say \"hi\"", "both ' and \"", "tab\t nl\n cr\r bs\\", "\u{0}\u{1f}\u{7f}\u{85}",
            "é ✓ 😀", "\u{200b}\u{2028}\u{a0}\u{ad}", "\u{e000}",
        ]
        let script = """
            import sys
            sys.stdout.write('\\x00'.join(repr(s) for s in sys.stdin.read().split('\\x01')))
            """
        let expected = String(
            decoding: try Python.run(script, input: Array(strings.joined(separator: "\u{1}").utf8)), as: UTF8.self
        )
        .split(separator: "\0", omittingEmptySubsequences: false).map(String.init)
        #expect(expected == strings.map(PythonRepr.quote))
    }
}
