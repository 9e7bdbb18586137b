import Foundation
import PortcullisTestKit
import Testing

/// `portcullis-samples` on a config tree and annotated log of our own: filter variants, constraints, fields,
/// times (in the harness's CET/CEST zone), un-annotated lines, and one deliberately wrong annotation.
@Suite("portcullis-samples", .blocking)
struct SamplesHarnessTests {
    private func fixture() throws -> URL {
        let dir = try CLI.temporaryDirectory()
        try CLI.write(
            """
            [Definition]
            mode = normal
            mdre-normal =
            mdre-aggressive = demo-auth\\[\\d+\\]: Login aborted from <HOST>$
            failregex = demo-auth\\[\\d+\\]: Login failed for user <F-USER>\\S+</F-USER> from <HOST>$
                        <mdre-<mode>>

            """, to: "conf/filter.d/demo.conf", in: dir)
        try CLI.write(
            """
            # filterOptions: [{}, {"mode": "aggressive"}]

            # failJSON: { "time": "2005-08-14T12:00:00", "match": true, "host": "192.0.2.1", "user": "alice" }
            2005-08-14T12:00:00 gate demo-auth[1]: Login failed for user alice from 192.0.2.1
            # failJSON: { "constraint": "opts.get('mode') != 'aggressive'", "match": false }
            2005-08-14T12:00:01 gate demo-auth[1]: Login aborted from 192.0.2.2
            # failJSON: { "constraint": "opts.get('mode') == 'aggressive'", "time": "2005-08-14T12:00:01", "match": true, "host": "192.0.2.2" }
            2005-08-14T12:00:01 gate demo-auth[1]: Login aborted from 192.0.2.2
            2005-08-14T12:00:02 gate demo-auth[1]: Login ok for user bob from 192.0.2.3
            # failJSON: { "time": "2005-01-14T12:00:03", "match": true, "host": "192.0.2.4", "desc": "winter time" }
            2005-01-14T12:00:03 gate demo-auth[1]: Login failed for user dave from 192.0.2.4
            # failJSON: { "match": true, "host": "192.0.2.99", "desc": "deliberately wrong" }
            2005-08-14T12:00:04 gate demo-auth[1]: Login failed for user carol from 192.0.2.5

            """, to: "logs/demo", in: dir)
        return dir
    }

    @Test("counts passed and failed annotations and prints the failing one")
    func summary() throws {
        let dir = try fixture()
        let args = [
            "--conf", dir.appendingPathComponent("conf").path, "--logs", dir.appendingPathComponent("logs").path,
        ]
        let r = try CLI.run(args, executable: "portcullis-samples")
        #expect(r.status == 0, "\(r.stderr)")
        let lines = r.stdout.split(separator: "\n").map(String.init)
        #expect(lines.last == "samples: 4 passed, 1 failed", "\(r.stdout)")
        #expect(
            lines.contains { $0.hasPrefix("demo:12 [demo]: host: expected \"192.0.2.99\", got \"192.0.2.5\"") },
            "\(r.stdout)")
        #expect(lines.filter { $0.hasPrefix("demo:12 ") }.count == 2, "one report per variant")
        let strict = try CLI.run(args + ["--strict"], executable: "portcullis-samples")
        #expect(strict.status != 0)
    }

    @Test("an unknown option is a clear error")
    func badOption() throws {
        let r = try CLI.run(["--bogus"], executable: "portcullis-samples")
        #expect(r.status != 0)
        #expect(r.stderr.contains("unknown argument '--bogus'"))
    }
}
