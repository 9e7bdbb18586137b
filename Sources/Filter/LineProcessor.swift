import Core

/// Per-worker state of a `CompiledFilter`: PCRE2 match data, the date detector, the reusable line buffers, the
/// multi-line buffer and the `<F-MLFID>` failure cache. Not thread-safe; make one per worker.
///
/// Each call to `process` takes one line (without its newline) and returns what fail2ban would make of it;
/// the failures it produced are then in `failures`. A line that matches nothing allocates nothing.
public final class LineProcessor {
    /// The filter this processor runs.
    public let filter: CompiledFilter
    let dates: LineDateFinder?
    private let prefMatcher: Matcher?
    private let failMatchers: [Matcher]
    private let ignoreMatchers: [Matcher]
    private let combinedMatcher: Matcher?
    private let checkIgnoreFirst: Bool
    private let checkAllRegex: Bool
    /// The prefilter (`CompiledFilter.prefregexLiterals`, `failregexLiterals`): the prefregex's literals, looked for
    /// before it runs; the failregexes' literals, looked for before the prefregex (`failBeforePrefregex`) when
    /// skipping it changes nothing but `prefregexMatched` — single-line filters in `.on` mode, or no prefregex; a
    /// multi-line prefregex's `<F-CONTENT>` replaces the buffered lines, which a skip would leave — else after it.
    private let prefLiterals: LiteralSet?
    private let failLiterals: LiteralSet?
    private let failBeforePrefregex: Bool
    /// `CompiledFilter.firstByteCandidates`, copied where reading it costs no reference counting (nil: none).
    private let candidateTable: UnsafeMutablePointer<UInt64>?

    // The mutable state below skips Swift's dynamic exclusivity checks (a runtime call per access, ~7 per line):
    // a processor is used by one worker at a time and no method holds an access to these across a call that
    // could reach them again.

    /// The regex subject: the line with its date cut out, plus the lines kept for multi-line regexes, plus "\n".
    @exclusivity(unchecked) private var work: UnsafeMutablePointer<UInt8>
    @exclusivity(unchecked) private var workCapacity: Int
    /// The prefregex's `<F-CONTENT>` plus "\n".
    @exclusivity(unchecked) private var content: UnsafeMutablePointer<UInt8>
    @exclusivity(unchecked) private var contentCapacity: Int
    /// The multi-line subject rebuilt from the lines left after a failregex took its lines (next regexes see it).
    @exclusivity(unchecked) private var rest: UnsafeMutablePointer<UInt8>
    @exclusivity(unchecked) private var restCapacity: Int

    /// Lines kept for multi-line regexes (maxlines > 1): text with the date cut, and the original line.
    @exclusivity(unchecked) private var buffered: [(text: [UInt8], original: [UInt8])] = []
    @exclusivity(unchecked) private var lastTime: Double?
    @exclusivity(unchecked) private var cache: MultiLineFailureCache

    /// Failures of the current line already built (see `failures`).
    @exclusivity(unchecked) private var built: [Failure] = []
    /// Failures of the current line not built yet: their parts, turned into `Failure`s when `failures` is read.
    @exclusivity(unchecked) private var drafts: [FailureDraft] = []
    /// A copy of the current line, for the drafts' text (the caller's buffer may be gone when they are built).
    @exclusivity(unchecked) private var lineCopy: UnsafeMutablePointer<UInt8>
    @exclusivity(unchecked) private var lineCopyCapacity = 0
    @exclusivity(unchecked) private var lineCopyCount = -1

    /// Failures produced by the last call to `process` (usually none or one). Built when first read after that
    /// call: a line that only needs a verdict (`portcullis regex`'s counts) makes no strings, dictionaries or
    /// addresses.
    public var failures: [Failure] {
        if !drafts.isEmpty { buildDrafts() }
        return built
    }
    @exclusivity(unchecked) private var counters: FilterStats
    /// Some regex stopped with a PCRE2 error (match limit …) on the current line.
    @exclusivity(unchecked) private var hitMatchLimit = false

