import Glibc
import Testing

@testable import Filter

/// Unit tests per format, per directive, for year/day inference, time zones, DST and invalid dates.
/// Reference instant: 2005-08-14 10:00:00 UTC = 1124013600 (12:00 CEST), fail2ban's sample-suite "now".
private let day = 86_400.0
private let hour = 3_600.0

@Suite struct DateDetectorTests {
    static let t0 = 1_124_013_600.0  // 2005-08-14 10:00:00 UTC

    func detector(_ pattern: String? = nil, zone: String? = "UTC", now: Double = t0) throws -> DateDetector {
        try DateTestSupport.detector(pattern, zone: zone, now: now)
    }

    func match(_ d: DateDetector, _ line: String) -> DateMatch? {
        var s = line
        return s.withUTF8 { d.match($0) }
    }

    func cut(_ line: String, _ m: DateMatch?) -> String? {
        guard let m else { return nil }
        return String(decoding: Array(line.utf8)[m.range], as: UTF8.self)
    }

    // MARK: default templates, one per format

    @Test(arguments: [
        // line, cut text, seconds after t0
        ("2005-08-14 10:00:00 sshd[1]: x", "2005-08-14 10:00:00", 0.0),
        ("2005-08-14T10:00:00.123456Z x", "2005-08-14T10:00:00.123456Z", 0),
        ("2005/08/14 11:00:00+01:00 x", "2005/08/14 11:00:00+01:00", 0),
        ("2005.08.14 08:00:00 -0200 x", "2005.08.14 08:00:00 -0200", 0),
        ("Aug 14 10:00:00 host sshd[1]: x", "Aug 14 10:00:00", 0),
        ("Aug  4 10:00:00 host x", "Aug  4 10:00:00", -10 * day),
        ("Sun Aug 14 10:00:00 2005 x", "Sun Aug 14 10:00:00 2005", 0),
        ("Aug 14 2005 10:00:00 x", "Aug 14 2005 10:00:00", 0),
        ("14/Aug/2005:12:00:00 +0200] \"GET /\"", "14/Aug/2005:12:00:00 +0200", 0),
        ("14-08-2005 10:00:00 x", "14-08-2005 10:00:00", 0),
        ("14/08/05 10:00:00 x", "14/08/05 10:00:00", 0),
        ("08/14/2005:10:00:00 x", "08/14/2005:10:00:00", 0),
        ("08-14-2005 10:00:00.5 x", "08-14-2005 10:00:00.5", 0),
        ("050814 10:00:00 mysqld x", "050814 10:00:00", 0),
        ("Aug 14, 2005 10:00:00 AM x", "Aug 14, 2005 10:00:00 AM", 0),
        ("Aug 14, 2005 1:00:00 PM x", "Aug 14, 2005 1:00:00 PM", 3 * hour),
        ("20050814T100000 x", "20050814T100000", 0),
        ("EST Aug 14 05:00:00 x", "EST Aug 14 05:00:00", 0),
        ("+0300 Aug 14 13:00:00 x", "+0300 Aug 14 13:00:00", 0),
        ("1124013600 x", "1124013600", 0),
        ("[1124013600.500] x", "1124013600.500", 0.5),
        ("[1124013600.5] x", "1124013600", 0),
        ("@4000000042ff16201b4f6c0c x", "@4000000042ff16201b4f6c0c", 0),
        ("<08/14/05@10:00:00> x", "<08/14/05@10:00:00>", 0),
        ("Aug-14-05 10:00:00 x", "Aug-14-05 10:00:00", 0),
        ("09:00:00 x", "09:00:00", -hour),
        ("host x 2005-08-14 10:00:00 y", "2005-08-14 10:00:00", 0),
        ("[Sun Aug 14 10:00:00.123 2005] [error]", "Sun Aug 14 10:00:00.123 2005", 0),
    ])
    func defaultFormats(line: String, text: String, offset: Double) throws {
        let d = try detector()
        let m = try #require(match(d, line))
        #expect(cut(line, m) == text)
        #expect(m.isValid)
        #expect(m.time == Self.t0 + offset)
    }

