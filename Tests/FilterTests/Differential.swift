import Configuration
import Core
import Foundation
import Testing

@testable import Filter

/// Test date finders: enough to cut the dates of our test lines the way fail2ban does.
/// (The real DateDetector has its own tests; these keep the engine's tests independent of it.)
final class TestDates: LineDateFinder {
    enum Kind { case iso, syslog }
    let kind: Kind
    init(_ kind: Kind) { self.kind = kind }
    var templateNames: [String] { [] }
    var templateHits: [Int] { [] }

    func findDate(_ line: UnsafeBufferPointer<UInt8>) -> (range: Range<Int>, time: Double)? {
        func digits(_ a: Int, _ n: Int) -> Int? {
            guard a + n <= line.count else { return nil }
            var v = 0
            for i in a..<(a + n) {
                let c = line[i]
                if c == 0x20, i == a, n == 2 { continue }
                guard c >= 0x30, c <= 0x39 else { return nil }
                v = v * 10 + Int(c - 0x30)
            }
            return v
        }
        switch kind {
        case .iso:
            guard line.count >= 19, let y = digits(0, 4), line[4] == 0x2D, let mo = digits(5, 2), let d = digits(8, 2),
                let h = digits(11, 2), let mi = digits(14, 2), let s = digits(17, 2)
            else { return nil }
            var c = DateComponents()
            (c.year, c.month, c.day, c.hour, c.minute, c.second) = (y, mo, d, h, mi, s)
            var cal = Calendar(identifier: .gregorian)
            cal.timeZone = TimeZone(identifier: "UTC")!
            return (0..<19, cal.date(from: c)!.timeIntervalSince1970)
        case .syslog:
            // "Mon d hh:mm:ss" or an ISO 8601 stamp at the start; time is not checked by the tests that use this.
            guard syslog.matches(line, anchored: true), let r = syslog.range(0) else { return nil }
            return (r, 0)
        }
    }

    private lazy var syslog = try! Pattern(
        #"[A-Z][a-z]{2} +\d{1,2} \d\d:\d\d:\d\d|\d{4}-\d\d-\d\d[T ]\d\d:\d\d:\d\d(?:\.\d+)?(?:[+-]\d\d:?\d\d|Z)?"#
    ).makeMatcher()
}

extension CompiledFilter {
    /// A filter whose processors cut dates with `kind`.
    static func testing(
        _ def: FilterConfiguration, options: FilterOptions = .init(), dates: TestDates.Kind? = .iso
    ) throws -> CompiledFilter {
        try CompiledFilter(
            def, options: options,
            dateFinder: { () throws(FilterError) -> LineDateFinder? in
                dates.map { TestDates($0) }
            })
    }
}

/// Compares the engine with fail2ban line by line.
enum Differential {
    /// Runs both over `lines`; returns a description of every difference (empty when they agree).
    static func compare(
        _ def: FilterConfiguration, spec: [String: Any], lines: [String], checkAll: Bool = false,
        dates: TestDates.Kind? = .iso, compareTime: Bool = true
    ) throws -> [String] {
        var spec = spec
        spec["checkAll"] = checkAll
        let verdicts = try Oracle.run(spec: spec, lines: lines)
        let filter = try CompiledFilter.testing(def, options: FilterOptions(checkAllRegex: checkAll), dates: dates)
        let p = try filter.makeProcessor()
        var problems: [String] = []
        guard verdicts.count == lines.count else {
            return ["oracle returned \(verdicts.count) verdicts for \(lines.count) lines"]
        }
        for (n, line) in lines.enumerated() {
            let outcome = p.process(line)
            let v = verdicts[n]
            var mine: [String] = []
            for f in p.failures {
                var fields = f.fields.mapValues { "s:" + $0 }
                fields["attempts"] = "i:\(f.attempts)"
                if !f.users.isEmpty { fields["users"] = "l:" + f.users.joined(separator: ",") }
                let t = compareTime ? String(f.time) : "-"
                mine.append("\(f.regexIndex) \(f.host ?? "nil") \(t) \(fields.sorted { $0.key < $1.key })")
            }
            var theirs: [String] = []
            for f in v.failures where f.id != nil {
                var fields: [String: String] = [:]
                for (k, value) in f.fields {
                    switch value {
                    case .string(let s): fields[k] = "s:" + s
                    case .int(let i): fields[k] = "i:\(i)"
                    case .list(let l): fields[k] = "l:" + l.joined(separator: ",")
                    }
                }
                let t = compareTime ? (f.time.map { String($0) } ?? "nil") : "-"
                theirs.append("\(f.idx) \(f.id ?? "nil") \(t) \(fields.sorted { $0.key < $1.key })")
            }
            let outcomeText = "\(outcome)"
            if outcomeText != v.outcome || mine != theirs {
                problems.append(
                    "line \(n + 1): \(line)\n  fail2ban: \(v.outcome) \(theirs)\n  engine:   \(outcomeText) \(mine)")
            }
        }
        if !verdicts.contains(where: { $0.outcome == "matched" }) {
            problems.append("fail2ban matched none of the lines: the test exercises nothing")
        }
        return problems
    }
}
