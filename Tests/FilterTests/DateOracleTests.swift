import Foundation
import PortcullisTestKit
import Testing

@testable import Filter

/// Compares `DateDetector` with fail2ban 1.0.2's own date detection on fail2ban's sample logs.
@Suite(.serialized, .blocking) struct DateOracleTests {
    static var sampleLogs: [String] {
        let dir = DateTestSupport.logDirectory
        let names = (try? FileManager.default.contentsOfDirectory(atPath: dir)) ?? []
        return names.sorted().map { dir + "/" + $0 }.filter {
            var isDir: ObjCBool = false
            return FileManager.default.fileExists(atPath: $0, isDirectory: &isDir) && !isDir.boolValue
        }
    }

    @Test(.enabled(if: DateTestSupport.oracleAvailable))
    func defaultTemplatesAgreeOnEverySampleLog() throws {
        var agree = 0
        var total = 0
        var dated = 0
        var differences: [String] = []
        for path in Self.sampleLogs {
            let lines = try DateTestSupport.lines(of: path)
            let oracle = try DateTestSupport.oracle(logPath: path)
            let detector = try DateTestSupport.detector(now: DateTestSupport.sampleNow)
            let r = DateTestSupport.compare(
                lines: lines, oracle: oracle, detector: detector, label: (path as NSString).lastPathComponent)
            agree += r.agree
            total += r.total
            dated += r.dated
            differences += r.differences
        }
        print("date oracle (default templates): \(agree)/\(total) lines agree, \(dated) with a date")
        for d in differences.prefix(40) { print(d) }
        #expect(total > 1000)
        #expect(dated > 1000)
        #expect(differences.isEmpty, "\(differences.count) lines differ; first: \(differences.first ?? "")")
    }

    /// Every distinct filter datepattern over all sample logs in one stream (foreign formats, switches between
    /// formats), with a "now" in another year so that year inference differs from the files' own.
    @Test(.enabled(if: DateTestSupport.oracleAvailable))
    func everyFilterDatePatternAgreesOnAllSampleLogs() throws {
        let data = try DateTestSupport.run([
            DateTestSupport.python,
            DateTestSupport.oracleDirectory.appendingPathComponent("filter_datepatterns.py").path,
        ])
        let patterns = Set(try #require(try JSONSerialization.jsonObject(with: data) as? [String: String]).values)
        var all: [UInt8] = []
        for path in Self.sampleLogs {
            for line in try DateTestSupport.lines(of: path) { all += line + [0x0A] }
        }
        let file = FileManager.default.temporaryDirectory.appendingPathComponent("pcl-all-logs-\(UUID().uuidString)")
        try Data(all).write(to: file)
        defer { try? FileManager.default.removeItem(at: file) }
        let lines = try DateTestSupport.lines(of: file.path)
        let now = 1_167_609_600.0 + 3 * 3_600  // 2007-01-01 03:00 UTC
        var differences: [String] = []
        var agree = 0
        var total = 0
        for pattern in [nil] + patterns.sorted() as [String?] {
            let oracle = try DateTestSupport.oracle(logPath: file.path, datePattern: pattern, now: now)
            let detector = try DateTestSupport.detector(pattern, now: now)
            let r = DateTestSupport.compare(
                lines: lines, oracle: oracle, detector: detector, label: pattern ?? "defaults")
            agree += r.agree
            total += r.total
            differences += r.differences
        }
        print(
            "date oracle (defaults + \(patterns.count) distinct datepatterns x all sample logs): \(agree)/\(total) lines agree"
        )
        for d in differences.prefix(20) { print(d) }
        #expect(patterns.count > 10)
        #expect(differences.isEmpty, "\(differences.count) lines differ; first: \(differences.first ?? "")")
    }

    @Test(.enabled(if: DateTestSupport.oracleAvailable))
    func filterDatePatternsAgreeOnTheirSampleLogs() throws {
        let data = try DateTestSupport.run([
            DateTestSupport.python,
            DateTestSupport.oracleDirectory.appendingPathComponent("filter_datepatterns.py").path,
        ])
        let patterns = try #require(try JSONSerialization.jsonObject(with: data) as? [String: String])
        #expect(patterns.count > 20)
        var agree = 0
        var total = 0
        var dated = 0
        var filters = 0
        var differences: [String] = []
        for (filter, pattern) in patterns.sorted(by: { $0.key < $1.key }) {
            let path = DateTestSupport.logDirectory + "/" + filter
            guard FileManager.default.fileExists(atPath: path) else { continue }
            filters += 1
            let lines = try DateTestSupport.lines(of: path)
            let oracle = try DateTestSupport.oracle(logPath: path, datePattern: pattern)
            let detector = try DateTestSupport.detector(pattern, now: DateTestSupport.sampleNow)
            let r = DateTestSupport.compare(lines: lines, oracle: oracle, detector: detector, label: filter)
            agree += r.agree
            total += r.total
            dated += r.dated
            differences += r.differences
        }
        print(
            "date oracle (filters' datepattern, \(filters) filters): \(agree)/\(total) lines agree, \(dated) with a date"
        )
        for d in differences.prefix(40) { print(d) }
        #expect(filters > 20)
        #expect(dated > 500)
        #expect(differences.isEmpty, "\(differences.count) lines differ; first: \(differences.first ?? "")")
    }
}

/// Shared set-up for the date tests: the sample suite's zone and clock, and a runner for the fail2ban oracle.
enum DateTestSupport {
    /// The zone fail2ban's own sample tests use (Central European Time with EU DST rules).
    static let sampleZone = "CET-01CEST-02,M3.5.0,M10.5.0"
    /// fail2ban's sample-suite "now": 2005-08-14 12:00 CEST.
    static let sampleNow = 1_124_013_600.0
    static let logDirectory = "/usr/lib/python3/dist-packages/fail2ban/tests/files/logs"
    static let python = "/usr/bin/python3"

