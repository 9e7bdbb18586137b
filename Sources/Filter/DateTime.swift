#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Calendar arithmetic on the proleptic Gregorian calendar, without any time-zone database.
enum Civil {
    /// Days since 1970-01-01 for a civil date (month 1...12, any day number).
    @inline(__always)
    static func days(year: Int, month: Int, day: Int) -> Int {
        let y = month <= 2 ? year - 1 : year
        let era = (y >= 0 ? y : y - 399) / 400
        let yoe = y - era * 400
        let mp = month > 2 ? month - 3 : month + 9
        let doy = (153 * mp + 2) / 5 + day - 1
        let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy
        return era * 146_097 + doe - 719_468
    }

    /// The civil date of a day count since 1970-01-01.
    @inline(__always)
    static func date(days: Int) -> (year: Int, month: Int, day: Int) {
        let z = days + 719_468
        let era = (z >= 0 ? z : z - 146_096) / 146_097
        let doe = z - era * 146_097
        let yoe = (doe - doe / 1460 + doe / 36524 - doe / 146_096) / 365
        let doy = doe - (365 * yoe + yoe / 4 - yoe / 100)
        let mp = (5 * doy + 2) / 153
        let day = doy - (153 * mp + 2) / 5 + 1
        let month = mp < 10 ? mp + 3 : mp - 9
        return (yoe + era * 400 + (month <= 2 ? 1 : 0), month, day)
    }

    @inline(__always)
    static func isLeap(_ y: Int) -> Bool { y % 4 == 0 && (y % 100 != 0 || y % 400 == 0) }

    @inline(__always)
    static func daysInMonth(year: Int, month: Int) -> Int {
        switch month {
        case 2: return isLeap(year) ? 29 : 28
        case 4, 6, 9, 11: return 30
        default: return 31
        }
    }

    @inline(__always)
    static func floorDiv(_ a: Int, _ b: Int) -> Int { a >= 0 ? a / b : -((-a + b - 1) / b) }
}

/// Offsets of the process's local time zone (TZ), asked from libc once per hour and cached.
///
/// fail2ban converts zone-less times with `mktime` (tm_isdst = -1); asking the same question once per local hour and
/// reusing the offset gives the same answers as long as offsets change on whole hours (true for current zones).
final class LocalTimeCache {
    private static let slots = 64
    // Keys and offsets for both directions, in one allocation: [localKeys, localOffsets, utcKeys, utcOffsets].
    private let table: UnsafeMutablePointer<Int>
    private var localKeys: UnsafeMutablePointer<Int> { table }
    private var localOffsets: UnsafeMutablePointer<Int> { table + Self.slots }
    private var utcKeys: UnsafeMutablePointer<Int> { table + 2 * Self.slots }
    private var utcOffsets: UnsafeMutablePointer<Int> { table + 3 * Self.slots }

    /// A fixed zone rule instead of the process's TZ (nil: ask libc).
    private let zone: PosixTimeZone?

    init(zone: PosixTimeZone? = nil) {
        self.zone = zone
        table = .allocate(capacity: 4 * Self.slots)
        for i in 0..<(4 * Self.slots) { table[i] = i % (2 * Self.slots) < Self.slots ? Int.min : 0 }
    }

    deinit { table.deallocate() }

    /// Epoch seconds for a wall-clock time (seconds since 1970-01-01 00:00 of the local calendar), as mktime gives.
    func epoch(fromLocal local: Int) -> Int {
        let hour = Civil.floorDiv(local, 3600)
        let slot = Int(UInt(bitPattern: hour) % UInt(Self.slots))
        if localKeys[slot] != hour {
            localKeys[slot] = hour
            localOffsets[slot] = mktimeOffset(hourStart: hour * 3600)
        }
        return local - localOffsets[slot]
    }

    // Unchecked exclusivity: per-worker cache, never accessed re-entrantly; the check was a runtime call per line.
    @exclusivity(unchecked) private var cachedDay = Int.min
    @exclusivity(unchecked) private var cachedDate = (year: 0, month: 0, day: 0)

    /// The civil date of a local wall-clock time (cached per day).
    func civilDate(ofLocal local: Double) -> (year: Int, month: Int, day: Int) {
        let day = Civil.floorDiv(Int(local.rounded(.down)), 86400)
        if day != cachedDay {
            cachedDay = day
            cachedDate = Civil.date(days: day)
        }
        return cachedDate
    }

