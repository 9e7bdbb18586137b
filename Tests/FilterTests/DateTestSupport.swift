import Foundation
import Testing

@testable import Filter

/// Shared set-up for the date tests: the sample suite's zone and clock, and a runner for the fail2ban oracle.
enum DateTestSupport {
    /// The zone fail2ban's own sample tests use (Central European Time with EU DST rules).
    static let sampleZone = "CET-01CEST-02,M3.5.0,M10.5.0"
    /// fail2ban's sample-suite "now": 2005-08-14 12:00 CEST.
    static let sampleNow = 1_124_013_600.0
    static let logDirectory = "/usr/lib/python3/dist-packages/fail2ban/tests/files/logs"
    static let python = "/usr/bin/python3"

    /// Sets the process zone (all date tests agree on it, so parallel tests do not disturb each other).
    static func useSampleZone() {
        setenv("TZ", sampleZone, 1)
        tzset()
    }

    static var oracleAvailable: Bool {
        FileManager.default.fileExists(atPath: python)
            && FileManager.default.fileExists(atPath: "/usr/lib/python3/dist-packages/fail2ban/server/datedetector.py")
    }

    static var oracleDirectory: URL {
        URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("Oracle")
    }

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