    /// Counters since this processor was made.
    public var stats: FilterStats {
        var s = counters
        if let dates {
            s.dateTemplateNames = dates.templateNames
            s.dateTemplateHits = dates.templateHits
        }
        return s
    }

    init(filter: CompiledFilter, dates: LineDateFinder?) {
        self.filter = filter
        self.dates = dates
        prefMatcher = filter.prefregex?.pattern.makeMatcher()
        failMatchers = filter.failregex.map { $0.pattern.makeMatcher() }
        ignoreMatchers = filter.ignoreregex.map { $0.pattern.makeMatcher() }
        combinedMatcher = filter.combined?.makeMatcher()
        checkIgnoreFirst = !filter.ignoreregex.isEmpty && filter.ignoreregex.count < filter.failregex.count - 2
        checkAllRegex = filter.options.checkAllRegex
        prefLiterals = filter.prefregexLiterals
        failLiterals = filter.failregexLiterals
        failBeforePrefregex =
            filter.prefregex == nil || (filter.maxLines == 1 && filter.options.prefilter == .on)
        if let table = filter.firstByteCandidates {
            let p = UnsafeMutablePointer<UInt64>.allocate(capacity: 256)
            p.initialize(from: table, count: 256)
            candidateTable = p
        } else {
            candidateTable = nil
        }
        // Each invalid byte may become a 3-byte U+FFFD.
        workCapacity = 3 * filter.options.maxLineLength + 2
        work = .allocate(capacity: workCapacity)
        contentCapacity = workCapacity
        content = .allocate(capacity: contentCapacity)
        restCapacity = 1
        rest = .allocate(capacity: restCapacity)
        lineCopy = .allocate(capacity: 1)
        cache = MultiLineFailureCache(now: filter.options.now)
        counters = FilterStats(failregexCount: filter.failregex.count, ignoreregexCount: filter.ignoreregex.count)
        built.reserveCapacity(4)
        drafts.reserveCapacity(4)
    }

    deinit {
        candidateTable?.deallocate()
        lineCopy.deallocate()
        work.deallocate()
        content.deallocate()
        rest.deallocate()
    }

    /// Processes one log line (bytes without the trailing newline; a trailing CR is kept as fail2ban keeps it).
    /// A line longer than `FilterOptions.maxLineLength` is not matched: `.tooLong` (never cut: a prefix could
    /// end right after an address the attacker wrote).
    @discardableResult
    public func process(_ line: UnsafeBufferPointer<UInt8>) -> LineOutcome {
        process(line, knownTime: nil, shared: nil)
    }

    /// Processes a line whose time is already known (journal entries): no date is searched or cut.
    @discardableResult
    public func process(_ line: UnsafeBufferPointer<UInt8>, time: Double) -> LineOutcome {
        process(line, knownTime: time, shared: nil)
    }

    /// Processes a line whose date was already looked for by a ``SharedDateFinder`` of this filter's date
    /// settings (``CompiledFilter/dateSharingKey``): `date` is what it found in this very line (nil: none), so
    /// jails reading the same lines detect each date once between them.
    @discardableResult
    public func process(_ line: UnsafeBufferPointer<UInt8>, date: FoundDate?) -> LineOutcome {
        process(line, knownTime: nil, shared: .some(date))
    }

    /// Convenience for tests and cold paths.
    @discardableResult
    public func process(_ line: String) -> LineOutcome {
        var s = line
        return s.withUTF8 { process($0) }
    }

