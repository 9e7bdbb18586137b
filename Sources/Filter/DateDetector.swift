import Synchronization

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Where a log line's timestamp was found, and what time it denotes.
public struct DateMatch: Sendable, Equatable {
    /// Byte range in the line that fail2ban cuts out as the date (the failregexes see the line without it).
    public var range: Range<Int>
    /// Epoch seconds (fractional allowed). When `isValid` is false this is the detector's current time (what
    /// fail2ban-regex uses for such lines).
    public var time: Double
    /// Index into `DateDetector.templateNames` of the template that matched.
    public var templateIndex: Int
    /// False when the text matched a template but is no valid time (Feb 30, unknown zone name, `{NONE}`):
    /// fail2ban still cuts `range` out of the line but has no time of its own for it.
    public var isValid: Bool

    /// Creates a match.
    public init(range: Range<Int>, time: Double, templateIndex: Int, isValid: Bool = true) {
        self.range = range
        self.time = time
        self.templateIndex = templateIndex
        self.isValid = isValid
    }
}

/// A bad `datepattern` or `logtimezone`: says which value and why.
public struct DateError: Error, Sendable, CustomStringConvertible {
    /// What kind of problem.
    public enum Code: String, Sendable {
        /// A `datepattern` line does not compile or uses an unknown directive.
        case badPattern
        /// A `logtimezone` value is not understood.
        case badTimeZone
    }
    /// What kind of problem.
    public var code: Code
    /// The offending value as configured.
    public var value: String
    /// Human-readable reason.
    public var message: String

    /// Creates an error.
    public init(code: Code, value: String, message: String) {
        self.code = code
        self.value = value
        self.message = message
    }

    /// One line for a person.
    public var description: String {
        "\(code == .badPattern ? "datepattern" : "logtimezone") '\(value)': \(message)"
    }
}

/// Finds the timestamp of a log line with fail2ban 1.0.2's semantics. One per worker; not thread-safe.
///
/// Templates are tried the way fail2ban tries them: the last template that matched first (at the same place),
/// then all of them in order, preferring line-start matches and the earliest position; templates that hit often
/// move forward. Times without a zone are local (TZ) unless `timeZone` says otherwise; a year-less date in the
/// future (more than a day ahead) belongs to the previous year, a date-less time in the future to yesterday.
///
/// ```swift
/// let detector = try DateDetector()
/// var line = "Aug 14 11:59:59 host sshd[1]: Failed password"
/// let m = line.withUTF8 { detector.match($0) }   // m?.range == 0..<15
/// ```
public final class DateDetector {
    private struct Groups {
        var year = -1, year2 = -1, month = -1, monthName = -1, monthFullName = -1, day = -1
        var hour = -1, hour12 = -1, minute = -1, second = -1, ampm = -1, yearDay = -1
        var zoneOffset = -1, zoneName = -1

        init(_ names: [String: [Int]]) {
            func g(_ n: String) -> Int { names[n]?.first ?? -1 }
            year = g("Y")
            year2 = g("y")
            month = g("m")
            monthName = g("b")
            monthFullName = g("B")
            day = g("d")
            hour = g("H")
            hour12 = g("I")
            minute = g("M")
            second = g("S")
            ampm = g("p")
            yearDay = g("j")
            zoneOffset = g("z")
            zoneName = g("Z")
        }
    }

    /// A compiled template (immutable; its per-worker match state lives in `matcher`).
    private final class Template {
        let kind: DateTemplateKind
        let weight: Double
        let matcher: Matcher
        let groups: Groups
        let anchored: Bool
        /// The hand-written reader for this template, when it is one of the two line-start syslog formats.
        let fast: FastDateFormat?

        init(spec: DateTemplateSpec, matcher: Matcher, groups: Groups, fast: FastDateFormat?) {
            kind = spec.kind
            weight = spec.weight
            self.matcher = matcher
            self.groups = groups
            anchored = !spec.flags.isDisjoint(with: [.lineBegin, .lineEnd])
            self.fast = fast
        }
    }

    /// The two date formats Debian's rsyslog writes, read without PCRE2 when a line has their usual shape:
    /// `2026-11-01T00:00:01.554089+00:00` (RFC 3339, high precision) and `Nov 28 09:16:05` (traditional).
    enum FastDateFormat {
        /// fail2ban's `{^LN-BEG}%ExY(?P<_sep>[-/.])%m(?P=_sep)%d(?:T|  ?)%H:%M:%S(?:[.,]%f)?(?:\s*%z)?`.
        case iso
        /// fail2ban's `{^LN-BEG}(?:%a )?%b %d %k:%M:%S(?:\.%f)?(?: %ExY)?`.
        case syslog
    }
    /// Years the `%ExY` directive accepts (the fast readers check the same range).
    private let exYears: ClosedRange<Int>

