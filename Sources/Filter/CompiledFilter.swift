import Configuration
import Core

/// One fail2ban regex compiled for PCRE2, with the group numbers the engine looks at.
final class FilterRegex: @unchecked Sendable {
    // SAFETY: immutable after init; `Pattern` is shareable.
    let pattern: Pattern
    /// The regex as written in the filter.
    let source: String
    let location: SourceLocation?
    /// Every named group: name → group numbers, in a stable order.
    let namedGroups: [(name: String, groups: [Int])]
    let ip4: [Int]
    let ip6: [Int]
    let dns: [Int]
    let fid: [Int]
    let mlfid: [Int]
    let nofail: [Int]
    let mlfforget: [Int]
    let mlfgained: [Int]
    let content: [Int]
    let skiplines: [Int]
    let names: Set<String>
    /// True when the regex has `alt_`/`tuple_` groups (fields then need fail2ban's alternative mapping).
    let hasAlternatives: Bool

    /// Python text after tag expansion and translation (what PCRE2 compiles).
    let translated: String
    let ascii: Bool

    init(_ value: ConfigValue, multiline: Bool, useDNS: Bool) throws(FilterError) {
        let text = value.value
        if text.allSatisfy({ $0 == " " || $0 == "\t" || $0 == "\n" }) {
            throw FilterError(
                code: .emptyRegex, message: "empty regex; remove the empty line or write a pattern",
                location: value.location)
        }
        let translation = PythonRegex.translate(text)
        let expanded = FailTags.expand(translation.pattern, useDNS: useDNS)
        var options: Pattern.Options = [.utf]
        if !translation.ascii { options.insert(.ucp) }
        if multiline { options.insert(.multiline) }
        do {
            pattern = try Pattern("(*LF)" + expanded, options: options)
        } catch {
            throw FilterError(
                code: .badRegex,
                message: "unable to compile regular expression '\(text)': \(error.message) "
                    + "(at offset \(max(0, error.offset - 5)) of the expanded pattern); fix the regex",
                location: value.location)
        }
        source = text
        location = value.location
        translated = expanded
        ascii = translation.ascii
        let sorted = pattern.names.sorted { $0.value.min() ?? 0 < $1.value.min() ?? 0 }
        namedGroups = sorted.map { ($0.key, $0.value.sorted()) }
        let names = pattern.names
        func g(_ n: String) -> [Int] { (names[n] ?? []).sorted() }
        ip4 = g("ip4")
        ip6 = g("ip6")
        dns = g("dns")
        fid = g("fid")
        mlfid = g("mlfid")
        nofail = g("nofail")
        mlfforget = g("mlfforget")
        mlfgained = g("mlfgained")
        content = g("content")
        skiplines = names.filter { $0.key.hasPrefix("skiplines") }.flatMap(\.value).sorted()
        self.names = Set(names.keys)
        hasAlternatives = names.keys.contains { $0.hasPrefix("alt_") || $0.hasPrefix("tuple_") }
    }

    /// True when the regex can be one branch of a combined alternation (no numbered references).
    var combinable: Bool {
        let t = translated
        return !t.contains("\\g{") && !t.contains("(?(1") && !t.contains("(?(2") && !t.contains("(?(3")
            && !t.contains("(?(4") && !t.contains("(?(5") && !t.contains("(?(6") && !t.contains("(?(7")
            && !t.contains("(?(8") && !t.contains("(?(9") && !t.contains("(?R") && !t.contains("(?1")
    }
}

/// Finds a line's date. The engine's view of the date detector, so that tests can use their own.
protocol LineDateFinder: AnyObject {
    /// The byte span of the date in `line` and its time, or nil.
    func findDate(_ line: UnsafeBufferPointer<UInt8>) -> (range: Range<Int>, time: Double)?
    /// Template names in use.
    var templateNames: [String] { get }
    /// Hits per template.
    var templateHits: [Int] { get }
}