    private func process(
        _ raw: UnsafeBufferPointer<UInt8>, knownTime: Double?, shared: FoundDate?? = nil
    ) -> LineOutcome {
        if !built.isEmpty { built.removeAll(keepingCapacity: true) }
        if !drafts.isEmpty { drafts.removeAll(keepingCapacity: true) }
        lineCopyCount = -1
        guard raw.count <= filter.options.maxLineLength else {
            counters.tooLong += 1
            return .tooLong
        }
        counters.lines += 1
        let line = raw
        hitMatchLimit = false

        var dateRange: Range<Int>? = nil
        let time: Double
        let found: (range: Range<Int>, time: Double)?
        if knownTime != nil {
            found = nil
        } else if let shared {
            found = shared.map { ($0.range, $0.time) }
        } else {
            found = dates?.findDate(line)
        }
        if let knownTime {
            time = knownTime
        } else if let found {
            dateRange = found.range.clamped(to: 0..<line.count)
            if found.range.isEmpty {
                // An optional date (`^WARNING:()**`) that matched empty: fail2ban takes the last known date when
                // it is recent, else now.
                let now = filter.options.now()
                if let last = lastTime, last > now - 60 { time = last } else { time = now }
            } else {
                time = found.time
                lastTime = time
            }
        } else {
            time = lastTime ?? filter.options.now()
        }

        let outcome: LineOutcome
        if filter.maxLines == 1 {
            // Fast path: the subject is the line without its date, then "\n".
            var n = 0
            if let r = dateRange {
                copy(line, 0..<r.lowerBound, to: &n)
                copy(line, r.upperBound..<line.count, to: &n)
            } else {
                copy(line, 0..<line.count, to: &n)
            }
            work[n] = 0x0A
            n += 1
            outcome = evaluate(subjectLength: n, time: time, original: line, lineStarts: nil)
        } else {
            var cut = 0
            if let r = dateRange {
                copy(line, 0..<r.lowerBound, to: &cut)
                copy(line, r.upperBound..<line.count, to: &cut)
            } else {
                copy(line, 0..<line.count, to: &cut)
            }
            let text = Array(UnsafeBufferPointer(start: work, count: cut))
            buffered.append((text, Array(line)))
            if buffered.count > filter.maxLines { buffered.removeFirst(buffered.count - filter.maxLines) }
            ensureWork(bufferedLength)
            let (n, starts) = joinBuffered(into: work)
            outcome = evaluate(subjectLength: n, time: time, original: line, lineStarts: starts)
        }
        switch outcome {
        case .matched: counters.matched += 1
        case .ignored: counters.ignored += 1
        case .missed:
            if hitMatchLimit {
                counters.matchLimit += 1
                return .matchLimit
            }
            counters.missed += 1
        case .tooLong, .matchLimit: break
        }
        return outcome
    }

    /// Copies `line[range]` into the work buffer at `n`, replacing each invalid UTF-8 sequence with U+FFFD (as
    /// fail2ban's decoding with `errors='replace'` does), so that regexes see what fail2ban sees.
    @inline(__always)
    private func copy(_ line: UnsafeBufferPointer<UInt8>, _ range: Range<Int>, to n: inout Int) {
        guard !range.isEmpty, let base = line.baseAddress else { return }
        var i = range.lowerBound
        let end = range.upperBound
        let raw = UnsafeRawPointer(base)
        while i < end {
            // ASCII fast path, 8 bytes at a time.
            var j = i
            while j + 8 <= end, raw.loadUnaligned(fromByteOffset: j, as: UInt64.self) & 0x8080_8080_8080_8080 == 0 {
                j += 8
            }
            while j < end, base[j] < 0x80 { j += 1 }
            if j > i {
                (work + n).update(from: base + i, count: j - i)
                n += j - i
                i = j
            }
            if i >= end { break }
            let length = validSequenceLength(base, i, end)
            if length > 0 {
                (work + n).update(from: base + i, count: length)
                n += length
                i += length
            } else {
                work[n] = 0xEF
                work[n + 1] = 0xBF
                work[n + 2] = 0xBD
                n += 3
                i += max(1, invalidPrefixLength(base, i, end))
            }
        }
    }

    /// Length of the valid UTF-8 sequence starting at `i` (a byte >= 0x80), or 0.
    @inline(__always)
    private func validSequenceLength(_ b: UnsafePointer<UInt8>, _ i: Int, _ end: Int) -> Int {
        let c = b[i]
        func cont(_ k: Int) -> Bool { i + k < end && b[i + k] & 0xC0 == 0x80 }
        switch c {
        case 0xC2...0xDF:
            return cont(1) ? 2 : 0
        case 0xE0...0xEF:
            guard cont(1), cont(2) else { return 0 }
            let c1 = b[i + 1]
            if c == 0xE0 && c1 < 0xA0 { return 0 }
            if c == 0xED && c1 > 0x9F { return 0 }
            return 3
        case 0xF0...0xF4:
            guard cont(1), cont(2), cont(3) else { return 0 }
            let c1 = b[i + 1]
            if c == 0xF0 && c1 < 0x90 { return 0 }
            if c == 0xF4 && c1 > 0x8F { return 0 }
            return 4
        default:
            return 0
        }
    }

