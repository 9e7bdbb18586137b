import Filter

/// The `--out` token: which field of each failure to print, as fail2ban-regex `-o` prints it.
enum OutField {
    /// The failure id (`fid`): F-ID, else the address or host.
    case id
    /// The `ip` field when captured, else the id.
    case ip
    /// The log lines of the failure, one per line.
    case msg
    /// Python-like row: `[id, time, {fields}],`.
    case row
    /// The `matches` list.
    case matches
    /// A template with `<tag>`s.
    case template(String)
    /// Any other captured field (`user`, `ip4`, `host`, …); absent prints `None`.
    case field(String)

    /// Parses the token given to `--out`.
    init(_ token: String) {
        switch token {
        case "id", "fid": self = .id
        case "ip": self = .ip
        case "msg": self = .msg
        case "row": self = .row
        case "matches": self = .matches
        default: self = token.contains("<") ? .template(token) : .field(token)
        }
    }
}

/// Feeds lines to a `LineProcessor`, counts outcomes, keeps lines to print and prints `--out` rows.
///
/// The per-line path touches only bytes; strings are made for printed or kept lines.
struct RegexSession {
    let filter: CompiledFilter
    let processor: LineProcessor
    let out: OutField?
    let json: Bool
    let keepMatched: Bool
    let keepIgnored: Bool
    let keepMissed: Bool
    let keepAllIgnored: Bool
    let keepAllMissed: Bool

    private var matchedLines: [String] = []
    private var ignoredLines: [String] = []
    private var missedLines: [String] = []
    private var failures: [RegexReport.FailureRecord] = []
    private var ignored = 0
    private var missed = 0
    /// Multi-line filters only: the lines still in the filter's buffer and whether each was counted missed.
    private var recent: [(text: String, missed: Bool)] = []
    /// Missed lines that a later multi-line match consumed: fail2ban-regex counts them as matched.
    private var consumed = 0

    init(
        filter: CompiledFilter, processor: LineProcessor, out: OutField?, json: Bool, keepMatched: Bool,
        keepIgnored: Bool, keepMissed: Bool, keepAllIgnored: Bool, keepAllMissed: Bool
    ) {
        self.filter = filter
        self.processor = processor
        self.out = out
        self.json = json
        self.keepMatched = keepMatched
        self.keepIgnored = keepIgnored
        self.keepMissed = keepMissed
        self.keepAllIgnored = keepAllIgnored
        self.keepAllMissed = keepAllMissed
    }

    /// Processes one line (without its newline). Comment lines (`#…`) and empty lines are skipped, as
    /// fail2ban-regex does.
    mutating func feed(_ line: UnsafeBufferPointer<UInt8>) {
        if line.isEmpty || line[0] == 0x23 { return }
        let outcome = processor.process(line)
        if filter.maxLines > 1 && out == nil { trackBuffer(line, outcome) }
        if let out {
            if outcome == .matched {
                for f in processor.failures where !f.isNoFail { RegexSession.print(f, as: out) }
            }
            return
        }
        switch outcome {
        case .matched:
            if keepMatched { matchedLines.append(String(decoding: line, as: UTF8.self)) }
            if json {
                for f in processor.failures where !f.isNoFail {
                    failures.append(
                        RegexReport.FailureRecord(
                            id: f.host ?? f.id ?? "", time: f.time, regex: f.regexIndex + 1,
                            fields: f.fields.sorted { $0.key < $1.key }.map { ($0.key, $0.value) }))
                }
            }
        case .ignored:
            ignored += 1
            if keepIgnored && (keepAllIgnored || ignored <= RegexReport.printLimit + 1) {
                ignoredLines.append(String(decoding: line, as: UTF8.self))
            }
        case .tooLong, .matchLimit:
            break  // counted by the processor (stats.tooLong, stats.matchLimit), reported apart
        case .missed:
            missed += 1
            if keepMissed && (keepAllMissed || missed <= RegexReport.printLimit + 1) {
                missedLines.append(String(decoding: line, as: UTF8.self))
            }
        }
    }

    /// fail2ban-regex's multi-line bookkeeping: a buffered line that was counted missed and then became part of a
    /// match is counted matched instead (and leaves the missed list).
    private mutating func trackBuffer(_ line: UnsafeBufferPointer<UInt8>, _ outcome: LineOutcome) {
        let text = String(decoding: line, as: UTF8.self)
        if outcome != .missed {
            for f in processor.failures {
                for l in f.lines.dropLast() {
                    guard let i = recent.lastIndex(where: { $0.missed && $0.text == l }) else { continue }
                    recent[i].missed = false
                    consumed += 1
                    if let k = missedLines.firstIndex(of: l) { missedLines.remove(at: k) }
                    if keepMatched { matchedLines.append(l) }
                }
            }
        }
        recent.append((text, outcome == .missed))
        if recent.count > filter.maxLines { recent.removeFirst(recent.count - filter.maxLines) }
    }