    /// Where the last date was found (positions in characters, like fail2ban) and the search bookkeeping.
    private struct Cursor {
        var firstUnused = 0
        var lastPosition = Int.max
        var lastStart = (distance: 1, before: DateDetector.empty, at: DateDetector.empty)
        var lastEnd = (position: Int(Int32.max), before: DateDetector.empty, after: DateDetector.empty)
    }

    /// A character next to a match, as fail2ban compares them (Unicode scalar; `empty` outside the line).
    private typealias Neighbour = UInt32
    private static let empty: Neighbour = 0xFFFF_FFFF

    // Mutable state lives in memory owned by this object (allocated once, freed in deinit): the hot path then
    // needs no exclusivity checks or copy-on-write tests.
    private let templates: [Template]
    private let count: Int
    /// Search order: positions → template index. Reordered as templates gain hits.
    private let order: UnsafeMutablePointer<Int>
    private let hits: UnsafeMutablePointer<Int>
    private let lastUsed: UnsafeMutablePointer<Double>
    /// Character position of each template's last match.
    private let distance: UnsafeMutablePointer<Int>
    private let cursor: UnsafeMutablePointer<Cursor>
    private let defaultZone: Int?  // minutes east of UTC
    /// Whether the line being matched is all ASCII: -1 not known yet, 0 no, 1 yes (the templates' 8-bit twins
    /// then run). Unchecked exclusivity: per-worker state, set and read within one `match` call.
    @exclusivity(unchecked) private var lineASCII: Int8 = -1
    /// Whether the hand-written readers of the two syslog formats run (tests turn them off to compare).
    @exclusivity(unchecked) var usesFastReaders = true
    private let now: @Sendable () -> Double
    private let local: LocalTimeCache
    private static let unusedTime = 300.0

    /// Names of the templates in use, as fail2ban-regex lists them (fixed order; `DateMatch.templateIndex` refers
    /// to it).
    public let templateNames: [String]
    /// Hits per template (same order as `templateNames`).
    public var templateHits: [Int] { Array(UnsafeBufferPointer(start: hits, count: count)) }

    /// Creates a detector.
    /// - Parameters:
    ///   - datePattern: a filter's or jail's `datepattern` (several patterns, one per line); nil = default templates.
    ///   - timeZone: fail2ban's `logtimezone` (`UTC`, `UTC+0200`, `+0200`, `CET`); nil = local time (TZ).
    ///   - now: the current time, used for year inference and for lines whose date is invalid.
    /// - Throws: `DateError` naming the bad pattern line or time zone and why.
    public convenience init(
        datePattern: String? = nil,
        timeZone: String? = nil,
        now: @escaping @Sendable () -> Double = { DateDetector.currentTime() }
    ) throws(DateError) {
        try self.init(datePattern: datePattern, timeZone: timeZone, localZone: nil, now: now)
    }

    /// Creates a detector whose local time follows the POSIX TZ rule `localZone` instead of the process's TZ
    /// (tests use it so that they never change the process environment).
    init(
        datePattern: String?, timeZone: String?, localZone: String?, now: @escaping @Sendable () -> Double
    ) throws(DateError) {
        self.now = now
        if let localZone {
            guard let rule = PosixTimeZone(localZone) else {
                throw DateError(code: .badTimeZone, value: localZone, message: "not a POSIX TZ rule")
            }
            local = LocalTimeCache(zone: rule)
        } else {
            local = LocalTimeCache()
        }
        if let timeZone {
            let trimmed = timeZone.trimmingASCIIWhitespace()
            guard let minutes = ZoneText.offset(trimmed) else {
                throw DateError(
                    code: .badTimeZone, value: timeZone,
                    message: "unknown or unsupported time zone; use UTC, UTC+hhmm, +hh:mm or an abbreviation like CET")
            }
            defaultZone = minutes
        } else {
            defaultZone = nil
        }
        var clock = time_t(wallClock())
        var parts = tm()
        localtime_r(&clock, &parts)
        let currentYear = Int(parts.tm_year) + 1900
        let shared = try Self.compiledTemplates(datePattern: datePattern, currentYear: currentYear)
        exYears = shared.exYears
        templateNames = shared.names
        // Only the match data is per detector; everything else was prepared once for this datepattern and year.
        var compiled: [Template] = []
        compiled.reserveCapacity(shared.prototypes.count)
        for p in shared.prototypes {
            compiled.append(Template(spec: p.spec, matcher: p.pattern.makeMatcher(), groups: p.groups, fast: p.fast))
        }
        templates = compiled
        count = compiled.count
        order = .allocate(capacity: max(1, count))
        hits = .allocate(capacity: max(1, count))
        lastUsed = .allocate(capacity: max(1, count))
        distance = .allocate(capacity: max(1, count))
        for i in 0..<count {
            order[i] = i
            hits[i] = 0
            lastUsed[i] = 0
            distance[i] = Int(Int32.max)
        }
        cursor = .allocate(capacity: 1)
        cursor.initialize(to: Cursor())
    }