    /// A detector whose local time is the sample zone (given as a rule: tests never change the process's TZ,
    /// which other suites in the same process read).
    static func detector(_ pattern: String? = nil, zone: String? = nil, now: Double) throws -> DateDetector {
        try DateDetector(datePattern: pattern, timeZone: zone, localZone: sampleZone, now: { now })
    }

    static var oracleAvailable: Bool {
        FileManager.default.fileExists(atPath: python)
            && FileManager.default.fileExists(atPath: "/usr/lib/python3/dist-packages/fail2ban/server/datedetector.py")
    }

    /// Writes the oracle scripts (kept below as Swift strings) to a temporary directory once.
    static let oracleDirectory: URL = {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("pcl-date-oracle-\(getpid())")
        try? FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        try? dateOracleScript.write(to: dir.appendingPathComponent("date_oracle.py"), atomically: true, encoding: .utf8)
        try? filterDatePatternsScript.write(
            to: dir.appendingPathComponent("filter_datepatterns.py"), atomically: true, encoding: .utf8)
        return dir
    }()

    /// One line's date as fail2ban reports it.
    struct OracleDate: Equatable {
        var start: Int
        var end: Int
        /// nil when fail2ban found the date text but no valid time.
        var time: Double?
        var name: String
    }

    /// Runs a program and returns its standard output.
    static func run(_ arguments: [String], environment: [String: String] = [:]) throws -> Data {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: arguments[0])
        process.arguments = Array(arguments.dropFirst())
        var env = ProcessInfo.processInfo.environment
        for (k, v) in environment { env[k] = v }
        process.environment = env
        let out = Pipe()
        process.standardOutput = out
        process.standardError = FileHandle.nullDevice
        try process.run()
        let data = out.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        return data
    }

    /// fail2ban's date for every line of `logPath`.
    static func oracle(
        logPath: String, datePattern: String? = nil, timeZone: String? = nil, now: Double = sampleNow
    ) throws -> [OracleDate?] {
        var args = [python, oracleDirectory.appendingPathComponent("date_oracle.py").path, String(now), logPath]
        var patternFile: URL? = nil
        if let datePattern {
            let f = FileManager.default.temporaryDirectory.appendingPathComponent("pcl-dp-\(UUID().uuidString)")
            try datePattern.write(to: f, atomically: true, encoding: .utf8)
            patternFile = f
            args.append(f.path)
        } else {
            args.append("-")
        }
        defer { if let patternFile { try? FileManager.default.removeItem(at: patternFile) } }
        if let timeZone { args.append(timeZone) }
        let data = try run(args, environment: ["TZ": sampleZone])
        let text = String(decoding: data, as: UTF8.self)
        return text.split(separator: "\n", omittingEmptySubsequences: false).dropLast(text.hasSuffix("\n") ? 1 : 0)
            .map { row -> OracleDate? in
                guard row != "null",
                    let obj = try? JSONSerialization.jsonObject(with: Data(row.utf8)) as? [String: Any]
                else { return nil }
                return OracleDate(
                    start: obj["s"] as? Int ?? -1, end: obj["e"] as? Int ?? -1, time: obj["t"] as? Double,
                    name: obj["n"] as? String ?? "")
            }
    }

    /// Lines of a file exactly as the oracle splits them (on \n; a final empty piece dropped).
    static func lines(of path: String) throws -> [[UInt8]] {
        let data = try [UInt8](Data(contentsOf: URL(fileURLWithPath: path)))
        var rows = data.split(separator: 0x0A, omittingEmptySubsequences: false).map { Array($0) }
        if rows.last?.isEmpty == true { rows.removeLast() }
        return rows
    }

