import Glibc
import Testing
@testable import Daemon

@Suite struct CommandActionTests {
    @Test func quotesPerShellContext() {
        let hostile = "x'; touch /tmp/pwned; echo \"$(id)\" `id` \\"
        let tags = ["ip": "192.0.2.1", "matches": hostile, "name": "sshd"]
        // Bare word: one single-quoted word.
        #expect(CommandAction.substitute("echo <matches>", tags: tags) == "echo 'x'\\''; touch /tmp/pwned; echo \"$(id)\" `id` \\'")
        // Inside double quotes: \ " $ ` escaped.
        #expect(
            CommandAction.substitute("echo \"<matches>\"", tags: tags)
                == "echo \"x'; touch /tmp/pwned; echo \\\"\\$(id)\\\" \\`id\\` \\\\\"")
        // Inside single quotes: the quote is closed, escaped and reopened.
        #expect(CommandAction.substitute("echo '<matches>'", tags: tags) == "echo 'x'\\''; touch /tmp/pwned; echo \"$(id)\" `id` \\'")
        // Safe values stay as they are; unknown tags are left alone.
        #expect(CommandAction.substitute("ban <ip> in <name> <unknown>", tags: tags) == "ban 192.0.2.1 in sshd <unknown>")
    }

    @Test func hostileValuesNeverRunInAnyContext() async throws {
        let marker = "/tmp/pcl-pwned-\(getpid())"
        unlink(marker)
        let hostile = "a'\"; touch \(marker); echo \"$(touch \(marker))\" `touch \(marker)` \\"
        let out = "/tmp/pcl-action-out-\(getpid())"
        defer { unlink(out) }
        for template in ["printf '%s\\n' <matches> > \(out)", "printf '%s\\n' \"<matches>\" > \(out)", "printf '%s\\n' '<matches>' > \(out)"] {
            let action = CommandAction(name: "test", commands: ["actionban": template])
            let result = try #require(await action.run("actionban", tags: ["matches": hostile]))
            #expect(result.status == 0)
            #expect(access(marker, F_OK) != 0, "a substituted value ran as shell code: \(result.command)")
            // The value arrives intact as one argument.
            let f = try #require(fopen(out, "r"))
            var buf = [CChar](repeating: 0, count: 512)
            fgets(&buf, Int32(buf.count), f)
            fclose(f)
            let line = String(decoding: buf.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
            #expect(line == hostile + "\n")
        }
    }

    @Test func reportsStatusAndTimesOut() async throws {
        let failing = CommandAction(name: "t", commands: ["actionban": "exit 3"])
        #expect(await failing.run("actionban", tags: [:])?.status == 3)
        #expect(await failing.run("actionunban", tags: [:]) == nil)
        let slow = CommandAction(name: "t", commands: ["actionban": "sleep 30"], timeout: 0.3)
        let r = try #require(await slow.run("actionban", tags: [:]))
        #expect(r.timedOut)
    }
}