    /// Local wall-clock seconds for an instant.
    func local(fromEpoch t: Double) -> Double {
        let seconds = Int(t.rounded(.down))
        let hour = Civil.floorDiv(seconds, 3600)
        let slot = Int(UInt(bitPattern: hour) % UInt(Self.slots))
        if utcKeys[slot] != hour {
            utcKeys[slot] = hour
            utcOffsets[slot] = utcOffset(at: hour * 3600)
        }
        return t + Double(utcOffsets[slot])
    }

    private func utcOffset(at instant: Int) -> Int {
        if let zone { return zone.offset(at: instant) }
        var tt = time_t(instant)
        var parts = tm()
        guard localtime_r(&tt, &parts) != nil else { return 0 }
        return Int(parts.tm_gmtoff)
    }

    /// The offset mktime applies to the wall-clock hour starting at `local`. A repeated hour (DST ending) reads as
    /// its first occurrence — what glibc's mktime gives when, as in a log, it was last asked about the hour before;
    /// an hour skipped by DST reads with the offset in force before the jump, as glibc does.
    private func mktimeOffset(hourStart local: Int) -> Int {
        let before = utcOffset(at: local - 3 * 3600)
        let after = utcOffset(at: local + 3 * 3600)
        let beforeFits = utcOffset(at: local - before) == before
        let afterFits = utcOffset(at: local - after) == after
        switch (beforeFits, afterFits) {
        case (true, true): return max(before, after)
        case (true, false): return before
        case (false, true): return after
        case (false, false): return before
        }
    }
}

/// Time-zone text as fail2ban reads it: an optional known abbreviation, then an optional `±hh[[:]mm]` offset
/// (hours 00–19). Both present means abbreviation plus offset (`CET+0100` is +02:00).
enum ZoneText {
    private static let packedAbbreviations: [UInt64: Int] = {
        var table: [UInt64: Int] = [:]
        for (name, minutes) in dateZoneAbbreviations {
            var key: UInt64 = 0
            for b in name.utf8 { key = key << 8 | UInt64(b) }
            table[key] = minutes
        }
        return table
    }()

    /// Minutes east of UTC, or nil when fail2ban would reject the text.
    static func offset(_ text: UnsafeBufferPointer<UInt8>) -> Int? {
        var i = 0
        let n = text.count
        var key: UInt64 = 0
        while i < n, text[i] >= 0x41, text[i] <= 0x5A {
            key = key << 8 | UInt64(text[i])
            i += 1
        }
        if i > 5 { return nil }
        var minutes = 0
        if i > 0 {
            guard let abbreviation = packedAbbreviations[key] else { return nil }
            minutes = abbreviation
        }
        if i == n { return i > 0 ? minutes : nil }
        let sign: Int
        switch text[i] {
        case 0x2B: sign = 1
        case 0x2D: sign = -1
        default: return nil
        }
        i += 1
        func digit(_ k: Int) -> Int? {
            guard k < n, text[k] >= 0x30, text[k] <= 0x39 else { return nil }
            return Int(text[k] - 0x30)
        }
        guard let h1 = digit(i), h1 <= 1, let h2 = digit(i + 1) else { return nil }
        i += 2
        var offset = (h1 * 10 + h2) * 60
        if i < n {
            if text[i] == 0x3A { i += 1 }
            guard let m1 = digit(i), let m2 = digit(i + 1), i + 2 == n else { return nil }
            offset += m1 * 10 + m2
        }
        return minutes + sign * offset
    }

    /// Cold-path convenience for configuration values.
    static func offset(_ text: String) -> Int? {
        var s = text
        return s.withUTF8 { offset($0) }
    }
}

/// Reads the wall clock with the kernel's tick resolution (a few ns; enough for fail2ban's 300 s "unused" rule).
@inline(__always)
func coarseWallClock() -> Double {
    var ts = timespec()
    clock_gettime(CLOCK_REALTIME_COARSE, &ts)
    return Double(ts.tv_sec) + Double(ts.tv_nsec) / 1e9
}

/// Reads the wall clock (used for fail2ban's "template last used" bookkeeping, which is wall-clock based).
@inline(__always)
func wallClock() -> Double {
    var ts = timespec()
    clock_gettime(CLOCK_REALTIME, &ts)
    return Double(ts.tv_sec) + Double(ts.tv_nsec) / 1e9
}

/// A POSIX TZ rule (`CET-01CEST-02,M3.5.0,M10.5.0`), evaluated without libc. Lets tests (and callers that must not
/// touch the process environment) use a fixed local zone; production uses the process's TZ through libc.
struct PosixTimeZone: Sendable, Equatable {
    /// Seconds east of UTC in standard and in daylight-saving time.
    let standard: Int
    let daylight: Int?
    /// Transition rules (`Mm.w.d/time`): month, week (1...5, 5 = last), weekday (0 = Sunday), seconds after midnight.
    let start: (month: Int, week: Int, weekday: Int, time: Int)?
    let end: (month: Int, week: Int, weekday: Int, time: Int)?

