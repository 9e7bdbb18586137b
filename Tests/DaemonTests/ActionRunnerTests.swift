import Configuration
import Control
import Core
import Firewall
import Foundation
import Jail
import Logging
import PortcullisTestKit
import Testing

@testable import Daemon

/// Command actions off the counting path (issue 8 item 2): a slow `actionban` in one jail delays neither its own
/// counting nor another jail's native ban; its actions still run in order; a stop says what it abandons; the
/// queue is bounded.
@Suite(.blocking, .serialized) struct ActionRunnerTests {
    typealias Tree = BanCoordinatorTests.Tree
    let clock = ManualClock()
    let log = BanCoordinatorTests.Lines()

    func coordinator(_ firewall: any FirewallBackend) -> BanCoordinator {
        BanCoordinator(firewall: firewall, store: nil, clock: clock.reading, logger: { [log] in log.logger($0) })
    }

    func failures(_ address: String, _ count: Int) -> [FailureEvent] {
        (0..<count).map { _ in FailureEvent(address: IPAddress(address)!, time: clock.now) }
    }

    /// alpha: native ban plus the command action `slow` (arguments `slowArgs`); beta: native ban only.
    func makeTree(actionban: String, slowArgs: String = "") throws -> (Tree, String) {
        let tree = try Tree(
            """
            [DEFAULT]
            maxretry = 3
            findtime = 10m
            bantime = 600
            ignoreself = false
            banaction = nftables-multiport
            port = 0:65535

            [alpha]
            enabled = true
            filter = testauth
            logpath = /dev/null
            action = %(banaction)s[port="%(port)s", protocol="tcp"]
                     slow\(slowArgs)

            [beta]
            enabled = true
            filter = testauth
            logpath = /dev/null
            action = %(banaction)s[port="%(port)s", protocol="tcp"]
            """)
        mkdir(tree.dir + "/action.d", 0o755)
        let file = tree.dir + "/marks"
        try tree.write(
            "action.d/slow.conf",
            """
            [Definition]
            actionban = \(actionban.replacing("MARKS", with: file))
            actionunban = echo unban <ip> >> \(file)
            """)
        return (tree, file)
    }

    func read(_ path: String) -> String { (try? String(contentsOfFile: path, encoding: .utf8)) ?? "" }

    func banned(_ recorder: RecordingFirewall, _ jail: String, _ address: String) -> Bool {
        recorder.bannedKeys.contains(BanKey(address: IPAddress(address)!, jail: jail))
    }

    @Test("a 5 s actionban in one jail: the other jail's native ban reaches the firewall at once; ban, then unban")
    func slowActionDoesNotStallAnotherJail() async throws {
        // alpha's actionban waits for a gate file the test creates only after it checked beta: an order, no timing.
        let (tree, marks) = try makeTree(
            actionban: "while [ ! -e MARKS.go ]; do sleep 0.05; done; echo ban <ip> >> MARKS")
        let recorder = RecordingFirewall()
        let c = coordinator(recorder)
        try await c.start(try tree.setups(clock: clock))

        let t0 = ContinuousClock.now
        await c.record(jail: "alpha", events: failures("192.0.2.40", 3))
        let alphaReturned = ContinuousClock.now - t0
        #expect(banned(recorder, "alpha", "192.0.2.40"), "alpha's own native ban waits for nothing")

        let t1 = ContinuousClock.now
        await c.record(jail: "beta", events: failures("192.0.2.41", 3))
        let betaLatency = ContinuousClock.now - t1
        #expect(banned(recorder, "beta", "192.0.2.41"))
        // The proof is an order, not a time: beta's ban is in the firewall while alpha's actionban still sleeps.
        #expect(!read(marks).contains("ban 192.0.2.40"), "alpha's actionban finished before beta was banned")
        // Alpha keeps counting too.
        await c.record(jail: "alpha", events: failures("192.0.2.42", 3))
        #expect(banned(recorder, "alpha", "192.0.2.42"))
        #expect(!read(marks).contains("ban 192.0.2.40"))

        #expect(FileManager.default.createFile(atPath: marks + ".go", contents: nil))
        // The unban queued behind the slow ban runs after it; both of alpha's bans run, in order.
        #expect(await c.unban([IPAddress("192.0.2.40")!], jail: "alpha") == 1)
        #expect(await c.waitForActions(timeout: 30))
        #expect(read(marks) == "ban 192.0.2.40\nban 192.0.2.42\nunban 192.0.2.40\n")
        print(
            "slow actionban (5 s) in alpha: alpha's record returned after \(alphaReturned), beta's native ban after \(betaLatency)"
        )
        await c.shutdown()
    }