    /// Bytes one U+FFFD stands for: a lead byte and the continuation bytes that follow it (at most 3 in all).
    @inline(__always)
    private func invalidPrefixLength(_ b: UnsafePointer<UInt8>, _ i: Int, _ end: Int) -> Int {
        let c = b[i]
        guard c >= 0xC2, c <= 0xF4 else { return 1 }
        var k = 1
        let maxLength = c >= 0xF0 ? 4 : (c >= 0xE0 ? 3 : 2)
        while k < maxLength, i + k < end, b[i + k] & 0xC0 == 0x80 { k += 1 }
        return k
    }

    /// True when every byte of `b` is ASCII (8 bytes at a time).
    @inline(__always)
    static func isASCII(_ b: UnsafeBufferPointer<UInt8>) -> Bool {
        guard let base = b.baseAddress else { return true }
        let raw = UnsafeRawPointer(base)
        var i = 0
        var bits: UInt64 = 0
        while i + 8 <= b.count {
            bits |= raw.loadUnaligned(fromByteOffset: i, as: UInt64.self)
            i += 8
        }
        var tail: UInt8 = 0
        while i < b.count {
            tail |= base[i]
            i += 1
        }
        return bits & 0x8080_8080_8080_8080 == 0 && tail & 0x80 == 0
    }

    private func ensureWork(_ count: Int) {
        guard count > workCapacity else { return }
        work.deallocate()
        workCapacity = count * 2
        work = .allocate(capacity: workCapacity)
    }

    /// Index of the first ignoreregex matching `subject`, counting its hit.
    private func ignoreHit(_ subject: UnsafeBufferPointer<UInt8>, ascii: Bool) -> Int? {
        for (j, m) in ignoreMatchers.enumerated() where m.matches(validUTF8: subject, ascii: ascii) {
            counters.ignoreregexHits[j] += 1
            return j
        }
        return nil
    }