    /// What every detector with the same datepattern and year shares (immutable): each template's spec, compiled
    /// pattern, group numbers and fast reader, the template names and the `%ExY` range.
    private struct SharedTemplates {
        struct Prototype {
            let spec: DateTemplateSpec
            let pattern: Pattern
            let groups: Groups
            let fast: FastDateFormat?
        }
        let prototypes: [Prototype]
        let names: [String]
        let exYears: ClosedRange<Int>
    }

    /// Shared templates by (datepattern, current year). A compiled `Pattern` is immutable and shared, so every
    /// detector with the same datepattern (one per processor: each jail and each log file) reuses one PCRE2 compile
    /// and JIT and the work of preparing them; only the per-detector match data is new. At most
    /// `templateCacheLimit` datepatterns are kept (reloads with edited patterns must not grow it without end): past
    /// that the cache starts over; detectors already made keep their patterns.
    private static let templateCache = Mutex<[String: SharedTemplates]>([:])
    static let templateCacheLimit = 256

    private static func compiledTemplates(
        datePattern: String?, currentYear: Int
    ) throws(DateError) -> SharedTemplates {
        let key = "\(currentYear)\u{0}" + (datePattern.map { "p" + $0 } ?? "default")
        if let hit = templateCache.withLock({ $0[key] }) { return hit }
        let compiler = DatePatternCompiler(currentYear: currentYear)
        let specs = try compiler.templates(for: datePattern)
        let (iso, syslog) = fastTemplateSpecs(compiler, currentYear: currentYear)
        var prototypes: [SharedTemplates.Prototype] = []
        for spec in specs {
            // Datepatterns are Python regular expressions: translate the syntax PCRE2 reads differently.
            let translation = PythonRegex.translate(spec.regex)
            var options: Pattern.Options = translation.ascii ? [.utf] : [.utf, .ucp]
            if spec.caseless { options.insert(.caseless) }
            let pattern: Pattern
            do {
                pattern = try Pattern(translation.pattern, options: options)
            } catch {
                throw DateError(
                    code: .badPattern, value: spec.name,
                    message: "does not compile as a regular expression: \(error.message) at offset \(error.offset)")
            }
            var fast: FastDateFormat? = nil
            if spec.kind == .fields, let iso, spec.regex == iso.regex, spec.caseless == iso.caseless,
                spec.flags == iso.flags
            {
                fast = .iso
            } else if spec.kind == .fields, let syslog, spec.regex == syslog.regex,
                spec.caseless == syslog.caseless, spec.flags == syslog.flags
            {
                fast = .syslog
            }
            prototypes.append(.init(spec: spec, pattern: pattern, groups: Groups(pattern.names), fast: fast))
        }
        let shared = SharedTemplates(prototypes: prototypes, names: specs.map(\.name), exYears: compiler.exYears)
        templateCache.withLock {
            if $0.count >= templateCacheLimit { $0.removeAll() }
            $0[key] = shared
        }
        return shared
    }

    /// The two default templates that have a fast reader, compiled once per year: a template gets a fast reader
    /// only when it is exactly one of them (same regex, same options).
    private static let fastTemplateCache = Mutex<(year: Int, iso: DateTemplateSpec?, syslog: DateTemplateSpec?)?>(nil)

    private static func fastTemplateSpecs(
        _ compiler: DatePatternCompiler, currentYear: Int
    ) -> (iso: DateTemplateSpec?, syslog: DateTemplateSpec?) {
        if let hit = fastTemplateCache.withLock({ $0 }), hit.year == currentYear { return (hit.iso, hit.syslog) }
        let iso = try? compiler.template("{^LN-BEG}" + DatePatternCompiler.basePatterns[0])
        let syslog = try? compiler.template("{^LN-BEG}" + DatePatternCompiler.basePatterns[1])
        fastTemplateCache.withLock { $0 = (currentYear, iso, syslog) }
        return (iso, syslog)
    }

    /// How many datepatterns the shared-template cache holds (tests check its bound).
    static var templateCacheCount: Int { templateCache.withLock { $0.count } }

    deinit {
        order.deallocate()
        hits.deallocate()
        lastUsed.deallocate()
        distance.deallocate()
        cursor.deinitialize(count: 1)
        cursor.deallocate()
    }

