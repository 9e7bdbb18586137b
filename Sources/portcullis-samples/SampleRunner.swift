import Core

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// A field value a filter reported for a failure, in the shape annotations compare against.
enum ObservedValue: Equatable, CustomStringConvertible {
    /// Absent or Python `None`.
    case none
    /// A plain string.
    case string(String)
    /// A set of strings (e.g. `users` gathered over a multi-line failure); compared sorted.
    case set([String])

    var description: String {
        switch self {
        case .none: return "null"
        case .string(let s): return "\"\(s)\""
        case .set(let a): return "[" + a.sorted().map { "\"\($0)\"" }.joined(separator: ", ") + "]"
        }
    }
}

/// One failure a filter reported for a line.
struct ObservedFailure {
    /// Index of the failregex that matched (0-based).
    var regexIndex: Int
    /// The failure id (`fid`): F-ID, else the raw host; nil when the filter found none (pending).
    var id: String?
    /// Time of the failure, epoch seconds.
    var time: Double?
    /// Captured fields by lower-case name (`user`, `ip4`, `ip6`, `dns`, `users`, …).
    var fields: [String: ObservedValue]
    /// Number of log lines that make up the failure.
    var attempts: Int
    /// True when the failure is marked `F-NOFAIL` (not counted).
    var isNoFail: Bool
}

/// A loaded filter variant the harness feeds lines to. Keeps multi-line state between lines.
protocol SampleFilter: AnyObject {
    /// Processes one line. `journalTime` set = the line comes from the journal with that time (no date parsing).
    func process(_ line: String, journalTime: Double?) -> [ObservedFailure]
}

/// Loads a filter variant: `name` from the config tree at `confDir` with `options` (key order kept).
typealias SampleFilterLoader = (_ confDir: String, _ name: String, _ options: [(String, String)]) throws -> SampleFilter

/// One failed check, printed by the harness.
struct SampleFailure {
    /// `file:line` of the annotation (or of the unannotated line).
    var location: String
    /// Filter variant, e.g. `sshd[mode=aggressive]`.
    var variant: String
    /// What was expected and what was observed.
    var message: String
    /// The log line.
    var line: String
}

/// Runs fail2ban-style annotated sample logs against filters, with the semantics of fail2ban's sample test:
/// `# failJSON:` annotates the next line; `# filterOptions:` switches the set of filter variants; `# fileOptions:`
/// sets options merged into every later variant; `# addFILE:` queues another sample file for the same filter;
/// `constraint` and `test.condition` are expressions over `name` and `opts`; un-annotated lines must not match.
final class SampleRunner {
    /// "now" of fail2ban's tests (2005-08-14T10:00:00Z) — also the time of journal entries.
    static let testNow: Double = 1_124_013_600

    private let loader: SampleFilterLoader
    private let logsDir: String

    /// Annotation outcome by `file:line`: true = all evaluations passed.
    private(set) var outcomes: [String: Bool] = [:]
    /// Order in which annotations were first evaluated.
    private(set) var order: [String] = []
    /// Annotations seen but never evaluated (every variant excluded by a constraint or condition).
    private(set) var skipped: Set<String> = []
    /// Failed checks in order.
    private(set) var failures: [SampleFailure] = []
    /// Problems that are not about one line (a filter that does not load, a missing file).
    private(set) var errors: [String] = []

    /// Creates a runner reading sample logs from `logsDir`.
    init(logsDir: String, loader: @escaping SampleFilterLoader) {
        self.logsDir = logsDir
        self.loader = loader
    }

    private struct Variant {
        var label: String
        var filter: SampleFilter
        var opts: [(String, JSONValue)]
    }

    private func record(_ key: String, passed: Bool) {
        if let old = outcomes[key] {
            outcomes[key] = old && passed
        } else {
            outcomes[key] = passed
            order.append(key)
        }
        skipped.remove(key)
    }