    private func evaluate(
        subjectLength: Int, time: Double, original: UnsafeBufferPointer<UInt8>, lineStarts: [Int]?
    ) -> LineOutcome {
        let whole = UnsafeBufferPointer(start: work, count: subjectLength)
        // Every subject below is a part of `whole`: all ASCII when it is (the patterns' 8-bit twins then run).
        let ascii = Self.isASCII(whole)
        if checkIgnoreFirst, ignoreHit(whole, ascii: ascii) != nil { return .ignored }

        // The prefilter: a subject without the literals every match contains matches nothing. What the regexes
        // would have searched is `whole` or a part of it (a literal has no newline, so it cannot straddle the
        // newline after `<F-CONTENT>` or between buffered lines), and a line no regex matches changes no state.
        if let prefLiterals, !prefLiterals.occurs(in: whole) { return .missed }
        if failBeforePrefregex, let failLiterals, !failLiterals.occurs(in: whole) { return .missed }

        var subject = whole
        var contentReplaced = false
        if let prefMatcher, let pref = filter.prefregex {
            guard prefMatcher.matches(validUTF8: whole, ascii: ascii) else {
                if prefMatcher.lastError != 0 { hitMatchLimit = true }
                return .missed
            }
            counters.prefregexMatched += 1
            if let r = firstRange(prefMatcher, pref.content), !r.isEmpty {
                if r.count + 1 > contentCapacity {
                    content.deallocate()
                    contentCapacity = r.count * 2 + 2
                    content = .allocate(capacity: contentCapacity)
                }
                content.update(from: work + r.lowerBound, count: r.count)
                content[r.count] = 0x0A
                subject = UnsafeBufferPointer(start: content, count: r.count + 1)
                contentReplaced = true
                if lineStarts != nil {
                    // fail2ban replaces the whole multi-line buffer with the content.
                    buffered = [(Array(UnsafeBufferPointer(start: content, count: r.count)), Array(original))]
                }
            }
            if !failBeforePrefregex, let failLiterals, !failLiterals.occurs(in: subject) { return .missed }
        }
        var firstRegex = 0
        var combinedMatched = false
        // Single-line filters with start-anchored failregexes: only those that can begin with the subject's first
        // byte run (one by one, in order: the first that matches is the one the combined pattern would select).
        var candidates = UInt64.max
        if let table = candidateTable {
            candidates = table[Int(subject[0])]
            if candidates == 0 { return .missed }
        }
        if let combinedMatcher, candidates == .max {
            combinedMatched = combinedMatcher.matches(validUTF8: subject, ascii: ascii)
            // A PCRE2 error (match limit on a hostile line) is not a verdict: then every regex is tried on its own.
            if !combinedMatched, combinedMatcher.lastError == 0 { return .missed }
            if combinedMatched, filter.combinedSelectsRegex {
                for (i, g) in filter.combinedBranchGroups.enumerated() where combinedMatcher.range(g) != nil {
                    firstRegex = i
                    break
                }
            }
        }

        var ignored = false
        var anyFailure = false
        var anyNoFail = false
        // fail2ban's multi-line quirk, kept for the same verdicts: once a failregex takes its lines, the next
        // regexes search the lines left, but the lines a match covers are counted in the buffer as it was when
        // this line came (`org`), and the lines left are that buffer without them.
        let org = buffered
        var starts = lineStarts
        var rebuild = false
        // (A table exists only for at most 64 failregexes; past 64 every regex runs.)
        for i in firstRegex..<filter.failregex.count where i >= 64 || candidates & (1 << UInt64(i)) != 0 {
            let regex = filter.failregex[i]
            if rebuild {
                rebuild = false
                let rebuilt = rebuildSubject()
                subject = rebuilt.subject
                starts = rebuilt.starts
            }
            let m: MatchView
            if i == firstRegex, combinedMatched, filter.combinedSelectsRegex, let combinedMatcher {
                // The combined match already ran this regex (as its branch): read its groups from there.
                m = MatchView(matcher: combinedMatcher, offset: filter.combinedBranchGroups[i])
            } else {
                guard failMatchers[i].matches(validUTF8: subject, ascii: ascii) else {
                    if failMatchers[i].lastError != 0 { hitMatchLimit = true }
                    continue
                }
                m = MatchView(matcher: failMatchers[i], offset: 0)
            }
            if !ignoreMatchers.isEmpty,
                ignoreHit(ignoreSubject(m, regex, subject, starts, contentReplaced), ascii: ascii) != nil
            {
                ignored = true
                removeMatchedLines(m, regex, org: org, lineStarts: starts, contentReplaced: contentReplaced)
                rebuild = starts != nil && !contentReplaced
                if !checkAllRegex { break }
                continue
            }
            var current: DraftLines = .original
            if starts != nil && !contentReplaced {
                current = .lines(
                    linesOfMatch(
                        m, regex, org: org, original: original, lineStarts: starts,
                        contentReplaced: contentReplaced))
            } else {
                keepLine(original)
            }
            removeMatchedLines(m, regex, org: org, lineStarts: starts, contentReplaced: contentReplaced)
            rebuild = starts != nil && !contentReplaced

            // Fields: the prefregex's groups, overridden by the failregex's (an unset group removes the value).
            var fields = FieldSet()
            if let prefMatcher {
                for (name, groups) in filter.prefOnlyGroups[i] {
                    if let r = firstRange(prefMatcher, groups) { fields[name] = text(whole, r) }
                }
            }
            for (name, groups) in regex.namedGroups {
                if let r = firstRange(m, groups) { fields[name] = text(subject, r) }
            }
            if regex.hasAlternatives { applyAlternatives(&fields) }

            var before: [String] = []
            var users: [String] = []
            var isNoFail = !(fields["nofail"] ?? "").isEmpty
            if let mlfid = fields["mlfid"] {
                let merged = cache.merge(mlfid: mlfid, current: fields) { self.lines(current) }
                fields = merged.fields
                before = merged.before
                if !merged.includesCurrent { current = .none }
                users = merged.users
                isNoFail = merged.isNoFail
                if isNoFail, !checkAllRegex { return ignored ? .ignored : .missed }
            }
            let draft = FailureDraft(
                regexIndex: i, time: time, fields: fields, before: before, current: current, users: users,
                isNoFail: isNoFail)
            guard let added = record(draft) else {
                // An mlfid match that has no address yet: fail2ban reports it only when checking all regexes.
                if !checkAllRegex { return ignored ? .ignored : .missed }
                counters.failregexHits[i] += 1
                if isNoFail { anyNoFail = true } else { anyFailure = true }
                continue
            }
            if added > 0 {
                counters.failregexHits[i] += added
                if isNoFail { anyNoFail = true } else { anyFailure = true }
            }
            if !checkAllRegex { break }
        }
        if ignored || anyNoFail { return .ignored }
        return anyFailure ? .matched : .missed
    }