    /// Copies the counters and kept lines into `report`.
    func fill(_ report: inout RegexReport) {
        let stats = processor.stats
        report.prefregexHits = stats.prefregexMatched
        report.failregexes = zip(filter.failregexSources, stats.failregexHits).map { .init(source: $0, hits: $1) }
        report.ignoreregexes = zip(filter.ignoreregexSources, stats.ignoreregexHits).map {
            .init(source: $0, hits: $1)
        }
        // fail2ban-regex lists the templates in its detector's order, which keeps the most used first.
        report.dateTemplates = stats.dateTemplates.enumerated().sorted {
            $0.element.hits != $1.element.hits ? $0.element.hits > $1.element.hits : $0.offset < $1.offset
        }.map { ($0.element.name, $0.element.hits) }
        report.lines = stats.lines
        report.ignored = stats.ignored
        report.matched = stats.matched + consumed
        report.missed = stats.missed - consumed
        report.tooLongLines += stats.tooLong
        report.matchLimitLines = stats.matchLimit
        report.matchedLines = matchedLines
        report.ignoredLines = ignoredLines
        report.missedLines = missedLines
        report.failures = failures
    }

    /// Prints one failure as `fail2ban-regex -o TOKEN` does.
    static func print(_ f: Failure, as out: OutField) {
        let fid = f.host ?? f.id ?? "None"
        switch out {
        case .id:
            Output.standard.line(fid)
        case .ip:
            Output.standard.line(f.fields["ip"] ?? fid)
        case .msg:
            for l in f.lines { Output.standard.line(l) }
        case .matches:
            Output.standard.line("[" + f.lines.map(FilterSource.pythonString).joined(separator: ", ") + "]")
        case .row:
            let fields = f.fields.sorted { $0.key < $1.key }.map {
                FilterSource.pythonString($0.key) + ": " + FilterSource.pythonString($0.value)
            }
            Output.standard.line(
                "[\(FilterSource.pythonString(fid)),\t\(pythonFloat(f.time)),\t{\(fields.joined(separator: ", "))}],")
        case .field(let name):
            if name == "users", !f.users.isEmpty {
                Output.standard.line("{" + f.users.map(FilterSource.pythonString).joined(separator: ", ") + "}")
            } else {
                Output.standard.line(f.fields[name] ?? "None")
            }
        case .template(let text):
            for l in expand(text, f, fid: fid) { Output.standard.line(l) }
        }
    }

    /// Python's repr of a float (`1124013600.0`).
    static func pythonFloat(_ v: Double) -> String {
        if v == v.rounded(), abs(v) < 1e16 { return String(Int64(v)) + ".0" }
        return String(v)
    }

    /// Replaces `<tag>`s: `<fid>`, `<ip>`, `<time>`, `<msg>`/`<matches>` (one output line per log line),
    /// `<F-NAME>` and `<name>` for captured fields. Unknown tags stay as written.
    static func expand(_ text: String, _ f: Failure, fid: String) -> [String] {
        var result = ""
        var usesMsg = false
        var rest = Substring(text)
        while let open = rest.firstIndex(of: "<") {
            result += rest[..<open]
            guard let close = rest[open...].firstIndex(of: ">") else { break }
            let tag = String(rest[rest.index(after: open)..<close])
            rest = rest[rest.index(after: close)...]
            let key = tag.hasPrefix("F-") ? String(tag.dropFirst(2)).lowercased() : tag
            switch key {
            case "fid", "id": result += fid
            case "ip": result += f.fields["ip"] ?? fid
            case "time": result += pythonFloat(f.time)
            case "failures": result += String(f.attempts)
            case "msg", "matches":
                usesMsg = true
                result += "\u{0}msg\u{0}"
            default:
                if let v = f.fields[key] { result += v } else { result += "<" + tag + ">" }
            }
        }
        result += rest
        guard usesMsg else { return [result] }
        if f.lines.count <= 1 { return [result.replacingAll("\u{0}msg\u{0}", with: f.lines.first ?? "")] }
        return f.lines.map { result.replacingAll("\u{0}msg\u{0}", with: $0) }
    }
}

extension String {
    /// Every occurrence of `target` replaced by `replacement`.
    func replacingAll(_ target: String, with replacement: String) -> String {
        guard !target.isEmpty else { return self }
        var out = ""
        var rest = Substring(self)
        while let r = rest.range(of: target) {
            out += rest[..<r.lowerBound]
            out += replacement
            rest = rest[r.upperBound...]
        }
        out += rest
        return out
    }
}

extension Substring {
    /// The first range of `target`, if any.
    func range(of target: String) -> Range<Substring.Index>? {
        guard !target.isEmpty, count >= target.count else { return nil }
        var i = startIndex
        while i < endIndex {
            if self[i...].hasPrefix(target) { return i..<index(i, offsetBy: target.count) }
            i = index(after: i)
        }
        return nil
    }
}
