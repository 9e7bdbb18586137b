import Glibc
import Testing

@testable import Daemon

@Suite struct CommandActionTests {
    @Test func referencesPerShellContext() {
        let values = ActionValues(["ip": "192.0.2.1", "name": "sshd"], untrusted: ["matches": "x'$(id)"])
        let r = ActionScript.render("echo <matches> \"<matches>\" '<matches>' <ip> <name> <unknown>", values: values)
        #expect(
            r.script
                == "_pcl_1=${1}; export _pcl_1; set --\necho \"${_pcl_1}\" \"${_pcl_1}\" '${_pcl_1}' 192.0.2.1 sshd <unknown>"
        )
        #expect(r.arguments == ["x'$(id)"])
        // No value, no prefix.
        #expect(ActionScript.render("ban <ip>", values: values).script == "ban 192.0.2.1")
    }

    @Test func reportsStatusAndTimesOut() async throws {
        let failing = CommandAction(name: "t", commands: ["actionban": "exit 3"])
        #expect(await failing.run("actionban", values: ActionValues())?.status == 3)
        #expect(await failing.run("actionunban", values: ActionValues()) == nil)
        let slow = CommandAction(name: "t", commands: ["actionban": "sleep 30"], timeout: 0.3)
        let r = try #require(await slow.run("actionban", values: ActionValues()))
        #expect(r.timedOut)
    }
}