    /// fail2ban's alternative groups: a non-empty `alt_NAME` fills `NAME` when that is unset or empty.
    private func applyAlternatives(_ fields: inout FieldSet) {
        for (key, value) in fields.items.map({ ($0.name, $0.value) }) where key.hasPrefix("alt_") && !value.isEmpty {
            let name = String(key.dropFirst(4))
            if (fields[name] ?? "").isEmpty { fields[name] = value }
        }
        for (key, value) in fields.items.map({ ($0.name, $0.value) }) where key.hasPrefix("tuple_") {
            let name = String(key.dropFirst(6))
            if let existing = fields[name] { fields[name] = existing + "," + value } else { fields[name] = value }
        }
    }

    /// Keeps a failure of the current line: returns how many failures it makes, or nil when it is pending (an
    /// mlfid match without an address yet). Only a host name to resolve is built at once (the resolver decides
    /// how many failures there are); everything else waits for `failures` to be read.
    private func record(_ d: FailureDraft) -> Int? {
        let f = d.fields
        let fid = f["fid"]
        let ip4 = f["ip4"]
        let ip6 = ip4 == nil ? f["ip6"] : nil
        let dns = f["dns"]
        if fid == nil, ip4 == nil, ip6 == nil, dns == nil { return nil }
        if ip4 == nil, ip6 == nil, let name = dns, fid == nil || fid == name, filter.options.resolver != nil,
            filter.options.dnsMode == .yes || filter.options.dnsMode == .warn
        {
            buildDrafts()
            let first = built.count
            build(d, into: &built)
            return built.count - first
        }
        drafts.append(d)
        return 1
    }

    /// Builds the drafts (in order, after the failures already built).
    private func buildDrafts() {
        for d in drafts { build(d, into: &built) }
        drafts.removeAll(keepingCapacity: true)
    }

    /// Copies the current line (once per line) for the drafts that refer to it.
    private func keepLine(_ line: UnsafeBufferPointer<UInt8>) {
        guard lineCopyCount < 0 else { return }
        if line.count > lineCopyCapacity {
            lineCopy.deallocate()
            lineCopyCapacity = max(line.count, 256)
            lineCopy = .allocate(capacity: lineCopyCapacity)
        }
        if let base = line.baseAddress { lineCopy.update(from: base, count: line.count) }
        lineCopyCount = line.count
    }

    /// The text of a draft's own lines.
    private func lines(_ current: DraftLines) -> [String] {
        switch current {
        case .none: return []
        case .original:
            return [String(decoding: UnsafeBufferPointer(start: lineCopy, count: max(0, lineCopyCount)), as: UTF8.self)]
        case .lines(let lines): return lines
        }
    }

