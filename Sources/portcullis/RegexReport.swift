import Core

/// What `portcullis regex` gathered in one run, printed like fail2ban-regex or as JSON.
struct RegexReport {
    /// A failregex or ignoreregex with its hit count.
    struct RegexHits {
        /// The regex as configured (tags unexpanded).
        var source: String
        /// Lines it matched.
        var hits: Int
    }

    /// One failure, for JSON.
    struct FailureRecord {
        /// Failure id (F-ID or host).
        var id: String
        /// Epoch seconds, when known.
        var time: Double?
        /// 1-based failregex number.
        var regex: Int
        /// Captured fields.
        var fields: [(String, String)]
    }

    /// `Use …` lines printed before the run, in order.
    var useLines: [String] = []
    /// The expanded prefregex, when the filter has one.
    var prefregex: String?
    /// Lines the prefregex matched.
    var prefregexHits = 0
    /// Failregexes in order.
    var failregexes: [RegexHits] = []
    /// Ignoreregexes in order.
    var ignoreregexes: [RegexHits] = []
    /// Date templates that hit (name, hits).
    var dateTemplates: [(String, Int)] = []
    /// Lines tested (comments and blank lines excluded, as fail2ban-regex does).
    var lines = 0
    /// Lines ignored (an ignoreregex or a NOFAIL match).
    var ignored = 0
    /// Lines that produced a failure.
    var matched = 0
    /// Lines that matched nothing.
    var missed = 0
    /// Seconds spent processing.
    var seconds = 0.0
    /// Lines kept for printing.
    var matchedLines: [String] = []
    /// Lines kept for printing.
    var ignoredLines: [String] = []
    /// Lines kept for printing.
    var missedLines: [String] = []
    /// Failures, kept for JSON only.
    var failures: [FailureRecord] = []
    /// Lines longer than `maxLineLength`, skipped whole (never matched from a prefix), as the daemon does.
    var tooLongLines = 0
    /// The limit those lines exceeded.
    var maxLineLength = Bounds.maximumLineLength
    /// Lines where a regex hit PCRE2's match limit and nothing matched (not counted as missed).
    var matchLimitLines = 0

    /// fail2ban-regex prints a kept-line list only when it holds fewer than this many lines.
    static let printLimit = 20

    /// The text block printed after processing ("Results" … time taken … kept lines).
    func text(
        printAllMatched: Bool, printAllIgnored: Bool, printAllMissed: Bool, printNoIgnored: Bool,
        printNoMissed: Bool
    ) -> String {
        var out: [String] = ["", "Results", "======="]
        if let prefregex {
            out.append("")
            out.append("Prefregex: \(prefregexHits) total")
            out.append(RegexReport.list([prefregex], header: nil))
        }
        for (title, list) in [("Failregex", failregexes), ("Ignoreregex", ignoreregexes)] {
            let total = list.reduce(0) { $0 + $1.hits }
            out.append("")
            out.append("\(title): \(total) total")
            var rows: [String] = []
            for (i, r) in list.enumerated() where r.hits > 0 {
                let n = String(i + 1)
                rows.append("\(n.count < 2 ? " " + n : n)) [\(r.hits)] \(r.source)")
            }
            if !rows.isEmpty { out.append(RegexReport.list(rows, header: " #) [# of hits] regular expression")) }
        }
        out.append("")
        out.append("Date template hits:")
        let templates = dateTemplates.filter { $0.1 > 0 }.map { "[\($0.1)] \($0.0)" }
        if !templates.isEmpty { out.append(RegexReport.list(templates, header: "[# of hits] date format")) }
        out.append("")
        out.append("Lines: \(lines) lines, \(ignored) ignored, \(matched) matched, \(missed) missed")
        out.append("[processed in \(RegexReport.fixed2(seconds)) sec]")
        if tooLongLines > 0 {
            out.append("[\(tooLongLines) line(s) longer than \(maxLineLength) bytes skipped, not matched]")
        }
        if matchLimitLines > 0 {
            out.append("[\(matchLimitLines) line(s) hit the regex match limit, not matched]")
        }
        out.append("")
        if printAllMatched { out += RegexReport.kept("Matched", matched, matchedLines, all: true) }
        if !printNoIgnored { out += RegexReport.kept("Ignored", ignored, ignoredLines, all: printAllIgnored) }
        if !printNoMissed { out += RegexReport.kept("Missed", missed, missedLines, all: printAllMissed) }
        return out.joined(separator: "\n")
    }

    private static func kept(_ kind: String, _ count: Int, _ lines: [String], all: Bool) -> [String] {
        guard count > 0 else { return [] }
        let header = "\(kind) line(s):"
        if count < printLimit || all { return [list(lines.map(rstrip), header: header)] }
        return ["\(header) too many to print.  Use --print-all-\(kind.lowercased()) to print all \(count) lines"]
    }