    @Test func noDateIsNil() throws {
        let d = try detector()
        #expect(match(d, "no date in here 192.0.2.1") == nil)
        #expect(match(d, "") == nil)
        #expect(match(d, "x1124013600 inside a word") == nil)
    }

    @Test func templateNamesMatchFail2ban() throws {
        let d = try detector()
        #expect(d.templateNames.count == 31)
        #expect(d.templateNames[1] == #"{^LN-BEG}(?:DAY )?MON Day %k:Minute:Second(?:\.Microseconds)?(?: ExYear)?"#)
        #expect(d.templateNames[7] == "{^LN-BEG}Epoch")
        #expect(d.templateNames[13] == "{^LN-BEG}TAI64N")
        #expect(d.templateNames[21] == "Epoch")
        #expect(d.templateNames[22] == "{^LN-BEG}24hour:Minute:Second")
        _ = match(d, "Aug 14 10:00:00 x")
        _ = match(d, "Aug 14 10:00:01 x")
        #expect(d.templateHits[1] == 2)
        #expect(d.templateHits.reduce(0, +) == 2)
    }

    // MARK: directives

    @Test(arguments: [
        ("%Y-%m-%d %H:%M:%S", "2005-08-14 10:00:00", 0.0),
        ("%y-%m-%d %H:%M", "05-08-14 10:00", 0),
        ("%d.%m.%Y %H:%M:%S", "14.08.2005 10:00:00", 0),
        ("%d %B %Y %H:%M", "14 August 2005 10:00", 0),
        ("%A, %d %b %Y %H:%M", "Monday, 14 Aug 2005 10:00", 0),  // weekday is not checked
        ("%Y %j %H:%M:%S", "2005 226 10:00:00", 0),
        ("%I:%M:%S %p %d/%m/%Y", "10:00:00 am 14/08/2005", 0),
        ("%I:%M:%S %p %d/%m/%Y", "12:00:00 AM 14/08/2005", -10 * hour),
        ("%I:%M:%S %p %d/%m/%Y", "12:30:00 PM 14/08/2005", 2.5 * hour),
        ("%Y-%m-%d %k:%M", "2005-08-14  9:00", -hour),
        ("%Y-%m-%d %l:%M %p", "2005-08-14  9:00 pm", 11 * hour),
        ("%Y%m%d%H%M%S", "20050814100000", 0),
        ("%ExY%Exm%Exd%ExH%ExM%ExS", "20050814100000", 0),
        ("%Y-%m-%d %H:%M:%S.%f", "2005-08-14 10:00:00.999", 0),  // fail2ban drops %f
        ("%Y-%m-%d %H:%M:%S %z", "2005-08-14 12:00:00 +0200", 0),
        ("%Y-%m-%d %H:%M:%S %z", "2005-08-14 06:30:00 -03:30", 0),
        ("%Y-%m-%d %H:%M:%S %z", "2005-08-14 10:00:00 GMT", 0),
        ("%Y-%m-%d %H:%M:%S %Z", "2005-08-14 12:00:00 CEST", 0),
        ("%Y-%m-%d %H:%M:%S %Z", "2005-08-14 19:00:00 JST", 0),
        ("%Y-%m-%d %H:%M:%S %Exz", "2005-08-14 12:00:00 CET+0100", 0),
        ("%x %X", "08/14/05 10:00:00", 0),
        ("%c", "Sun Aug 14 10:00:00 2005", 0),
        ("%%%Y-%m-%d %H:%M:%S", "%2005-08-14 10:00:00", 0),
        ("^%Y-%m-%d %H:%M:%S", "2005-08-14 10:00:00", 0),
    ])
    func directives(pattern: String, text: String, offset: Double) throws {
        let d = try detector(pattern)
        let line = "<" + text + "> rest"
        let m = try #require(match(d, pattern.hasPrefix("^") ? text + " rest" : line))
        #expect(cut(pattern.hasPrefix("^") ? text + " rest" : line, m) == text)
        #expect(m.isValid)
        #expect(m.time == Self.t0 + offset)
    }