    /// Turns a draft into failures, appended to `out`: the offender is ip4, else ip6, else the host name, else the
    /// F-ID (the draft is not pending: `record` checked).
    private func build(_ d: FailureDraft, into out: inout [Failure]) {
        let fields = d.fields
        let lines = d.before.isEmpty ? self.lines(d.current) : d.before + self.lines(d.current)
        let fid = fields["fid"]
        let ip4 = fields["ip4"]
        let ip6 = ip4 == nil ? fields["ip6"] : nil
        var failure = Failure(
            regexIndex: d.regexIndex, time: d.time, address: nil, subnet: nil, host: nil, id: fid,
            fields: fields.dictionary, lines: lines, users: d.users, isNoFail: d.isNoFail)
        if let ip = ip4 ?? ip6 {
            if let fid, fid != ip {
                // fail2ban: a failure-id different from the address identifies the failure; the address is kept
                // as the `ip` field.
                failure.host = fid
                failure.address = IPAddress(fid)
                failure.fields["ip"] = ip
            } else {
                failure.address = Self.dottedQuad(ip) ?? IPAddress(ip)
                // fail2ban reports an IPv4 as written (so `192.030.0.6` stays as it is) and an IPv6 normalised.
                failure.host = ip4 != nil ? ip : (failure.address?.description ?? ip)
                if let address = failure.address, let cidr = fields["cidr"], let n = Int(cidr), n < address.bitWidth {
                    // <SUBNET>/<CIDR>: the failure is the network.
                    let subnet = Subnet(address: address, prefixLength: max(0, n))
                    failure.subnet = subnet
                    failure.address = subnet.network
                    failure.host = n > 0 ? subnet.description : subnet.network.description
                }
            }
            out.append(failure)
            return
        }
        if let name = fields["dns"] {
            if let fid, fid != name {
                failure.host = fid
                failure.address = IPAddress(fid)
                failure.fields["ip"] = name
                out.append(failure)
                return
            }
            switch filter.options.dnsMode {
            case .yes, .warn:
                if let resolver = filter.options.resolver {
                    for addr in resolver(name) {
                        var f = failure
                        f.address = addr
                        f.host = addr.description
                        out.append(f)
                    }
                    return
                }
                fallthrough
            case .raw, .no:
                failure.host = name
                failure.address = IPAddress(name)
                out.append(failure)
                return
            }
        }
        if let fid {
            failure.host = fid
            failure.address = IPAddress(fid)
            out.append(failure)
        }
    }

    /// A strict dotted quad parsed without allocating; nil for anything else (the caller then falls back to
    /// `IPAddress(_:)`, which accepts the same dotted quads).
    private static func dottedQuad(_ text: String) -> IPAddress? { IPAddress(dottedQuad: text) }

    private func firstRange(_ m: Matcher, _ groups: [Int]) -> Range<Int>? {
        for g in groups { if let r = m.range(g) { return r } }
        return nil
    }

    private func firstRange(_ m: MatchView, _ groups: [Int]) -> Range<Int>? {
        for g in groups { if let r = m.range(g) { return r } }
        return nil
    }

    private func text(_ buffer: UnsafeBufferPointer<UInt8>, _ r: Range<Int>) -> String {
        String(decoding: UnsafeBufferPointer(rebasing: buffer[r]), as: UTF8.self)
    }

    /// What an ignoreregex sees once a failregex matched: the lines the match covers (in multi-line mode), else
    /// the whole subject.
    private func ignoreSubject(
        _ m: MatchView, _ regex: FilterRegex, _ subject: UnsafeBufferPointer<UInt8>, _ lineStarts: [Int]?,
        _ contentReplaced: Bool
    ) -> UnsafeBufferPointer<UInt8> {
        guard let lineStarts, !contentReplaced else { return subject }
        let covered = coveredLines(m, regex, lineStarts: lineStarts)
        guard let first = covered.first, let last = covered.last else { return subject }
        return UnsafeBufferPointer(rebasing: subject[lineStarts[first]..<lineStarts[last + 1]])
    }

