import Configuration
import Core

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// A filter that cannot be compiled: bad regex, regex without an address/id group, bad date pattern.
public struct FilterError: Error, Sendable, CustomStringConvertible {
    /// What went wrong.
    public enum Code: String, Sendable {
        /// The regex is empty.
        case emptyRegex
        /// PCRE2 rejected the regex.
        case badRegex
        /// A failregex has no group naming the offender (`<HOST>`, `<ADDR>`, `<F-ID>`, …).
        case noFailureID
        /// The date pattern or time zone is invalid.
        case badDatePattern
        /// An option is out of range.
        case badOption
    }
    /// The kind of error.
    public var code: Code
    /// A message for a person: what is wrong and what to do.
    public var message: String
    /// The file and line of the offending value, when known.
    public var location: SourceLocation?

    /// Creates an error.
    public init(code: Code, message: String, location: SourceLocation? = nil) {
        self.code = code
        self.message = message
        self.location = location
    }

    /// `file:line: message`, or the message alone.
    public var description: String {
        if let location { return "\(location): \(message)" }
        return message
    }
}

/// How host names captured by `<HOST>` are treated (fail2ban's `usedns`).
public enum DNSMode: String, Sendable {
    /// Names are matched and resolved with `FilterOptions.resolver`.
    case yes
    /// Like `yes` (fail2ban also logs a warning).
    case warn
    /// `<HOST>` matches addresses only.
    case no
    /// Names are matched and kept as they are (the failure carries `host`, no address).
    case raw
}

/// Options a jail (or `portcullis regex`) applies on top of a filter.
public struct FilterOptions: Sendable {
    /// fail2ban's `logtimezone`; nil means local time.
    public var timeZone: String?
    /// The current time (epoch seconds): year inference and the multi-line failure cache's expiry.
    public var now: @Sendable () -> Double
    /// The jail's `datepattern`, overriding the filter's.
    public var datePattern: String?
    /// The jail's `maxlines`, overriding the filter's.
    public var maxLines: Int?
    /// A line longer than this many bytes is not matched at all (`LineOutcome.tooLong`): never cut, since
    /// log lines are attacker-controlled and a cut would let the attacker choose where the line ends.
    /// Default `Bounds.maximumLineLength` (64 KiB), the limit the log sources apply too.
    public var maxLineLength: Int
    /// How host names are treated.
    public var dnsMode: DNSMode
    /// Resolves a host name to addresses when `dnsMode` is `yes` or `warn`; nil keeps names raw.
    public var resolver: (@Sendable (String) -> [IPAddress])?
    /// Try every failregex on each line instead of stopping at the first match (fail2ban-regex's default,
    /// and what fail2ban's sample suite uses); `nofail` matches are then reported too, flagged `isNoFail`.
    public var checkAllRegex: Bool
    /// Whether lines are first looked for the literals every match must contain (`RequiredLiterals`), so that a
    /// line without them skips the filter's regexes. Default `.on`.
    public var prefilter: Prefilter = .on

    /// Creates options; the defaults match a jail with no overrides.
    public init(
        timeZone: String? = nil, now: @escaping @Sendable () -> Double = { FilterClock.now() },
        datePattern: String? = nil, maxLines: Int? = nil, maxLineLength: Int = Bounds.maximumLineLength,
        dnsMode: DNSMode = .raw,
        resolver: (@Sendable (String) -> [IPAddress])? = nil, checkAllRegex: Bool = false
    ) {
        self.timeZone = timeZone
        self.now = now
        self.datePattern = datePattern
        self.maxLines = maxLines
        self.maxLineLength = maxLineLength
        self.dnsMode = dnsMode
        self.resolver = resolver
        self.checkAllRegex = checkAllRegex
    }
}

/// How `LineProcessor` uses the literals a match must contain (`CompiledFilter.prefilterLiterals`). Every mode gives
/// the same verdicts, failures and counters, except where said.
public enum Prefilter: Sendable {
    /// Every regex runs on every line.
    case off
    /// A line without the prefregex's literals, or without any failregex's literals, is missed without running
    /// a regex. The failregexes' literals are looked for before the prefregex (single-line filters), so
    /// `FilterStats.prefregexMatched` counts only the lines that have them (the daemon does not show it).
    case on
    /// As `.on`, but the failregexes' literals are looked for only after the prefregex ran, so that
    /// `prefregexMatched` counts every line the prefregex matches (`portcullis regex` prints it).
    case keepPrefregexCount
}

/// The wall clock used by default.
public enum FilterClock {
    /// Seconds since the epoch.
    public static func now() -> Double {
        var ts = timespec()
        clock_gettime(CLOCK_REALTIME, &ts)
        return Double(ts.tv_sec) + Double(ts.tv_nsec) / 1e9
    }
}