    @inline(__always)
    private func weight(_ t: Int) -> Double { Double(hits[t]) * templates[t].weight / Double(max(1, distance[t])) }

    /// The wall clock in epoch seconds (the default `now`).
    public static func currentTime() -> Double { wallClock() }

    // MARK: matching

    /// Finds the date in `line` (one log line without its newline). Returns nil when the line has none.
    public func match(_ line: UnsafeBufferPointer<UInt8>) -> DateMatch? {
        guard count > 0 else { return nil }
        lineASCII = -1
        let c = cursor
        var found = false
        var position = 0
        var start = 0
        var end = 0
        // Best alternative so far: position, start in characters, byte range.
        var reserve = (position: -1, distance: Int(Int32.max), start: 0, end: 0)
        var skip = -1
        // The date read by a fast reader (then the template's matcher holds nothing for this line).
        var fastTime: Double? = nil

        if usesFastReaders, c.pointee.lastPosition < count, let fast = templates[order[c.pointee.lastPosition]].fast,
            let read = fastRead(fast, line)
        {
            // The last template again, at the line start (an anchored template is searched there whatever the
            // last position was): what its regex would find, read by hand.
            found = true
            position = c.pointee.lastPosition
            start = 0
            end = read.length
            fastTime = read.time
        } else if c.pointee.lastPosition < count {
            let t = order[c.pointee.lastPosition]
            let anchored = templates[t].anchored
            var ok: Bool
            // fail2ban keeps positions in characters; map them onto this line's bytes.
            let d = Self.byteOffset(line, character: c.pointee.lastStart.distance)
            let e = Self.byteOffset(line, character: c.pointee.lastEnd.position)
            if anchored {
                ok = search(t, line, from: 0, to: line.count)
                skip = c.pointee.lastPosition
            } else {
                let startFits =
                    Self.before(line, d) == c.pointee.lastStart.before
                    || (Self.at(line, d) == c.pointee.lastStart.at && !Self.isAlphanumeric(c.pointee.lastStart.at))
                let endFits =
                    Self.at(line, e) == c.pointee.lastEnd.after
                    || (Self.before(line, e) == c.pointee.lastEnd.before
                        && !Self.isAlphanumeric(c.pointee.lastEnd.before))
                if startFits && endFits {
                    ok = search(t, line, from: d, to: e)
                } else {
                    ok = search(t, line, from: 0, to: line.count)
                    skip = c.pointee.lastPosition
                }
            }
            if ok, let r = templates[t].matcher.range(0) {
                if count == 1 || anchored || (r.lowerBound == d && r.upperBound == e) {
                    found = true
                    position = c.pointee.lastPosition
                    start = r.lowerBound
                    end = r.upperBound
                } else {
                    reserve = (
                        c.pointee.lastPosition, Self.characterIndex(line, byte: r.lowerBound), r.lowerBound,
                        r.upperBound
                    )
                }
            }
        }

        if !found {
            var i = 0
            while i < count {
                defer { i += 1 }
                if i == skip { continue }
                let t = order[i]
                guard search(t, line, from: 0, to: line.count), let r = templates[t].matcher.range(0) else { continue }
                if i + 1 >= count || templates[t].anchored
                    || (r.lowerBound == 0 && hits[t] > 0 && hits[order[i + 1]] == 0)
                {
                    found = true
                } else {
                    let d = Self.characterIndex(line, byte: r.lowerBound)
                    if d > distance[t] || d > c.pointee.lastStart.distance {
                        if d < reserve.distance { reserve = (i, d, r.lowerBound, r.upperBound) }
                        continue
                    }
                    found = true
                }
                position = i
                start = r.lowerBound
                end = r.upperBound
                break
            }
            if !found && reserve.position >= 0 {
                found = true
                position = reserve.position
                start = reserve.start
                end = reserve.end
                // The matcher may hold a later search's offsets; find the reserved match again.
                let t = order[position]
                if !search(t, line, from: 0, to: line.count) || templates[t].matcher.range(0) != start..<end {
                    _ = search(t, line, from: start, to: end)
                }
            }
        }
        guard found else { return nil }

        let t = order[position]
        let startCharacter = Self.characterIndex(line, byte: start)
        hits[t] += 1
        lastUsed[t] = coarseWallClock()
        distance[t] = startCharacter
        if c.pointee.firstUnused == position { c.pointee.firstUnused += 1 }
        c.pointee.lastStart = (startCharacter, Self.before(line, start), Self.at(line, start))
        c.pointee.lastEnd = (Self.characterIndex(line, byte: end), Self.before(line, end), Self.at(line, end))
        if position != 0 && position != c.pointee.lastPosition {
            position = reorder(position)
        }
        c.pointee.lastPosition = position

        if let fastTime { return DateMatch(range: start..<end, time: fastTime, templateIndex: t) }
        let matcher = templates[t].matcher
        let cut = matcher.range(1) ?? (start..<end)
        if let time = self.time(of: t, line: line, cut: cut) {
            return DateMatch(range: cut, time: time, templateIndex: t)
        }
        return DateMatch(range: cut, time: now(), templateIndex: t, isValid: false)
    }

