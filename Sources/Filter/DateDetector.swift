import Foundation

/// Where a log line's timestamp was found, and what time it denotes.
public struct DateMatch: Sendable, Equatable {
    /// Byte range in the line that fail2ban cuts out as the date (the failregexes see the line without it).
    public var range: Range<Int>
    /// Epoch seconds (fractional allowed).
    public var time: Double
    /// Index into `DateDetector.templateNames` of the template that matched.
    public var templateIndex: Int

    /// Creates a match.
    public init(range: Range<Int>, time: Double, templateIndex: Int) {
        self.range = range
        self.time = time
        self.templateIndex = templateIndex
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
    public var description: String { "\(code == .badPattern ? "datepattern" : "logtimezone") '\(value)': \(message)" }
}

/// Finds the timestamp of a log line with fail2ban 1.0.2's semantics. One per worker; not thread-safe.
///
/// ```swift
/// let d = try DateDetector()
/// var line = "2005-08-14 12:00:00 sshd[1]: Failed password"
/// let m = line.withUTF8 { d.match($0) }   // m?.range == 0..<19
/// ```
public final class DateDetector {
    private let now: @Sendable () -> Double
    /// Names of the templates in use, as fail2ban-regex lists them.
    public private(set) var templateNames: [String] = []
    /// Hits per template (same order as `templateNames`).
    public private(set) var templateHits: [Int] = []

    /// Creates a detector.
    /// - Parameters:
    ///   - datePattern: a filter's or jail's `datepattern` (several patterns, one per line); nil = default templates.
    ///   - timeZone: fail2ban's `logtimezone` (`UTC`, `UTC+0200`, `+0200`); nil = local time (TZ).
    ///   - now: the current time, used for year inference.
    public init(
        datePattern: String? = nil,
        timeZone: String? = nil,
        now: @escaping @Sendable () -> Double = { Date().timeIntervalSince1970 }
    ) throws(DateError) {
        self.now = now
        templateNames = ["{^LN-BEG}ExYear(?P<_sep>[-/.])Month(?P=_sep)Day(?:T|  ?)24hour:Minute:Second(?:[.,]Microseconds)?(?:\\s*Zone offset)?"]
        templateHits = [0]
    }

    /// Finds the date in `line`. Returns nil when the line has none. (Stub: ISO dates at line start only, UTC.)
    public func match(_ line: UnsafeBufferPointer<UInt8>) -> DateMatch? {
        guard line.count >= 19 else { return nil }
        func num(_ a: Int, _ n: Int) -> Int? {
            var v = 0
            for i in a..<(a + n) {
                let c = line[i]
                guard c >= 0x30, c <= 0x39 else { return nil }
                v = v * 10 + Int(c - 0x30)
            }
            return v
        }
        guard let y = num(0, 4), let mo = num(5, 2), let d = num(8, 2), let h = num(11, 2), let mi = num(14, 2),
            let s = num(17, 2)
        else { return nil }
        let yy = mo <= 2 ? y - 1 : y
        let era = yy / 400
        let yoe = yy - era * 400
        let doy = (153 * (mo + (mo > 2 ? -3 : 9)) + 2) / 5 + d - 1
        let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy
        let days = era * 146097 + doe - 719468
        templateHits[0] += 1
        return DateMatch(range: 0..<19, time: Double(days * 86400 + h * 3600 + mi * 60 + s), templateIndex: 0)
    }
}