/// What happened to one line, counted the way fail2ban-regex counts.
public enum LineOutcome: Sendable, Equatable {
    /// No failregex matched (or the prefregex did not match).
    case missed
    /// An ignoreregex matched, or the match was a `<F-NOFAIL>` one.
    case ignored
    /// A failregex matched.
    case matched
    /// The line is longer than `FilterOptions.maxLineLength`: skipped whole, never matched from a prefix.
    case tooLong
    /// No failregex matched, and at least one regex stopped with a PCRE2 error (its match, depth or heap
    /// limit, on a hostile line) instead of a verdict: counted apart so it is visible.
    case matchLimit
}

/// One failure found in the log.
public struct Failure: Sendable, Equatable {
    /// Index of the failregex that matched.
    public var regexIndex: Int
    /// Time of the failure (epoch seconds), from the line's date (or the last date seen).
    public var time: Double
    /// The offending address, normalised (IPv4-mapped IPv6 becomes IPv4); nil when the failure is identified by
    /// a host name or an `<F-ID>` that is not an address.
    public var address: IPAddress?
    /// The offending network when the regex captured a prefix length (`<SUBNET>`, `<CIDR>`); `address` is then
    /// its network address.
    public var subnet: Subnet?
    /// The failure's identifier as fail2ban reports it: the address text, the host name, or the `<F-ID>` value.
    public var host: String?
    /// The `<F-ID>` value, when the regex has one.
    public var id: String?
    /// Every captured field by fail2ban's name (`user`, `mlfid`, `ip4`, `fport`, …); unset groups are absent.
    public var fields: [String: String]
    /// The log lines that make up this failure (several for multi-line and `<F-MLFID>` failures).
    public var lines: [String]
    /// Distinct users seen for this `<F-MLFID>` connection (fail2ban's `users`); empty otherwise.
    public var users: [String]
    /// True for a `<F-NOFAIL>` match (reported only with `checkAllRegex`); not a failure to count.
    public var isNoFail: Bool

    /// Number of attempts this failure stands for (fail2ban's `attempts`: the lines that make it up).
    public var attempts: Int { lines.count }

    /// The most attempts one failure can stand for (see `countedAttempts`). A daemon that reports several
    /// attempts in one line reports those of one connection (Dovecot: a few per connection); a larger number is a
    /// garbled or forged line, and counting it in full would ban on one line whatever `maxretry` says.
    public static let maxCountedAttempts = 100

    /// How many failed attempts a jail counts for this failure: the `<F-ATTEMPTS>` capture when the filter has
    /// one and it is digits (Dovecot's `(auth failed, 3 attempts in 18 secs)` is 3), clamped to
    /// 1…`maxCountedAttempts`; else 1. fail2ban ignores the tag (an unknown `<F-…>` group), counting 1.
    public var countedAttempts: Int {
        guard let text = fields["attempts"], !text.isEmpty, text.utf8.allSatisfy({ $0 >= 0x30 && $0 <= 0x39 })
        else { return 1 }
        // More digits than any count needs: the maximum (no conversion that could overflow).
        guard text.utf8.count <= 6, let n = Int(text) else { return Self.maxCountedAttempts }
        return min(max(n, 1), Self.maxCountedAttempts)
    }
}

/// Counters of a `LineProcessor`, like fail2ban-regex's summary.
public struct FilterStats: Sendable, Equatable {
    /// Lines processed (not counting `tooLong` ones).
    public var lines = 0
    /// Lines with a failure.
    public var matched = 0
    /// Lines ignored (ignoreregex or nofail).
    public var ignored = 0
    /// Lines that matched nothing.
    public var missed = 0
    /// Lines longer than `FilterOptions.maxLineLength`, skipped (not in `missed`).
    public var tooLong = 0
    /// Lines where a regex hit PCRE2's match limit and nothing matched (not in `missed`).
    public var matchLimit = 0
    /// Hits per failregex.
    public var failregexHits: [Int]
    /// Hits per ignoreregex.
    public var ignoreregexHits: [Int]
    /// Lines whose prefregex matched.
    public var prefregexMatched = 0
    /// Date template names in use and their hits.
    public var dateTemplates: [(name: String, hits: Int)] { zip(dateTemplateNames, dateTemplateHits).map { ($0, $1) } }
    /// Names of the date templates.
    public var dateTemplateNames: [String] = []
    /// Hits per date template.
    public var dateTemplateHits: [Int] = []

    init(failregexCount: Int, ignoreregexCount: Int) {
        failregexHits = Array(repeating: 0, count: failregexCount)
        ignoreregexHits = Array(repeating: 0, count: ignoreregexCount)
    }

    /// Equal when every counter is equal.
    public static func == (a: FilterStats, b: FilterStats) -> Bool {
        a.lines == b.lines && a.matched == b.matched && a.ignored == b.ignored && a.missed == b.missed
            && a.tooLong == b.tooLong && a.matchLimit == b.matchLimit
            && a.failregexHits == b.failregexHits && a.ignoreregexHits == b.ignoreregexHits
            && a.prefregexMatched == b.prefregexMatched && a.dateTemplateNames == b.dateTemplateNames
            && a.dateTemplateHits == b.dateTemplateHits
    }
}