    /// Tests the filter `name` (found in `confDir`) against the sample file of the same name and every file it adds.
    func run(filter name: String, confDir: String) {
        var cache: [String: SampleFilter] = [:]
        var filenames = [name]
        var commonOpts: [(String, JSONValue)] = []
        var variants: [Variant]? = nil
        var next = 0
        while next < filenames.count {
            let filename = filenames[next]
            next += 1
            let path = logsDir + "/" + filename
            guard let lines = SampleRunner.readLines(path) else {
                errors.append("\(path): cannot read sample log for filter '\(name)'")
                record("\(filename):0", passed: false)
                continue
            }
            var ignoreBlock = false
            var faildata: JSONValue = .object([])
            var annotation: String? = nil
            var index = 0
            while index < lines.count {
                var line = lines[index]
                index += 1
                let lineNumber = index
                if let (kind, json) = SampleRunner.directive(line) {
                    let value: JSONValue
                    do {
                        value = try JSONValue.parse(json)
                    } catch {
                        errors.append("\(filename):\(lineNumber): bad JSON in \(kind): \(error)")
                        continue
                    }
                    switch kind {
                    case "fileOptions":
                        commonOpts = value.members
                        continue
                    case "filterOptions":
                        variants = []
                        ignoreBlock = false
                        let list: [JSONValue]
                        if case .array(let a) = value { list = a } else { list = [value] }
                        for item in list {
                            var opts = commonOpts
                            for (k, v) in item.members {
                                if let i = opts.firstIndex(where: { $0.0 == k }) {
                                    opts[i].1 = v
                                } else {
                                    opts.append((k, v))
                                }
                            }
                            if let cond = SampleRunner.option(opts, "test.condition"), cond.isTruthy {
                                ignoreBlock = !evaluate(cond, name: name, opts: opts, at: "\(filename):\(lineNumber)")
                            }
                            if !ignoreBlock {
                                if let v = variant(name, opts: opts, confDir: confDir, cache: &cache) {
                                    variants?.append(v)
                                }
                            }
                        }
                        continue
                    case "addFILE":
                        if let f = value.stringValue { filenames.append(f) }
                        continue
                    default:  // failJSON: annotates the next line
                        faildata = value
                        annotation = "\(filename):\(lineNumber)"
                        guard index < lines.count else { continue }
                        line = lines[index]
                        index += 1
                    }
                } else if ignoreBlock || line.hasPrefix("#") || line.allSatisfy(\.isWhitespace) {
                    continue
                } else {
                    faildata = .object([])
                    annotation = nil
                }
                if let key = annotation, outcomes[key] == nil { skipped.insert(key) }
                if ignoreBlock { continue }
                if variants == nil || variants!.isEmpty {
                    if let v = variant(name, opts: [], confDir: confDir, cache: &cache) {
                        variants = [v]
                    } else {
                        return
                    }
                }
                while let last = line.last, last == "\r" || last == "\n" { line.removeLast() }
                for v in variants! {
                    if let c = faildata["constraint"], c.isTruthy,
                        !evaluate(c, name: name, opts: v.opts, at: annotation ?? "\(filename):\(lineNumber)")
                    {
                        continue
                    }
                    var journalTime: Double? = nil
                    var fed = line
                    if SampleRunner.option(v.opts, "logtype")?.stringValue == "journal" {
                        journalTime = SampleRunner.testNow
                        if let prefix = SampleRunner.option(v.opts, "test.prefix-line")?.stringValue {
                            fed = prefix + line
                        }
                    }
                    let found = v.filter.process(fed, journalTime: journalTime).filter { $0.id != nil && !$0.isNoFail }
                    let problem = SampleRunner.check(found, against: faildata)
                    let key = annotation ?? "\(filename):\(lineNumber)"
                    if let problem {
                        failures.append(SampleFailure(location: key, variant: v.label, message: problem, line: fed))
                        record(key, passed: false)
                    } else if annotation != nil {
                        record(key, passed: true)
                    }
                }
            }
        }
    }

