import Foundation
import Testing

@testable import Filter

/// Compares `DateDetector` with fail2ban 1.0.2's own date detection on fail2ban's sample logs.
@Suite(.serialized) struct DateOracleTests {
    init() { DateTestSupport.useSampleZone() }

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
            let detector = try DateDetector(now: { DateTestSupport.sampleNow })
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
            let detector = try DateDetector(datePattern: pattern, now: { DateTestSupport.sampleNow })
            let r = DateTestSupport.compare(lines: lines, oracle: oracle, detector: detector, label: filter)
            agree += r.agree
            total += r.total
            dated += r.dated
            differences += r.differences
        }
        print("date oracle (filters' datepattern, \(filters) filters): \(agree)/\(total) lines agree, \(dated) with a date")
        for d in differences.prefix(40) { print(d) }
        #expect(filters > 20)
        #expect(dated > 500)
        #expect(differences.isEmpty, "\(differences.count) lines differ; first: \(differences.first ?? "")")
    }
}