    @inline(__always)
    private func search(_ t: Int, _ line: UnsafeBufferPointer<UInt8>, from: Int, to: Int) -> Bool {
        let end = min(to, line.count)
        guard from <= end else { return false }
        let subject = UnsafeBufferPointer(rebasing: line[0..<end])
        if lineASCII < 0 { lineASCII = LineProcessor.isASCII(line) ? 1 : 0 }
        if lineASCII == 1 { return templates[t].matcher.matches(ascii: subject, from: from) }
        return templates[t].matcher.matches(subject, from: from)
    }

    /// Moves the template at `position` forward when it earned it; returns its new position.
    private func reorder(_ position: Int) -> Int {
        let c = cursor
        let t = order[position]
        let unusedSince = lastUsed[t] - Self.unusedTime
        let ownWeight = weight(t)
        var target = c.pointee.firstUnused < position ? c.pointee.firstUnused : position / 2
        func movable(_ p: Int) -> Bool {
            let other = order[p]
            return ownWeight > weight(other) || unusedSince > lastUsed[other]
        }
        if !movable(target) {
            if target == position - 1 { return position }
            target = position - 1
            if !movable(target) { return position }
        }
        var k = position
        while k > target {
            order[k] = order[k - 1]
            k -= 1
        }
        order[target] = t
        while c.pointee.firstUnused < count && hits[order[c.pointee.firstUnused]] > 0 { c.pointee.firstUnused += 1 }
        return target
    }

    // MARK: neighbours

    /// Characters before byte `byte` (fail2ban counts positions in characters; invalid bytes count one each).
    @inline(__always)
    private static func characterIndex(_ line: UnsafeBufferPointer<UInt8>, byte: Int) -> Int {
        var i = 0
        var n = 0
        let limit = min(byte, line.count)
        while i < limit {
            if line[i] < 0x80 {
                i += 1
            } else {
                i += decode(line, i).length
            }
            n += 1
        }
        return n + max(0, byte - line.count)
    }

    /// Byte offset of character number `character` (beyond the end: past `line.count` by the excess).
    @inline(__always)
    private static func byteOffset(_ line: UnsafeBufferPointer<UInt8>, character: Int) -> Int {
        var i = 0
        var n = 0
        while n < character && i < line.count {
            if line[i] < 0x80 {
                i += 1
            } else {
                i += decode(line, i).length
            }
            n += 1
        }
        return i + (character - n)
    }

    /// The character starting at byte `i` (`empty` when outside the line).
    private static func at(_ line: UnsafeBufferPointer<UInt8>, _ i: Int) -> Neighbour {
        guard i >= 0, i < line.count else { return empty }
        return decode(line, i).scalar
    }

    /// The character ending at byte `i` (`empty` when `i` is 0 or beyond the line).
    private static func before(_ line: UnsafeBufferPointer<UInt8>, _ i: Int) -> Neighbour {
        guard i > 0, i <= line.count else { return empty }
        var s = i - 1
        var steps = 0
        while s > 0, steps < 3, line[s] & 0xC0 == 0x80 {
            s -= 1
            steps += 1
        }
        let d = decode(line, s)
        if s + d.length == i { return d.scalar }
        return 0xDC00 | UInt32(line[i - 1])
    }

    /// Decodes one UTF-8 scalar; an invalid byte stands for itself as a lone surrogate (like Python's
    /// surrogateescape).
    private static func decode(_ line: UnsafeBufferPointer<UInt8>, _ i: Int) -> (scalar: UInt32, length: Int) {
        let b0 = line[i]
        if b0 < 0x80 { return (UInt32(b0), 1) }
        let length: Int
        var value: UInt32
        switch b0 {
        case 0xC2...0xDF:
            length = 2
            value = UInt32(b0 & 0x1F)
        case 0xE0...0xEF:
            length = 3
            value = UInt32(b0 & 0x0F)
        case 0xF0...0xF4:
            length = 4
            value = UInt32(b0 & 0x07)
        default: return (0xDC00 | UInt32(b0), 1)
        }
        guard i + length <= line.count else { return (0xDC00 | UInt32(b0), 1) }
        for k in 1..<length {
            let b = line[i + k]
            guard b & 0xC0 == 0x80 else { return (0xDC00 | UInt32(b0), 1) }
            value = value << 6 | UInt32(b & 0x3F)
        }
        return (value, length)
    }

