import Core

/// A duration written in fail2ban's abbreviated form, in seconds; negative means "for ever" (bantime = -1).
///
/// Accepted (as fail2ban's `MyTime.str2seconds`): a sum of terms, each an optional sign, a decimal number and an
/// optional unit, with or without spaces between them. Units, case-insensitive: `s se sec second(s)`,
/// `m mi min minute(s)`, `h ho hou hour(s)`, `d da dd day(s)`, `w we wee week(s)`, `mo mon month(s)`
/// (1/12 year), `y ye yea year(s)` (365.25 days). A number without a unit is seconds. The total must lie within
/// ±`Bounds.maximumSeconds` (10¹² s, about 31,700 years); anything longer is an error (write -1 for permanent).
///
/// ```swift
/// try TimeSpan.parse("1h30m").seconds   // 5400
/// try TimeSpan.parse("10 minutes").seconds   // 600
/// try TimeSpan.parse("-1").isPermanent  // true
/// ```
public struct TimeSpan: Sendable, Hashable, Comparable, CustomStringConvertible {
    /// The length in seconds (may have a fraction; negative for permanent).
    public var seconds: Double

    /// A span of `seconds`.
    public init(seconds: Double) { self.seconds = seconds }

    /// Whether this is fail2ban's "permanent" (a negative value).
    public var isPermanent: Bool { seconds < 0 }

    /// Orders by length.
    public static func < (a: TimeSpan, b: TimeSpan) -> Bool { a.seconds < b.seconds }

    /// The number of seconds, without a fraction when whole (`600`, `1.5`).
    public var description: String {
        seconds == seconds.rounded() && abs(seconds) < 1e15 ? String(Int64(seconds)) : String(seconds)
    }

    /// Seconds per unit name (lower case).
    static let units: [String: Double] = {
        var table: [String: Double] = [:]
        let year = 365.25 * 86400
        for (names, value) in [
            (["s", "se", "sec", "second", "seconds"], 1.0),
            (["m", "mi", "min", "minute", "minutes"], 60),
            (["h", "ho", "hou", "hour", "hours"], 3600),
            (["d", "da", "dd", "day", "days"], 86400),
            (["w", "we", "wee", "week", "weeks"], 7 * 86400),
            (["mo", "mon", "month", "months"], year / 12),
            (["y", "ye", "yea", "year", "years"], year),
        ] {
            for n in names { table[n] = value }
        }
        return table
    }()

    /// Parses a time value; throws `.badValue` (with `location`) for anything else.
    public static func parse(_ text: String, location: SourceLocation? = nil) throws(ConfigError) -> TimeSpan {
        let chars = Array(text.lowercased())
        var i = 0
        var total = 0.0
        var terms = 0
        func fail(_ why: String) -> ConfigError {
            ConfigError(
                .badValue, "'\(text)' is not a time value: \(why)", at: location,
                hint: "write seconds or e.g. 10m, 1h30m, 1d, 1w, 1mo, 1y; -1 for permanent")
        }
        func skipSpace() { while i < chars.count, chars[i].isWhitespace { i += 1 } }
        skipSpace()
        while i < chars.count {
            var sign = 1.0
            while i < chars.count, chars[i] == "+" || chars[i] == "-" {
                if chars[i] == "-" { sign = -sign }
                i += 1
                skipSpace()
            }
            let start = i
            while i < chars.count, chars[i].isASCII, chars[i].isNumber || chars[i] == "." { i += 1 }
            let numberText = String(chars[start..<i])
            guard !numberText.isEmpty, numberText.filter({ $0 == "." }).count <= 1, numberText != ".",
                let number = Double(numberText.hasSuffix(".") ? numberText + "0" : numberText)
            else {
                throw fail(i < chars.count ? "expected a number at '\(String(chars[i...]))'" : "expected a number")
            }
            skipSpace()
            let unitStart = i
            while i < chars.count, chars[i].isLetter { i += 1 }
            let unit = String(chars[unitStart..<i])
            var factor = 1.0
            if !unit.isEmpty {
                guard let f = units[unit] else { throw fail("unknown unit '\(unit)'") }
                factor = f
            }
            total += sign * number * factor
            terms += 1
            skipSpace()
        }
        guard terms > 0 else { throw fail("it is empty") }
        // fail2ban keeps any Python number; past Bounds.maximumSeconds every later sum or conversion could
        // overflow, and a ban that long is a permanent one.
        guard total.isFinite, abs(total) <= Bounds.maximumSeconds else {
            throw ConfigError(
                .badValue,
                "'\(text)' is out of range: at most 10^12 seconds (about 31,700 years) either way",
                at: location, hint: "write -1 for a permanent ban, or a shorter time such as 1000y")
        }
        return TimeSpan(seconds: total)
    }
}