    @Test("stop waits up to the action timeout, then logs every job it abandons; nothing vanishes silently")
    func stopLogsWhatItAbandons() async throws {
        let (tree, marks) = try makeTree(actionban: "echo start <ip> >> MARKS; sleep 5", slowArgs: "[timeout=1]")
        let recorder = RecordingFirewall()
        let c = coordinator(recorder)
        try await c.start(try tree.setups(clock: clock))
        let addresses = ["192.0.2.50", "192.0.2.51", "192.0.2.52", "192.0.2.53"]
        for a in addresses { await c.record(jail: "alpha", events: failures(a, 3)) }
        await c.shutdown()
        let started = read(marks)
        let lines = log.all
        for a in addresses {
            let ran = started.contains("start \(a)\n")
            let abandoned = lines.contains { $0.contains("[alpha] not run at stop") && $0.hasSuffix("actionban \(a)") }
            #expect(ran != abandoned, "\(a): ran \(ran), logged as abandoned \(abandoned)")
        }
        #expect(lines.contains { $0.contains("not run at stop") }, "1 s timeout, 5 s actions: some must be abandoned")
        // A timed-out command is killed and reported.
        #expect(lines.contains { $0.contains("timed out after 1.0 s") })
    }

    @Test("the queue is bounded: overflow is refused, counted and logged once per thousand")
    func boundedQueue() async throws {
        let lines = BanCoordinatorTests.Lines()
        let runner = ActionRunner(
            jail: "j", actions: [CommandAction(name: "s", commands: ["actionban": "sleep 1"], timeout: 5)], capacity: 3,
            log: lines.logger("fail2ban.actions"))
        var refused = 0
        for i in 0..<10 {
            if !runner.enqueue(ActionRunner.Job(phase: "actionban", subject: "192.0.2.\(i)", values: ActionValues())) {
                refused += 1
            }
        }
        #expect(refused >= 6)
        #expect(runner.counters.dropped == refused)
        #expect(lines.all.filter { $0.contains("action queue full") }.count == 1)
        let abandoned = await runner.finish(timeout: 0)
        #expect(runner.counters.abandoned == abandoned.count)
        #expect(!runner.enqueue(ActionRunner.Job(phase: "actionban", values: ActionValues())), "finished: refuses")
    }
}

/// Every runtime tag fail2ban's `ActionInfo` and `ADD_REPL_TAGS` give an action reaches it through the daemon's
/// ban path; the ticket tags are compared with fail2ban 1.0.2's own `ActionInfo` for the same ticket.
@Suite(.blocking, .serialized) struct ActionTagCoverageTests {
    static let tags = [
        "ip", "family", "ip-rev", "ip-host", "fid", "failures", "time", "bantime", "bancount", "matches", "restored",
        "raw-ticket", "ipmatches", "ipjailmatches", "ipfailures", "ipjailfailures", "jail.banned", "jail.banned_total",
        "jail.found", "jail.found_total", "fq-hostname", "sh-hostname", "name", "actname", "port", "protocol",
        "F-USER", "F-ID", "F-NOPE",
    ]