    private func evaluate(
        _ expression: JSONValue, name: String, opts: [(String, JSONValue)], at location: String
    )
        -> Bool
    {
        guard let text = expression.stringValue else { return expression.isTruthy }
        do {
            let c = try Condition(text)
            var values: [String: Condition.Value] = [:]
            for (k, v) in opts {
                switch v {
                case .string(let s): values[k] = .string(s)
                case .bool(let b): values[k] = .bool(b)
                case .int, .double: values[k] = .number(v.doubleValue ?? 0)
                default: values[k] = Condition.Value.none
                }
            }
            return c.evaluate(name: name, opts: values)
        } catch {
            errors.append("\(location): \(error)")
            return false
        }
    }

    private func variant(
        _ name: String, opts: [(String, JSONValue)], confDir: String, cache: inout [String: SampleFilter]
    ) -> Variant? {
        let filterOpts = opts.filter { !$0.0.hasPrefix("test.") }.map { (k, v) in (k, v.stringValue ?? v.description) }
        let label: String
        if let custom = SampleRunner.option(opts, "test.filter-name")?.stringValue {
            label = name + custom
        } else if filterOpts.isEmpty {
            label = name
        } else {
            label = name + "[" + filterOpts.map { "\($0.0)=\($0.1)" }.joined(separator: ", ") + "]"
        }
        if let f = cache[label] { return Variant(label: label, filter: f, opts: opts) }
        do {
            let f = try loader(confDir, name, filterOpts)
            cache[label] = f
            return Variant(label: label, filter: f, opts: opts)
        } catch {
            errors.append("\(label): cannot load filter from \(confDir)/filter.d: \(error)")
            return nil
        }
    }

    /// The value of option `key` in an ordered option list.
    static func option(_ opts: [(String, JSONValue)], _ key: String) -> JSONValue? {
        for (k, v) in opts where k == key { return v }
        return nil
    }

    /// Compares what the filter found on a line with the annotation; nil = as expected.
    static func check(_ found: [ObservedFailure], against faildata: JSONValue) -> String? {
        let shouldMatch = faildata["match"]?.isTruthy ?? false
        guard let failure = found.first else {
            return shouldMatch ? "expected a match, got none" : nil
        }
        guard shouldMatch else {
            return "expected no match, got \(describe(failure)) (failregex \(failure.regexIndex + 1))"
        }
        guard found.count == 1 else {
            return "several failregexes matched: " + found.map { String($0.regexIndex + 1) }.joined(separator: ", ")
        }
        var problems: [String] = []
        for (key, expected) in faildata.members where !["time", "match", "desc", "constraint"].contains(key) {
            var got = failure.fields[key] ?? .none
            if got == .none {
                if key == "host" { got = failure.id.map { .string($0) } ?? .none }
                if key == "attempts" { got = .string(String(failure.attempts)) }
            }
            if !equal(got, expected) { problems.append("\(key): expected \(expected), got \(got)") }
        }
        if let t = faildata["time"]?.stringValue {
            if let want = expectedTime(t) {
                let got = failure.time ?? .nan
                if !(abs(got - want) < 0.0005) {
                    problems.append(
                        "time: expected \(t) (\(format(want))), got \(got.isNaN ? "none" : localTime(got)) (\(format(got)))"
                    )
                }
            } else {
                problems.append("time: cannot parse expected value \(t)")
            }
        }
        return problems.isEmpty ? nil : problems.joined(separator: "; ")
    }

    private static func describe(_ f: ObservedFailure) -> String {
        "id \(f.id ?? "none")" + (f.time.map { " at \(localTime($0))" } ?? "")
    }

    private static func equal(_ got: ObservedValue, _ expected: JSONValue) -> Bool {
        switch (got, expected) {
        case (.none, .null): return true
        case (.string(let g), .string(let e)):
            // fail2ban compares an address-valued id as an address (`2001:DB8::1` equals `2001:db8::1`).
            if g == e { return true }
            if let a = IPAddress(g), let b = IPAddress(e) { return a == b }
            return false
        case (.string(let g), .int(let e)): return Double(g) == Double(e)
        case (.string(let g), .double(let e)): return Double(g) == e
        case (.set(let g), .array(let e)):
            let es = e.compactMap(\.stringValue)
            return es.count == e.count && g.sorted() == es.sorted()
        case (.string(let g), .array(let e)):
            return e.count == 1 && e[0].stringValue == g
        default: return false
        }
    }