    private static func isAlphanumeric(_ c: Neighbour) -> Bool {
        if c == empty { return false }
        if c < 0x80 {
            return (c >= 0x30 && c <= 0x39) || (c >= 0x41 && c <= 0x5A) || (c >= 0x61 && c <= 0x7A)
        }
        guard let scalar = Unicode.Scalar(c) else { return false }
        return scalar.properties.isAlphabetic || scalar.properties.numericType != nil
    }

    // MARK: fast readers

    /// Reads `line`'s leading date in `format` when the line has the usual shape, returning the date's length and
    /// time; nil when it has not (or the date is not valid): the template's regex then decides. It accepts only
    /// text on which the regex's first (greedy) path succeeds, so it finds the same span and fields.
    private func fastRead(_ format: FastDateFormat, _ line: UnsafeBufferPointer<UInt8>) -> (length: Int, time: Double)?
    {
        let n = line.count
        @inline(__always) func digit(_ i: Int) -> Int? {
            guard i < n else { return nil }
            let c = line[i]
            return c >= 0x30 && c <= 0x39 ? Int(c &- 0x30) : nil
        }
        @inline(__always) func two(_ i: Int) -> Int? {
            guard let a = digit(i), let b = digit(i + 1) else { return nil }
            return a * 10 + b
        }
        @inline(__always) func byte(_ i: Int) -> UInt8 { i < n ? line[i] : 0 }
        /// The regex's end (`(?=\b|\W|$)` after a digit or zone): the line ends or an ASCII non-word character
        /// follows.
        @inline(__always) func endsWord(_ i: Int) -> Bool {
            guard i < n else { return true }
            let c = line[i]
            if c >= 0x80 { return false }
            return !((c >= 0x30 && c <= 0x39) || (c >= 0x41 && c <= 0x5A) || (c >= 0x61 && c <= 0x7A) || c == 0x5F)
        }
        switch format {
        case .iso:
            // YYYY-MM-DDTHH:MM:SS[.f{1,6}][Z|±hh:mm]
            guard n >= 19, let y1 = two(0), let y2 = two(2), byte(4) == 0x2D, let mo = two(5), byte(7) == 0x2D,
                let d = two(8), byte(10) == 0x54, let h = two(11), byte(13) == 0x3A, let mi = two(14),
                byte(16) == 0x3A, let s = two(17)
            else { return nil }
            let y = y1 * 100 + y2
            guard exYears.contains(y), mo >= 1, mo <= 12, d >= 1, d <= Civil.daysInMonth(year: y, month: mo),
                h <= 23, mi <= 59, s <= 59
            else { return nil }
            var p = 19
            // `[.,]%f`: a comma fraction is left to the regex.
            if byte(p) == 0x2C { return nil }
            if byte(p) == 0x2E {
                var k = p + 1
                while digit(k) != nil { k += 1 }
                let digits = k - p - 1
                guard digits >= 1, digits <= 6 else { return nil }
                p = k
            }
            var zone: Int? = nil
            switch byte(p) {
            case 0x5A:  // Z
                guard let z = ZoneText.offset(UnsafeBufferPointer(rebasing: line[p..<(p + 1)])) else { return nil }
                zone = z
                p += 1
            case 0x2B, 0x2D:  // ±hh:mm
                guard two(p + 1) != nil, byte(p + 1) <= 0x31, byte(p + 3) == 0x3A, two(p + 4) != nil,
                    let z = ZoneText.offset(UnsafeBufferPointer(rebasing: line[p..<(p + 6)]))
                else { return nil }
                zone = z
                p += 6
            case 0x20:
                // `\s*%z` may take a zone after white space: accept only a plain word after one space.
                guard p + 1 < n else { return nil }
                let next = line[p + 1]
                guard next > 0x20, next < 0x80, next != 0x5A, next != 0x55, next != 0x47, next != 0x2B, next != 0x2D
                else { return nil }
            case 0x09...0x0D:
                return nil
            default:
                break
            }
            guard endsWord(p) else { return nil }
            guard
                let time = compose(
                    year: y, month: mo, day: d, yearDay: nil, hour: h, minute: mi, second: s, zone: zone ?? defaultZone)
            else { return nil }
            return (p, time)
        case .syslog:
            // Mon dD HH:MM:SS (month name in any case; day two digits or space and one digit)
            guard n >= 15, byte(3) == 0x20, let mo = Self.monthNumber(line, 0..<3), byte(6) == 0x20 else {
                return nil
            }
            // A day name first (`%a `) would not be a month name: none of them is.
            let first = line[0] | 0x20
            guard first >= 0x61, first <= 0x7A else { return nil }
            var d: Int
            if byte(4) == 0x20 {
                guard let d2 = digit(5), d2 >= 1 else { return nil }
                d = d2
            } else {
                guard let dd = two(4), dd >= 1, dd <= 31 else { return nil }
                d = dd
            }
            guard let h = two(7), byte(9) == 0x3A, let mi = two(10), byte(12) == 0x3A, let s = two(13),
                h <= 23, mi <= 59, s <= 59
            else { return nil }
            let p = 15
            // `(?:\.%f)?` and `(?: %ExY)?` could take more: leave those lines to the regex.
            if byte(p) == 0x2E { return nil }
            if byte(p) == 0x20, digit(p + 1) != nil { return nil }
            guard endsWord(p) else { return nil }
            guard
                let time = compose(
                    year: nil, month: mo, day: d, yearDay: nil, hour: h, minute: mi, second: s, zone: defaultZone)
            else { return nil }
            return (p, time)
        }
    }