    /// Indexes of the buffered lines a match covers (skipped lines excluded).
    private func coveredLines(_ m: MatchView, _ regex: FilterRegex, lineStarts: [Int]) -> [Int] {
        guard let r = m.range(0) else { return [] }
        var skipped: [Range<Int>] = []
        for g in regex.skiplines { if let s = m.range(g) { skipped.append(s) } }
        var result: [Int] = []
        for k in 0..<(lineStarts.count - 1) {
            let ls = lineStarts[k]
            let le = lineStarts[k + 1]  // one past this line's "\n"
            let overlaps = r.lowerBound < le && (r.upperBound > ls || (r.isEmpty && r.lowerBound == ls))
            if !overlaps { continue }
            if skipped.contains(where: { $0.lowerBound <= ls && $0.upperBound >= le }) { continue }
            result.append(k)
        }
        return result
    }

    /// The original text of the lines a match covers: positions in the subject searched, counted in `org` (the
    /// buffer as the line came, as fail2ban counts them).
    private func linesOfMatch(
        _ m: MatchView, _ regex: FilterRegex, org: [(text: [UInt8], original: [UInt8])],
        original: UnsafeBufferPointer<UInt8>, lineStarts: [Int]?, contentReplaced: Bool
    ) -> [String] {
        guard let lineStarts, !contentReplaced else {
            return [String(decoding: original, as: UTF8.self)]
        }
        return coveredLines(m, regex, lineStarts: lineStarts).compactMap {
            $0 < org.count ? String(decoding: org[$0].original, as: UTF8.self) : nil
        }
    }

    /// Keeps the lines a match does not cover: `org` without the covered positions.
    private func removeMatchedLines(
        _ m: MatchView, _ regex: FilterRegex, org: [(text: [UInt8], original: [UInt8])], lineStarts: [Int]?,
        contentReplaced: Bool
    ) {
        guard let lineStarts else { return }
        if contentReplaced {
            buffered.removeAll()
            return
        }
        let covered = Set(coveredLines(m, regex, lineStarts: lineStarts))
        if covered.isEmpty { return }
        buffered = org.enumerated().filter { !covered.contains($0.offset) }.map(\.element)
    }

    /// The multi-line subject made again from `buffered` (in `rest`, so that the first subject stays readable).
    private func rebuildSubject() -> (subject: UnsafeBufferPointer<UInt8>, starts: [Int]) {
        let total = bufferedLength
        if total > restCapacity {
            rest.deallocate()
            restCapacity = total * 2
            rest = .allocate(capacity: restCapacity)
        }
        let (n, starts) = joinBuffered(into: rest)
        return (UnsafeBufferPointer(start: rest, count: n), starts)
    }

    /// Bytes the buffered lines take joined, each followed by a newline.
    private var bufferedLength: Int { buffered.reduce(0) { $0 + $1.text.count + 1 } }

    /// Writes the buffered lines, each followed by a newline, to `destination` (room for `bufferedLength` bytes);
    /// returns the subject's length and where each line starts, plus the end.
    private func joinBuffered(into destination: UnsafeMutablePointer<UInt8>) -> (length: Int, starts: [Int]) {
        var n = 0
        var starts: [Int] = []
        starts.reserveCapacity(buffered.count + 1)
        for b in buffered {
            starts.append(n)
            b.text.withUnsafeBufferPointer { p in
                if let base = p.baseAddress { (destination + n).update(from: base, count: p.count) }
            }
            n += b.text.count
            destination[n] = 0x0A
            n += 1
        }
        starts.append(n)
        return (n, starts)
    }
}

/// A failure of the current line before it is built: what `LineProcessor.failures` makes it from.
struct FailureDraft {
    var regexIndex: Int
    var time: Double
    var fields: FieldSet
    /// Lines that come before the match's own (from the `<F-MLFID>` cache).
    var before: [String]
    var current: DraftLines
    var users: [String]
    var isNoFail: Bool
}

/// A draft's own lines: none, the current line (kept in the processor's copy), or lines already made.
enum DraftLines {
    case none
    case original
    case lines([String])
}

/// A failregex's match, read from its own matcher or from its branch of the combined pattern (`offset` = the
/// branch's group number; group 0 of the regex is the branch group).
struct MatchView {
    let matcher: Matcher
    let offset: Int

    @inline(__always)
    func range(_ group: Int) -> Range<Int>? { matcher.range(group + offset) }
}