    @Test("every tag is substituted on a real ban, with fail2ban's values")
    func everyTag() async throws {
        let clock = ManualClock()
        let log = BanCoordinatorTests.Lines()
        let lines = Self.tags.map { "\"\($0)=<\($0)>\"" }.joined(separator: " ")
        let tree = try BanCoordinatorTests.Tree(
            """
            [DEFAULT]
            maxretry = 2
            findtime = 10m
            bantime = 600
            ignoreself = false

            [alpha]
            enabled = true
            filter = testauth
            logpath = /dev/null
            port = ssh
            action = tags
            """)
        mkdir(tree.dir + "/action.d", 0o755)
        let out = tree.dir + "/tags"
        try tree.write(
            "action.d/tags.conf",
            "[Definition]\nactionban = printf '%%s\\0' \(lines) \"br=[<br>]\" \"sp=[<sp>]\" > \(out)\n")
        let c = BanCoordinator(firewall: nil, store: nil, clock: clock.reading, logger: { log.logger($0) })
        try await c.start(try tree.setups(clock: clock))
        let a = IPAddress("192.0.2.44")!
        let user = "bob'$(touch \(tree.dir)/pwned)"
        await c.record(
            jail: "alpha",
            events: [
                FailureEvent(address: a, time: clock.now, matches: ["line a"], fields: ["user": user]),
                FailureEvent(address: a, time: clock.now, matches: ["line b"], fields: ["user": user]),
            ])
        #expect(await c.waitForActions())
        let data = try #require(FileManager.default.contents(atPath: out), "actionban did not run")
        var got: [String: String] = [:]
        for field in data.split(separator: 0) {
            let text = String(decoding: field, as: UTF8.self)
            guard let eq = text.firstIndex(of: "=") else { continue }
            got[String(text[..<eq])] = String(text[text.index(after: eq)...])
        }
        #expect(access(tree.dir + "/pwned", F_OK) != 0)
        for tag in Self.tags + ["br", "sp"] {
            let v = try #require(got[tag], "\(tag) missing")
            #expect(!v.contains("<") || tag == "raw-ticket", "<\(tag)> not substituted: \(v)")
        }
        #expect(got["F-USER"] == user)
        #expect(got["F-NOPE"] == "")
        #expect(got["br"] == "[\n]")
        #expect(got["sp"] == "[ ]")
        #expect(got["name"] == "alpha")
        #expect(got["actname"] == "tags")
        #expect(got["port"] == "ssh")
        #expect(got["protocol"] == "tcp")
        #expect(got["jail.banned"] == "1")
        #expect(got["sh-hostname"] == HostNames.short && !HostNames.short.isEmpty)

        // fail2ban's ActionInfo for the same ticket.
        let script = """
            import sys, json
            from fail2ban.server.ticket import BanTicket
            from fail2ban.server.actions import Actions
            from fail2ban.server.ipdns import IPAddr
            t = BanTicket(IPAddr('192.0.2.44'), \(PythonRepr.float(clock.now)), ['line a', 'line b'])
            t.setBanTime(600); t.setAttempt(2); t.incrBanCount()
            ai = Actions.ActionInfo(t, None)
            print(json.dumps({k: str(ai[k]) for k in ['ip', 'family', 'ip-rev', 'ip-host', 'fid', 'failures', 'time', 'bantime', 'bancount', 'matches', 'restored', 'raw-ticket']}))
            """
        let py = tree.dir + "/oracle.py"
        try script.write(toFile: py, atomically: true, encoding: .utf8)
        let json = tree.dir + "/oracle.json"
        let status = Corpus.run(["/bin/sh", "-c", "/usr/bin/python3 \"$1\" > \"$2\"", "sh", py, json])
        try #require(status == 0, "fail2ban ActionInfo oracle failed")
        let expected = try #require(
            JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: json))) as? [String: String])
        for (tag, value) in expected {
            #expect(
                got[tag] == value,
                "<\(tag)>: Portcullis \(got[tag].debugDescription), fail2ban \(value.debugDescription)")
        }
    }
}