    // MARK: time

    private func time(of t: Int, line: UnsafeBufferPointer<UInt8>, cut: Range<Int>) -> Double? {
        switch templates[t].kind {
        case .none: return nil
        case .epoch: return Self.decimal(line, cut, scale: 1)
        case .longEpoch:
            var digits = 0
            var i = cut.lowerBound
            while i < cut.upperBound, line[i] >= 0x30, line[i] <= 0x39 {
                digits += 1
                i += 1
            }
            let scale: Double = digits >= 16 ? 1_000_000 : digits >= 13 ? 1000 : 1
            return Self.decimal(line, cut, scale: scale)
        case .tai64n:
            guard cut.count == 25 else { return nil }
            var value = 0
            for i in (cut.lowerBound + 9)..<(cut.lowerBound + 17) {
                let c = line[i]
                let v: Int
                switch c {
                case 0x30...0x39: v = Int(c - 0x30)
                case 0x61...0x66: v = Int(c - 0x61 + 10)
                case 0x41...0x46: v = Int(c - 0x41 + 10)
                default: return nil
                }
                value = value << 4 | v
            }
            return Double(value)
        case .fields:
            return fieldsTime(templates[t], line)
        }
    }

    /// Parses decimal text (digits, optional fraction) exactly as a correctly rounded double, then divides.
    private static func decimal(_ line: UnsafeBufferPointer<UInt8>, _ r: Range<Int>, scale: Double) -> Double? {
        guard r.count > 0, r.count < 40 else { return nil }
        return withUnsafeTemporaryAllocation(of: CChar.self, capacity: 41) { buffer -> Double? in
            for (k, i) in r.enumerated() {
                let c = line[i]
                guard (c >= 0x30 && c <= 0x39) || c == 0x2E else { return nil }
                buffer[k] = CChar(bitPattern: c)
            }
            buffer[r.count] = 0
            let v = strtod(buffer.baseAddress!, nil)
            return scale == 1 ? v : v / scale
        }
    }

    /// An injected clock's value clamped to what calendar arithmetic handles (years 0001...9999).
    @inline(__always)
    private static func sane(_ t: Double) -> Double {
        t.isFinite ? min(max(t, -62_135_596_800), 253_402_300_799) : 0
    }

    @inline(__always)
    private static func number(_ line: UnsafeBufferPointer<UInt8>, _ r: Range<Int>) -> Int? {
        var v = 0
        var digits = 0
        for i in r {
            let c = line[i]
            if c == 0x20 && digits == 0 { continue }
            // A user's own `(?P<Y>\d+)` may capture any number of digits; nothing valid has more than 9.
            guard c >= 0x30, c <= 0x39, digits < 9 else { return nil }
            v = v * 10 + Int(c - 0x30)
            digits += 1
        }
        return digits > 0 ? v : nil
    }

    private static func monthNumber(_ line: UnsafeBufferPointer<UInt8>, _ r: Range<Int>) -> Int? {
        guard r.count >= 3 else { return nil }
        let a = line[r.lowerBound] | 0x20
        let b = line[r.lowerBound + 1] | 0x20
        let c = line[r.lowerBound + 2] | 0x20
        let key = UInt32(a) << 16 | UInt32(b) << 8 | UInt32(c)
        switch key {
        case 0x6A616E: return 1  // jan
        case 0x666562: return 2  // feb
        case 0x6D6172: return 3  // mar
        case 0x617072: return 4  // apr
        case 0x6D6179: return 5  // may
        case 0x6A756E: return 6  // jun
        case 0x6A756C: return 7  // jul
        case 0x617567: return 8  // aug
        case 0x736570: return 9  // sep
        case 0x6F6374: return 10  // oct
        case 0x6E6F76: return 11  // nov
        case 0x646563: return 12  // dec
        default: return nil
        }
    }