    static func == (a: PosixTimeZone, b: PosixTimeZone) -> Bool {
        a.standard == b.standard && a.daylight == b.daylight && a.start?.month == b.start?.month
            && a.start?.week == b.start?.week && a.start?.weekday == b.start?.weekday && a.start?.time == b.start?.time
            && a.end?.month == b.end?.month && a.end?.week == b.end?.week && a.end?.weekday == b.end?.weekday
            && a.end?.time == b.end?.time
    }

    /// Parses a rule; nil when it is not a POSIX TZ rule this type understands (names, offsets, `M` rules).
    init?(_ text: String) {
        var s = Substring(text)
        func name() -> Bool {
            if s.first == "<" {
                guard let close = s.firstIndex(of: ">") else { return false }
                s = s[s.index(after: close)...]
                return true
            }
            let letters = s.prefix(while: { $0.isLetter })
            guard letters.count >= 3 else { return false }
            s = s.dropFirst(letters.count)
            return true
        }
        func clock() -> Int? {  // [+-]hh[:mm[:ss]] → seconds
            var sign = 1
            if s.first == "+" || s.first == "-" {
                if s.first == "-" { sign = -1 }
                s = s.dropFirst()
            }
            var parts: [Int] = []
            while true {
                let digits = s.prefix(while: { $0.isASCII && $0.isNumber })
                guard !digits.isEmpty, let v = Int(digits) else { return nil }
                parts.append(v)
                s = s.dropFirst(digits.count)
                if parts.count < 3 && s.first == ":" { s = s.dropFirst() } else { break }
            }
            let seconds = parts[0] * 3600 + (parts.count > 1 ? parts[1] * 60 : 0) + (parts.count > 2 ? parts[2] : 0)
            return sign * seconds
        }
        func rule() -> (month: Int, week: Int, weekday: Int, time: Int)? {
            guard s.first == "M" else { return nil }
            s = s.dropFirst()
            var numbers: [Int] = []
            for k in 0..<3 {
                let digits = s.prefix(while: { $0.isASCII && $0.isNumber })
                guard let v = Int(digits) else { return nil }
                numbers.append(v)
                s = s.dropFirst(digits.count)
                if k < 2 {
                    guard s.first == "." else { return nil }
                    s = s.dropFirst()
                }
            }
            var time = 7200
            if s.first == "/" {
                s = s.dropFirst()
                guard let t = clock() else { return nil }
                time = t
            }
            guard (1...12).contains(numbers[0]), (1...5).contains(numbers[1]), (0...6).contains(numbers[2]) else {
                return nil
            }
            return (numbers[0], numbers[1], numbers[2], time)
        }
        guard name(), let std = clock() else { return nil }
        standard = -std
        if s.isEmpty {
            daylight = nil
            start = nil
            end = nil
            return
        }
        guard name() else { return nil }
        var dst = standard + 3600
        if let first = s.first, first != "," {
            guard let d = clock() else { return nil }
            dst = -d
        }
        daylight = dst
        if s.isEmpty {  // glibc's default rules
            start = (3, 2, 0, 7200)
            end = (11, 1, 0, 7200)
            return
        }
        guard s.first == "," else { return nil }
        s = s.dropFirst()
        guard let a = rule(), s.first == "," else { return nil }
        s = s.dropFirst()
        guard let b = rule(), s.isEmpty else { return nil }
        start = a
        end = b
    }

    /// Local midnight day count of rule `r` in `year`.
    private static func day(_ r: (month: Int, week: Int, weekday: Int, time: Int), year: Int) -> Int {
        let first = Civil.days(year: year, month: r.month, day: 1)
        let firstWeekday = ((first % 7) + 11) % 7  // 1970-01-01 was a Thursday (4)
        var d = first + (r.weekday - firstWeekday + 7) % 7 + (r.week - 1) * 7
        let monthEnd = first + Civil.daysInMonth(year: year, month: r.month)
        while d >= monthEnd { d -= 7 }
        return d
    }

    /// Seconds east of UTC at `instant`.
    func offset(at instant: Int) -> Int {
        guard let daylight, let start, let end else { return standard }
        let year = Civil.date(days: Civil.floorDiv(instant + standard, 86400)).year
        let on = Self.day(start, year: year) * 86400 + start.time - standard
        let off = Self.day(end, year: year) * 86400 + end.time - daylight
        let inDaylight = on < off ? (instant >= on && instant < off) : (instant >= on || instant < off)
        return inDaylight ? daylight : standard
    }
}