/// A filter compiled for matching: fail2ban's failregex/ignoreregex/prefregex semantics on PCRE2 (JIT).
/// Immutable and shareable; each worker makes its own `LineProcessor`.
///
/// ```swift
/// let config = try ConfigTree(root: "/etc/fail2ban").loadFilter("sshd[mode=aggressive]")
/// let filter = try CompiledFilter(config)
/// let p = try filter.makeProcessor()
/// var line = "Nov 28 09:16:05 srv sshd[32310]: Failed password for root from 192.0.2.7 port 22 ssh2"
/// let outcome = line.withUTF8 { p.process($0) }   // .matched; p.failures[0].address == 192.0.2.7
/// ```
public final class CompiledFilter: @unchecked Sendable {
    // SAFETY: every stored property is immutable after init, and the patterns are shareable.
    let failregex: [FilterRegex]
    let ignoreregex: [FilterRegex]
    let prefregex: FilterRegex?
    /// Per failregex: the prefregex's groups it does not override (its own groups win, set or not).
    let prefOnlyGroups: [[(name: String, groups: [Int])]]
    /// All failregexes as one alternation, to reject most lines with one match call.
    let combined: Pattern?
    /// Group number of each failregex's branch in `combined`.
    let combinedBranchGroups: [Int]
    /// True when the branch that matched in `combined` is the first failregex that matches.
    let combinedSelectsRegex: Bool
    /// Single-line filters whose failregexes are anchored at the subject's start: per first byte of the subject,
    /// the failregexes that can match it (bit i = failregex i; `FirstBytes`). A line whose bit set is empty
    /// cannot match any; otherwise only those run, one by one. Nil when it cannot tell for most of them.
    let firstByteCandidates: [UInt64]?
    /// The prefilter (`RequiredLiterals`): strings one of which every prefregex match contains, and strings one of
    /// which every match of any failregex contains (nil: no condition, or `FilterOptions.prefilter` is `.off`).
    let prefregexLiterals: LiteralSet?
    let failregexLiterals: LiteralSet?
    /// Options in force.
    public let options: FilterOptions
    /// Lines kept for multi-line regexes (fail2ban's `maxlines`, at least 1).
    public let maxLines: Int
    /// The date pattern in force (jail's, else filter's), if any.
    public let datePattern: String?
    let makeDateFinder: @Sendable () throws(FilterError) -> LineDateFinder?
    /// Whether `makeDateFinder` is the standard one (not injected by a test).
    let usesDefaultDateFinder: Bool

    /// The failregexes as written, in order.
    public var failregexSources: [String] { failregex.map(\.source) }
    /// The ignoreregexes as written, in order.
    public var ignoreregexSources: [String] { ignoreregex.map(\.source) }
    /// The prefregex with its tags expanded, as fail2ban-regex prints it (Python syntax); nil without one.
    public var prefregexExpanded: String? {
        prefregex.map { FailTags.expand($0.source, useDNS: options.dnsMode != .no) }
    }

    /// Compiles a filter. Throws `FilterError` naming the file and line of the regex at fault.
    public convenience init(_ definition: FilterConfiguration, options: FilterOptions = .init()) throws(FilterError) {
        try self.init(definition, options: options, dateFinder: nil)
    }