    @Test func wordBoundariesAndAnchors() throws {
        let plain = try detector("%Y-%m-%d")
        #expect(match(plain, "x2005-08-14") == nil)
        #expect(cut("at 2005-08-14.", match(plain, "at 2005-08-14.")) == "2005-08-14")
        let begin = try detector("{^LN-BEG}%Y-%m-%d")
        #expect(cut("[ 2005-08-14] x", match(begin, "[ 2005-08-14] x")) == "2005-08-14")
        #expect(match(begin, "[[[2005-08-14] x") == nil)
        #expect(match(begin, "a 2005-08-14") == nil)
        let end = try detector("%Y-%m-%d$")
        #expect(match(end, "2005-08-14 x") == nil)
        #expect(cut("x 2005-08-14", match(end, "x 2005-08-14")) == "2005-08-14")
        let group = try detector(#"^[^\[]*\[({DATE})"#)
        let line = "host [2005-08-14 10:00:00] x"
        #expect(cut(line, match(group, line)) == "2005-08-14 10:00:00")
        let unbound = try detector("{UNB}%Y-%m-%d")
        #expect(cut("x2005-08-14x", match(unbound, "x2005-08-14x")) == "2005-08-14")
        let none = try detector("{NONE}")
        let m = try #require(match(none, "anything"))
        #expect(m.range == 0..<0)
        #expect(!m.isValid)
    }

    @Test func specialValues() throws {
        let epoch = try detector("EPOCH")
        #expect(match(epoch, "audit(1124013600.123:42): x")?.time == Self.t0 + 0.123)
        #expect(match(epoch, "x 1124013600") == nil)
        let long = try detector("LEPOCH")
        #expect(match(long, "1124013600123 x")?.time == Self.t0 + 0.123)
        #expect(match(long, "1124013600123456 x")?.time == Self.t0 + 0.123456)
        let tai = try detector("TAI64N")
        #expect(match(tai, "@4000000042ff16200000000a x")?.time == Self.t0)
        #expect(try detector("{^LN-BEG}EPOCH").templateNames == ["{^LN-BEG}Epoch"])
    }

    // MARK: inference

    /// fail2ban compares the parsed wall-clock time with the local (TZ) wall clock of "now"; TZ is CET here.
    @Test func yearInferenceAtTheYearBoundary() throws {
        let now = 1_104_535_800.0  // 2004-12-31 23:30 UTC = 2005-01-01 00:30 CET
        let d = try detector("%b %d %H:%M:%S", zone: nil, now: now)
        // Yesterday evening is last year: 2004-12-31 23:59:59 CET.
        #expect(match(d, "Dec 31 23:59:59")?.time == 1_104_533_999)
        // Up to one day ahead stays in the current year (clock skew tolerance): 2005-01-02 00:30:00 CET ...
        #expect(match(d, "Jan 02 00:30:00")?.time == 1_104_622_200)
        // ... beyond that the date is from last year: 2004-01-02 00:30:01 CET.
        #expect(match(d, "Jan 02 00:30:01")?.time == 1_072_999_801)
        // Feb 29 does not exist in 2005: cut, but no time.
        let m = try #require(match(d, "Feb 29 10:00:00"))
        #expect(!m.isValid)
        #expect(m.range == 0..<15)
    }

    @Test func yearInferenceKeepsLeapDayInLeapYears() throws {
        let d = try detector("%b %d %H:%M:%S", now: 1_078_099_200)  // 2004-03-01 00:00 UTC
        #expect(match(d, "Feb 29 12:00:00")?.time == 1_078_099_200 - 12 * hour)
    }

    @Test func timeWithoutDateIsTodayOrYesterday() throws {
        let d = try detector("%H:%M:%S", zone: nil)  // now: 12:00 CEST
        #expect(match(d, "12:00:00")?.time == Self.t0)
        #expect(match(d, "12:00:01")?.time == Self.t0 + 1 - day)
        #expect(match(d, "00:00:00")?.time == Self.t0 - 12 * hour)
    }

    // MARK: zones

    @Test func logTimeZoneAndZonesInText() throws {
        #expect(match(try detector("%Y-%m-%d %H:%M:%S", zone: "UTC+0200"), "2005-08-14 12:00:00")?.time == Self.t0)
        #expect(match(try detector("%Y-%m-%d %H:%M:%S", zone: "-05:00"), "2005-08-14 05:00:00")?.time == Self.t0)
        #expect(match(try detector("%Y-%m-%d %H:%M:%S", zone: "CEST"), "2005-08-14 12:00:00")?.time == Self.t0)
        // A zone in the text wins over logtimezone.
        let d = try detector("%Y-%m-%d %H:%M:%S %z", zone: "UTC+0500")
        #expect(match(d, "2005-08-14 10:00:00 Z")?.time == Self.t0)
        // Local time (TZ) when no zone is given: CEST in August.
        #expect(match(try detector(zone: nil), "2005-08-14 12:00:00")?.time == Self.t0)
    }

    @Test func badTimeZoneIsAnError() {
        #expect(throws: DateError.self) { try DateDetector(timeZone: "Mars/Olympus") }
        #expect(throws: DateError.self) { try DateDetector(timeZone: "UTC+1") }
        do {
            _ = try DateDetector(timeZone: "utc")
            Issue.record("lower-case zone accepted")
        } catch {
            #expect(error.code == .badTimeZone)
            #expect(error.description.contains("utc"))
        }
    }

    @Test func dstTransitionsInLocalTime() throws {
        // TZ is CET-01CEST-02,M3.5.0,M10.5.0: 2005-03-27 02:00 CET jumps to 03:00 CEST; 2005-10-30 02:00 CEST falls
        // back to 01:00 CET, so 01:00-02:00 happens twice.
        let d = try detector("%Y-%m-%d %H:%M:%S", zone: nil)
        #expect(match(d, "2005-03-27 01:59:59")?.time == 1_111_885_199)
        #expect(match(d, "2005-03-27 03:00:00")?.time == 1_111_885_200)
        // A wall-clock time in the skipped hour reads with the offset before the jump (what mktime gives fail2ban).
        #expect(match(d, "2005-03-27 02:30:00")?.time == 1_111_887_000)
        // The repeated hour reads as its first occurrence (CEST), as mktime does for a log read in order.
        #expect(match(d, "2005-10-30 00:59:59")?.time == 1_130_626_799)
        #expect(match(d, "2005-10-30 01:59:59")?.time == 1_130_630_399)
        #expect(match(d, "2005-10-30 01:30:00")?.time == 1_130_628_600)
        #expect(match(d, "2005-10-30 02:30:00")?.time == 1_130_635_800)
        #expect(match(d, "2005-10-30 03:00:00")?.time == 1_130_637_600)
    }

    // MARK: invalid input

    @Test(arguments: [
        "2005-02-30 10:00:00", "2005-04-31 10:00:00", "2005-08-14 10:00:60", "Aug 14 24:00:00",
        "2005-02-29 10:00:00", "BST Aug 14 10:00:00",
    ])
    func invalidDatesAreCutButHaveNoTime(line: String) throws {
        let d = try detector(now: 42)
        let m = try #require(match(d, line + " x"))
        #expect(!m.isValid)
        #expect(m.time == 42)
        #expect(m.range.lowerBound == 0)
    }

    @Test func leapDayOfLeapYearIsValid() throws {
        let d = try detector()
        #expect(match(d, "2004-02-29 10:00:00 x")?.isValid == true)
    }

    @Test(arguments: ["%Y-%q", "%Y-%m-%d %", "%s", "%Exb", "%Y-(%m", "(?P<Y>x)%Y"])
    func badPatternsAreErrors(pattern: String) {
        do {
            _ = try DateDetector(datePattern: pattern)
            Issue.record("accepted \(pattern)")
        } catch {
            #expect(error.code == .badPattern)
            #expect(!error.message.isEmpty)
        }
    }

    @Test func multiLinePatternsKeepOrderAndDropDuplicates() throws {
        let d = try DateDetector(datePattern: "{^LN-BEG}Epoch\n  \n{^LN-BEG}\n%d.%m.%Y\n%d.%m.%Y")
        #expect(d.templateNames.first == "{^LN-BEG}Epoch")
        #expect(d.templateNames.last == "Day.Month.Year")
        #expect(d.templateNames.count == 1 + 16 + 1)  // the defaults' own {^LN-BEG}Epoch is a duplicate
    }

    @Test func hugeFieldsAndOddClocksDoNotTrap() throws {
        let digits = String(repeating: "9", count: 5000)
        let own = try DateTestSupport.detector(#"^(?P<Y>\d+)-%m-%d"#, zone: "UTC", now: Self.t0)
        let m = try #require(match(own, digits + "-08-14 x"))
        #expect(!m.isValid)
        for clock in [Double.nan, .infinity, -1e300, 1e300] {
            let d = try DateTestSupport.detector("%b %d %H:%M:%S", now: clock)
            #expect(match(d, "Aug 14 10:00:00 x") != nil)
        }
    }

    @Test func hostileLinesDoNotTrap() throws {
        let d = try detector()
        var bytes = [UInt8](repeating: 0xFF, count: 5000)
        bytes += Array("2005-08-14 10:00:00".utf8)
        let m = bytes.withUnsafeBufferPointer { d.match($0) }
        #expect(m?.range == 5000..<5019)
        let digits = [UInt8](repeating: 0x39, count: 100_000)
        _ = digits.withUnsafeBufferPointer { d.match($0) }
    }

    // MARK: local zone rules

    @Test func posixRuleTransitions() throws {
        let cet = try #require(PosixTimeZone("CET-01CEST-02,M3.5.0,M10.5.0"))
        #expect(cet.offset(at: 1_111_885_199) == 3600)  // 2005-03-27 00:59:59 UTC
        #expect(cet.offset(at: 1_111_885_200) == 7200)  // 01:00 UTC = 03:00 CEST
        #expect(cet.offset(at: 1_130_630_399) == 7200)  // 2005-10-29 23:59:59 UTC = 01:59:59 CEST
        #expect(cet.offset(at: 1_130_630_400) == 3600)  // 02:00 CEST falls back to 01:00 CET
        let us = try #require(PosixTimeZone("EST5EDT,M3.2.0,M11.1.0"))
        #expect(us.offset(at: 1_173_596_399) == -18000)  // 2007-03-11 06:59:59 UTC
        #expect(us.offset(at: 1_173_596_400) == -14400)
        #expect(us.offset(at: 1_194_155_999) == -14400)  // 2007-11-04 05:59:59 UTC
        #expect(us.offset(at: 1_194_156_000) == -18000)
        let south = try #require(PosixTimeZone("AEST-10AEDT,M10.1.0,M4.1.0/3"))
        #expect(south.offset(at: 1_120_000_000) == 36000)  // June: winter
        #expect(south.offset(at: 1_135_000_000) == 39600)  // December: summer
        #expect(PosixTimeZone("UTC0")?.offset(at: 0) == 0)
        #expect(PosixTimeZone("<+0530>-5:30")?.offset(at: 0) == 19800)
        #expect(PosixTimeZone("Europe/Berlin") == nil)
    }

    /// The libc path (process TZ, whatever it is) gives what mktime gives for unambiguous times.
    @Test func libcLocalTimeMatchesMktime() {
        let cache = LocalTimeCache()
        var t = 1_104_537_600  // 2005-01-01 UTC
        while t < 1_136_073_600 {
            var tt = time_t(t)
            var parts = tm()
            localtime_r(&tt, &parts)
            let wall =
                Civil.days(
                    year: Int(parts.tm_year) + 1900, month: Int(parts.tm_mon) + 1, day: Int(parts.tm_mday)) * 86400
                + Int(parts.tm_hour) * 3600 + Int(parts.tm_min) * 60 + Int(parts.tm_sec)
            parts.tm_isdst = -1
            let reference = Int(mktime(&parts))
            // Skip the hour around a transition, where mktime's choice depends on its history.
            if reference == t { #expect(cache.epoch(fromLocal: wall) == t) }
            #expect(cache.local(fromEpoch: Double(t)) == Double(wall))
            t += 7 * 3600 + 1234
        }
    }
}