    /// Compares our detector with the oracle on every line; returns (agreeing, total, differences).
    static func compare(
        lines: [[UInt8]], oracle: [OracleDate?], detector: DateDetector, label: String
    ) -> (agree: Int, total: Int, dated: Int, differences: [String]) {
        var agree = 0
        var dated = 0
        var differences: [String] = []
        for (i, line) in lines.enumerated() {
            let ours = line.withUnsafeBufferPointer { detector.match($0) }
            let theirs = i < oracle.count ? oracle[i] : nil
            var same: Bool
            switch (ours, theirs) {
            case (nil, nil): same = true
            case (let o?, let t?):
                same = o.range == t.start..<t.end && detector.templateNames[o.templateIndex] == t.name
                if let tt = t.time {
                    same = same && o.isValid && abs(o.time - tt) < 1e-6
                } else {
                    same = same && !o.isValid
                }
            default: same = false
            }
            if theirs != nil { dated += 1 }
            if same {
                agree += 1
            } else {
                let text = String(decoding: line.prefix(100), as: UTF8.self)
                let o = ours.map {
                    "\($0.range) t=\($0.isValid ? String($0.time) : "invalid") \(detector.templateNames[$0.templateIndex])"
                }
                let t = theirs.map { "\($0.start)..<\($0.end) t=\($0.time.map { String($0) } ?? "invalid") \($0.name)" }
                differences.append("\(label):\(i + 1): \(text)\n    ours:   \(o ?? "nil")\n    fail2ban: \(t ?? "nil")")
            }
        }
        return (agree, lines.count, dated, differences)
    }
}

/// Test oracle: fail2ban's own date detection over the lines of a file (see the script's header).
let dateOracleScript = #"""
    #!/usr/bin/python3
    # Test oracle for DateDetector: runs the installed fail2ban 1.0.2's own date detection over lines and prints, per line,
    # one JSON value: null (no date) or {"s": start byte, "e": end byte, "t": epoch seconds or null, "n": template name}.
    # Usage: date_oracle.py NOW LINES_FILE [DATEPATTERN_FILE] [LOGTIMEZONE]
    #   NOW: epoch seconds for fail2ban's MyTime; LINES_FILE: raw lines (split on \n, trailing \r kept);
    #   DATEPATTERN_FILE: file holding a filter's `datepattern` value ("-" or absent = defaults).
    # Only calls fail2ban's public classes; run with TZ set to the zone under test.
    import json
    import sys

    from fail2ban.server.filter import Filter
    from fail2ban.server.mytime import MyTime


    def main():
        now = float(sys.argv[1])
        MyTime.setTime(now)
        flt = Filter(None)
        if len(sys.argv) > 3 and sys.argv[3] != "-":
            with open(sys.argv[3], encoding="utf-8") as f:
                flt.setDatePattern(f.read())
        if len(sys.argv) > 4 and sys.argv[4]:
            flt.setLogTimeZone(sys.argv[4])
        dd = flt.dateDetector
        if dd is None:
            print(json.dumps({"none": True}))
            return
        with open(sys.argv[2], "rb") as f:
            data = f.read()
        rows = data.split(b"\n")
        if rows and rows[-1] == b"":
            rows.pop()
        out = []
        for raw in rows:
            line = raw.decode("utf-8", "surrogateescape")
            match, template = dd.matchTime(line)
            if not match:
                out.append("null")
                continue
            start = len(line[: match.start(1)].encode("utf-8", "surrogateescape"))
            end = len(line[: match.end(1)].encode("utf-8", "surrogateescape"))
            try:
                got = dd.getTime(line, (match, template))
                t = got[0] if got else None
            except Exception as e:  # fail2ban raised (unknown zone name, missing day, ...): no usable time
                t = "error: %s" % e
            out.append(json.dumps({"s": start, "e": end, "t": t, "n": template.name}))
        print("\n".join(out))


    main()
    """#

/// Test helper: every filter's resolved datepattern, by fail2ban's own configuration reader.
let filterDatePatternsScript = #"""
    #!/usr/bin/python3
    # Test helper: prints a JSON object {filter name: resolved datepattern} for every filter in /etc/fail2ban/filter.d
    # whose configuration sets a datepattern, resolved by fail2ban's own configuration reader (interpolation included).
    import glob
    import json
    import os

    from fail2ban.client.filterreader import FilterReader

    out = {}
    for path in sorted(glob.glob("/etc/fail2ban/filter.d/*.conf")):
        name = os.path.basename(path)[:-5]
        try:
            reader = FilterReader(name, "oracle", {}, share_config={}, basedir="/etc/fail2ban")
            if not reader.read():
                continue
            reader.getOptions({})
            for cmd in reader.convert():
                if len(cmd) >= 4 and cmd[0] == "set" and cmd[2] == "datepattern":
                    out[name] = cmd[3]
        except Exception:
            continue
    print(json.dumps(out))
    """#