    init(
        _ definition: FilterConfiguration, options: FilterOptions,
        dateFinder: (@Sendable () throws(FilterError) -> LineDateFinder?)?
    ) throws(FilterError) {
        let maxLines = options.maxLines ?? definition.maxlines ?? 1
        guard maxLines >= 1, maxLines <= 10_000 else {
            throw FilterError(
                code: .badOption, message: "maxlines = \(maxLines) is out of range; use 1…10000",
                location: nil)
        }
        self.maxLines = maxLines
        self.options = options
        let multiline = maxLines > 1
        let useDNS = options.dnsMode != .no
        var pref: FilterRegex? = nil
        if let p = definition.prefregex, !p.value.isEmpty {
            // fail2ban compiles prefregex and ignoreregex without MULTILINE, even with maxlines > 1.
            pref = try FilterRegex(p, multiline: false, useDNS: useDNS)
        }
        prefregex = pref
        var fails: [FilterRegex] = []
        for v in definition.failregex {
            let r = try FilterRegex(v, multiline: multiline, useDNS: useDNS)
            let ids = FailTags.identifyingGroups
            if r.names.isDisjoint(with: ids), pref?.names.isDisjoint(with: ids) ?? true {
                throw FilterError(
                    code: .noFailureID,
                    message: "no failure-id group in '\(v.value)': add <HOST>, <ADDR>, <IP4>, <IP6>, <DNS>, "
                        + "<F-ID>…</F-ID> or <F-MLFID>…</F-MLFID>",
                    location: v.location)
            }
            fails.append(r)
        }
        failregex = fails
        prefOnlyGroups = fails.map { f in
            (pref?.namedGroups ?? []).filter { $0.name != "content" && !f.names.contains($0.name) }
        }
        var ignores: [FilterRegex] = []
        for v in definition.ignoreregex {
            ignores.append(try FilterRegex(v, multiline: false, useDNS: useDNS))
        }
        ignoreregex = ignores

        firstByteCandidates = CompiledFilter.firstByteTable(fails, multiline: multiline)
        if options.prefilter == .off {
            prefregexLiterals = nil
            failregexLiterals = nil
        } else {
            prefregexLiterals = pref.flatMap { RequiredLiterals.of($0.translated) }.map(LiteralSet.init)
            failregexLiterals = CompiledFilter.requiredFailregexLiterals(fails).map(LiteralSet.init)
        }
        if fails.count > 1, fails.allSatisfy(\.combinable) {
            var options: Pattern.Options = [.utf, .dupNames]
            if !fails.contains(where: \.ascii) { options.insert(.ucp) }
            if multiline { options.insert(.multiline) }
            // Each branch is a numbered group, so the match tells which failregex matched first.
            let text = "(*LF)" + fails.map { "(" + $0.translated + ")" }.joined(separator: "|")
            let pattern = try? Pattern(text, options: options)
            combined = pattern
            // Group number of each branch (a branch's own groups come after it).
            var numbers: [Int] = []
            var next = 1
            for f in fails {
                numbers.append(next)
                next += 1 + f.pattern.captureCount
            }
            combinedBranchGroups = numbers
            // When every failregex is anchored at the start (single-line mode), the first branch that matches is
            // the first failregex that matches: the engine can go straight to it.
            combinedSelectsRegex =
                pattern != nil && !multiline && fails.allSatisfy(\.pattern.isAnchored)
                && pattern?.captureCount == next - 1
        } else {
            combined = nil
            combinedBranchGroups = []
            combinedSelectsRegex = false
        }

        let pattern = options.datePattern ?? definition.datepattern?.value
        datePattern = pattern
        usesDefaultDateFinder = dateFinder == nil
        if let dateFinder {
            makeDateFinder = dateFinder
        } else {
            makeDateFinder = CompiledFilter.defaultDateFinder(pattern: pattern, options: options)
        }
        // Fail early on a bad date pattern.
        _ = try makeDateFinder()
    }

    /// The union of every failregex's required literals; nil when one of them has none (or the union is large).
    static func requiredFailregexLiterals(_ fails: [FilterRegex]) -> [[UInt8]]? {
        var union: [[UInt8]] = []
        for f in fails {
            guard let l = RequiredLiterals.of(f.translated) else { return nil }
            union += l
        }
        var seen = Set<[UInt8]>()
        union = union.filter { seen.insert($0).inserted }
        return union.isEmpty || union.count > 64 ? nil : union
    }

    /// See `firstByteCandidates`: nil for multi-line filters (`^` matches at every line there), more than 64
    /// failregexes, or when fewer than half of them have a first-byte set.
    static func firstByteTable(_ fails: [FilterRegex], multiline: Bool) -> [UInt64]? {
        guard !multiline, !fails.isEmpty, fails.count <= 64 else { return nil }
        let sets = fails.map { $0.pattern.isAnchored ? FirstBytes.of($0.translated) : nil }
        guard sets.filter({ $0 != nil }).count * 2 >= fails.count else { return nil }
        var table = [UInt64](repeating: 0, count: 256)
        for (i, set) in sets.enumerated() {
            for b in 0..<256 where set?[b] ?? true { table[b] |= 1 << UInt64(i) }
        }
        return table
    }

    /// Creates the per-worker state for this filter.
    public func makeProcessor() throws -> LineProcessor {
        LineProcessor(filter: self, dates: try makeDateFinder())
    }
}