    /// The line without trailing white space (fail2ban-regex prints kept lines so).
    static func rstrip(_ s: String) -> String {
        var t = Substring(s)
        while let l = t.last, l == " " || l == "\t" || l == "\r" || l == "\n" || l == "\u{0B}" || l == "\u{0C}" {
            t = t.dropLast()
        }
        return String(t)
    }

    /// fail2ban-regex's list layout: `|- header`, `|  row`…, `` `- ``.
    static func list(_ rows: [String], header: String?) -> String {
        (header.map { "|- \($0)\n" } ?? "") + "|  " + rows.joined(separator: "\n|  ") + "\n`-"
    }

    /// `%.2f`.
    static func fixed2(_ v: Double) -> String {
        let cents = Int((v * 100).rounded())
        let frac = cents % 100
        return "\(cents / 100).\(frac < 10 ? "0" : "")\(frac)"
    }

    /// The whole run as one JSON object.
    func json(filter: String, log: String) -> String {
        var o = JSONWriter()
        o.beginObject()
        o.key("filter")
        o.string(filter)
        o.key("log")
        o.string(log)
        if let prefregex {
            o.key("prefregex")
            o.beginObject()
            o.key("regex")
            o.string(prefregex)
            o.key("hits")
            o.number(prefregexHits)
            o.endObject()
        }
        for (name, list) in [("failregex", failregexes), ("ignoreregex", ignoreregexes)] {
            o.key(name)
            o.beginArray()
            for (i, r) in list.enumerated() {
                o.beginObject()
                o.key("index")
                o.number(i + 1)
                o.key("regex")
                o.string(r.source)
                o.key("hits")
                o.number(r.hits)
                o.endObject()
            }
            o.endArray()
        }
        o.key("dateTemplates")
        o.beginArray()
        for (name, hits) in dateTemplates {
            o.beginObject()
            o.key("template")
            o.string(name)
            o.key("hits")
            o.number(hits)
            o.endObject()
        }
        o.endArray()
        o.key("lines")
        o.beginObject()
        o.key("total")
        o.number(lines)
        o.key("ignored")
        o.number(ignored)
        o.key("matched")
        o.number(matched)
        o.key("missed")
        o.number(missed)
        o.key("tooLong")
        o.number(tooLongLines)
        o.key("matchLimit")
        o.number(matchLimitLines)
        o.endObject()
        o.key("seconds")
        o.number(seconds)
        o.key("failures")
        o.beginArray()
        for f in failures {
            o.beginObject()
            o.key("id")
            o.string(f.id)
            if let t = f.time {
                o.key("time")
                o.number(t)
            } else {
                o.key("time")
                o.null()
            }
            o.key("failregex")
            o.number(f.regex)
            for (k, v) in f.fields where !["id", "time", "failregex"].contains(k) {
                o.key(k)
                o.string(v)
            }
            o.endObject()
        }
        o.endArray()
        o.endObject()
        return o.text
    }
}

/// A minimal streaming JSON writer with correct string escaping.
///
/// ```swift
/// var w = JSONWriter()
/// w.beginObject(); w.key("n").number(1); w.endObject()   // {"n":1}
/// ```
struct JSONWriter {
    /// The JSON produced so far.
    private(set) var text = ""
    private var first = [true]
    private var afterKey = false

    private mutating func beginValue() {
        if afterKey {
            afterKey = false
            return
        }
        if !first[first.count - 1] { text += "," }
        first[first.count - 1] = false
    }

    /// Writes `"k":`; the next call writes its value.
    mutating func key(_ k: String) {
        beginValue()
        text += JSON.quoted(k) + ":"
        afterKey = true
    }

    /// Opens an object.
    mutating func beginObject() {
        beginValue()
        text += "{"
        first.append(true)
    }

    /// Closes an object.
    mutating func endObject() {
        first.removeLast()
        text += "}"
    }

    /// Opens an array.
    mutating func beginArray() {
        beginValue()
        text += "["
        first.append(true)
    }

    /// Closes an array.
    mutating func endArray() {
        first.removeLast()
        text += "]"
    }

    /// Writes a string value.
    mutating func string(_ v: String) {
        beginValue()
        text += JSON.quoted(v)
    }

    /// Writes a number value.
    mutating func number(_ v: Int) {
        beginValue()
        text += String(v)
    }

    /// Writes a number value (non-finite as null).
    mutating func number(_ v: Double) {
        beginValue()
        text += v.isFinite ? String(v) : "null"
    }

    /// Writes null.
    mutating func null() {
        beginValue()
        text += "null"
    }
}