    private static func format(_ t: Double) -> String {
        t.isNaN ? "-" : String(t)
    }

    /// Local time (the harness's TZ) of an epoch, as `YYYY-MM-DDTHH:MM:SS`.
    static func localTime(_ t: Double) -> String {
        var secs = time_t(t.rounded(.down))
        var tmv = tm()
        localtime_r(&secs, &tmv)
        func two(_ v: Int32) -> String { v < 10 ? "0\(v)" : "\(v)" }
        var s = "\(tmv.tm_year + 1900)-\(two(tmv.tm_mon + 1))-\(two(tmv.tm_mday))T"
        s += "\(two(tmv.tm_hour)):\(two(tmv.tm_min)):\(two(tmv.tm_sec))"
        let frac = t - t.rounded(.down)
        if frac > 0.0000005 {
            let micro = Int((frac * 1_000_000).rounded())
            let digits = String(micro)
            s += "." + String(repeating: "0", count: max(0, 6 - digits.count)) + digits
        }
        return s
    }

    /// `YYYY-MM-DDTHH:MM:SS[.ffffff]` in local time (mktime with DST decided by the zone) → epoch seconds.
    /// Like `strptime`, fields other than the year may have one digit (`2005-03-7T02:09:33`).
    static func expectedTime(_ text: String) -> Double? {
        let parts = text.split(separator: ".", maxSplits: 1)
        let fields = parts[0].split(whereSeparator: { $0 == "-" || $0 == "T" || $0 == ":" })
        guard fields.count == 6, fields.allSatisfy({ !$0.isEmpty && $0.count <= 4 && $0.allSatisfy(\.isNumber) }),
            fields[0].count == 4, let y = Int32(fields[0]), let mo = Int32(fields[1]), let d = Int32(fields[2]),
            let h = Int32(fields[3]), let mi = Int32(fields[4]), let s = Int32(fields[5])
        else { return nil }
        var tmv = tm()
        tmv.tm_year = y - 1900
        tmv.tm_mon = mo - 1
        tmv.tm_mday = d
        tmv.tm_hour = h
        tmv.tm_min = mi
        tmv.tm_sec = s
        tmv.tm_isdst = -1
        var result = Double(mktime(&tmv))
        if parts.count == 2 {
            guard let v = Double("0." + parts[1]) else { return nil }
            result += v
        }
        return result
    }

    /// `# failJSON: {...}` and friends: returns the directive and its JSON text.
    static func directive(_ line: String) -> (String, String)? {
        guard line.hasPrefix("#") else { return nil }
        var rest = line.drop { $0 == "#" }
        if rest.hasPrefix(" ") { rest = rest.dropFirst() }
        for kind in ["failJSON", "fileOptions", "filterOptions", "addFILE"] where rest.hasPrefix(kind + ":") {
            var json = rest.dropFirst(kind.count + 1)
            while let last = json.last, last == "\n" || last == "\r" { json.removeLast() }
            guard !json.isEmpty else { return nil }
            return (kind, String(json))
        }
        return nil
    }

    /// Reads a sample file as lines (split on LF; invalid UTF-8 is repaired, as a text reader would).
    static func readLines(_ path: String) -> [String]? {
        guard let f = fopen(path, "rb") else { return nil }
        defer { fclose(f) }
        var bytes: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 65536)
        while true {
            let n = fread(&chunk, 1, chunk.count, f)
            if n <= 0 { break }
            bytes.append(contentsOf: chunk[0..<n])
        }
        var lines = bytes.split(separator: 0x0A, omittingEmptySubsequences: false).map {
            String(decoding: $0, as: UTF8.self)
        }
        if lines.last == "" { lines.removeLast() }
        return lines
    }
}