    private func fieldsTime(_ template: Template, _ line: UnsafeBufferPointer<UInt8>) -> Double? {
        let m = template.matcher
        let g = template.groups
        @inline(__always) func range(_ group: Int) -> Range<Int>? { group < 0 ? nil : m.range(group) }
        @inline(__always) func int(_ group: Int) -> Int?? {
            guard let r = range(group) else { return .some(nil) }
            guard let v = Self.number(line, r) else { return nil }
            return .some(v)
        }

        var year: Int? = nil
        if let r = range(g.year) {
            guard let v = Self.number(line, r) else { return nil }
            year = v
        } else if let r = range(g.year2) {
            guard let v = Self.number(line, r) else { return nil }
            year = 2000 + v
        }
        var month: Int? = nil
        if let r = range(g.month) {
            guard let v = Self.number(line, r) else { return nil }
            month = v
        } else if let r = range(g.monthName) ?? range(g.monthFullName) {
            guard let v = Self.monthNumber(line, r) else { return nil }
            month = v
        }
        guard let dayField = int(g.day), let yearDay = int(g.yearDay), let minuteField = int(g.minute),
            let secondField = int(g.second)
        else { return nil }
        let day = dayField
        var hour = 0
        if let r = range(g.hour) {
            guard let v = Self.number(line, r) else { return nil }
            hour = v
        } else if let r = range(g.hour12) {
            guard let v = Self.number(line, r) else { return nil }
            var pm = false
            if let p = range(g.ampm), p.count == 2 { pm = line[p.lowerBound] | 0x20 == 0x70 }
            hour = v == 12 ? (pm ? 12 : 0) : (pm ? v + 12 : v)
        }
        let minute = minuteField ?? 0
        let second = secondField ?? 0

        var zone: Int? = defaultZone
        if let r = range(g.zoneOffset) ?? range(g.zoneName) {
            guard let z = ZoneText.offset(UnsafeBufferPointer(rebasing: line[r])) else { return nil }
            zone = z
        }

        return compose(
            year: year, month: month, day: day, yearDay: yearDay, hour: hour, minute: minute, second: second,
            zone: zone)
    }

    /// The time of date fields as fail2ban computes it (missing year or date from "now", zone or local time).
    private func compose(
        year: Int?, month: Int?, day: Int?, yearDay: Int?, hour: Int, minute: Int, second: Int, zone: Int?
    ) -> Double? {
        var year = year
        var month = month
        var day = day
        // What fail2ban takes from "now" (local wall clock) when the line lacks it (a full date does not need it).
        let nowLocal = year != nil && month != nil && day != nil ? 0 : local.local(fromEpoch: Self.sane(now()))
        var assumeToday = false
        var assumeYear = false
        if month == nil && day == nil && yearDay == nil {
            let today = local.civilDate(ofLocal: nowLocal)
            month = today.month
            day = today.day
            if year == nil {
                year = today.year
                assumeToday = true
            }
        } else if year == nil {
            year = local.civilDate(ofLocal: nowLocal).year
            assumeYear = true
        }
        guard var y = year else { return nil }
        if let j = yearDay, month == nil || day == nil {
            let date = Civil.date(days: Civil.days(year: y, month: 1, day: 1) + j - 1)
            y = date.year
            month = date.month
            day = date.day
        }
        guard let mo = month, let d = day, mo >= 1, mo <= 12, d >= 1, d <= Civil.daysInMonth(year: y, month: mo),
            hour <= 23, minute <= 59, second <= 59, y >= 1, y <= 9999
        else { return nil }

        var naive = Civil.days(year: y, month: mo, day: d) * 86400 + hour * 3600 + minute * 60 + second
        if let zone { naive -= zone * 60 }
        if assumeToday && Double(naive) > nowLocal {
            naive -= 86400
        }
        if assumeYear && Double(naive) > nowLocal + 86400 {
            // fail2ban keeps the (zone-shifted) time of day and puts back the line's month and day.
            let secondsOfDay = naive - Civil.floorDiv(naive, 86400) * 86400
            guard d <= Civil.daysInMonth(year: y - 1, month: mo) else { return nil }
            naive = Civil.days(year: y - 1, month: mo, day: d) * 86400 + secondsOfDay
        }
        if zone != nil { return Double(naive) }
        return Double(local.epoch(fromLocal: naive))
    }
}
