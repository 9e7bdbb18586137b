import Core

/// One failure seen by a jail's filter.
public struct FailureEvent: Sendable, Hashable {
    /// The offending address.
    public var address: IPAddress
    /// When it happened (the log line's time), epoch seconds.
    public var time: Double
    /// The matched log lines, kept for the `<matches>` tag.
    public var matches: [String]
    /// The filter's captured fields by fail2ban name (`user`, `fid`, …), for the `<F-*>` tags of actions.
    public var fields: [String: String]
    /// How many failed attempts it stands for (a filter's `<F-ATTEMPTS>`, see `Failure.countedAttempts`; at least 1).
    public var attempts: Int
    /// True when it adds one to `Total failed` whatever `attempts` says (fail2ban's `set JAIL attempt ADDR MATCH…`,
    /// where the matches count as attempts toward `maxretry` but the failure counts once).
    public var countsOnce = false

    /// A failure of `address` at `time` that stands for `attempts` attempts.
    public init(
        address: IPAddress, time: Double, matches: [String] = [], fields: [String: String] = [:], attempts: Int = 1
    ) {
        self.address = address
        self.time = time
        self.matches = matches
        self.fields = fields
        self.attempts = max(1, attempts)
    }
}

/// A ban the jail decided on; the caller applies it (firewall, store, actions) and reports back.
public struct BanDecision: Sendable, Hashable {
    /// The address to ban.
    public var address: IPAddress
    /// When the ban starts, epoch seconds.
    public var start: Double
    /// Ban length in seconds; nil = permanent.
    public var duration: Double?
    /// Failures that led to it.
    public var failures: Int
    /// The matched lines (at most `maxMatches`).
    public var matches: [String]
    /// How many times this address was banned before (for `bantime.increment`).
    public var previousBans: Int

    /// When the ban ends, nil if permanent.
    public var end: Double? { duration.map { start + $0 } }

    /// A decision (also for bans made by hand with `banip`).
    public init(
        address: IPAddress, start: Double, duration: Double?, failures: Int, matches: [String], previousBans: Int
    ) {
        self.address = address
        self.start = start
        self.duration = duration
        self.failures = failures
        self.matches = matches
        self.previousBans = previousBans
    }
}

/// What recording a failure led to.
public enum JailVerdict: Sendable, Hashable {
    /// Counted; not (yet) enough for a ban.
    case counted(failures: Int)
    /// Enough failures: ban.
    case ban(BanDecision)
    /// The address is covered by `ignoreip`/`ignoreself`; the string says which entry.
    case ignored(String)
    /// Already banned; counted in the totals only.
    case alreadyBanned
    /// Already banned, and maxretry reached again: the ban was prolonged to end `bantime` after this failure
    /// (nil: permanent), as fail2ban prolongs a ban found again.
    case prolonged(IPAddress, end: Double?)
    /// Older than `findtime` at the time it was read; not counted.
    case tooOld
}

/// A jail's failure counting and ban bookkeeping, as a value-type state machine with an injected clock
/// (`now` is passed in). The owning actor performs the verdicts it returns.
///
/// ```swift
/// var jail = JailState(name: "sshd", policy: BanPolicy(maxRetry: 2), ignore: try IgnoreList(entries: []))
/// jail.record(FailureEvent(address: a, time: 100), now: 100)   // .counted(failures: 1)
/// jail.record(FailureEvent(address: a, time: 101), now: 101)   // .ban(...)
/// ```
public struct JailState: Sendable {
    /// The jail's name.
    public let name: String
    /// Its ban policy.
    public var policy: BanPolicy
    /// Addresses never banned.
    public var ignore: IgnoreList

    struct FailureRecord: Sendable {
        var times: [Double] = []
        var matches: [String] = []
        var last: Double = 0
    }

    /// One ban in force: when it started, when it ends (nil = permanent), and its place in the order bans were
    /// made (fail2ban lists a jail's bans in that order).
    public struct Ban: Sendable, Hashable {
        /// When the ban started, epoch seconds.
        public var start: Double
        /// When it ends, nil for a permanent ban.
        public var end: Double?
        /// Position in the jail's ban order.
        var sequence: UInt64
        /// True once a repeated ban prolonged it: its length is its own from then on, and a new `bantime` for
        /// the jail leaves it alone (as fail2ban's tickets behave).
        public var hasOwnLength = false

        /// The ban's length in seconds, -1 for a permanent ban (fail2ban's `bantime` of a ticket).
        public var duration: Double { end.map { $0 - start } ?? -1 }
    }

    private var failing: [IPAddress: FailureRecord] = [:]
    private var banned: [IPAddress: Ban] = [:]
    private var nextSequence: UInt64 = 0
    /// Ended bans taken out of `banned` by `record` (the address failed again); `purge` reports them.
    private var endedUnreported: [IPAddress] = []
    private var eventsSincePurge = 0
    /// Prefix bans and the recent bans counted towards them (see ``PrefixPolicy``).
    var prefixes = PrefixBook()

    /// Most addresses with failures below `maxretry` kept at once (`maxtracked`); when a new address would pass
    /// it, the ones whose last failure is oldest are forgotten first. nil = no limit.
    public var maxTracked: Int?
    /// Tracked addresses forgotten because of ``maxTracked`` since start.
    public private(set) var droppedTracked = 0

    /// Total failures counted since start (`Total failed`).
    public private(set) var totalFailed = 0
    /// Total bans since start (`Total banned`), prefix bans included.
    public internal(set) var totalBanned = 0

    /// A fresh jail.
    public init(name: String, policy: BanPolicy, ignore: IgnoreList) {
        self.name = name
        self.policy = policy
        self.ignore = ignore
    }

    /// Addresses with failures inside the window (`Currently failed`).
    public var currentlyFailed: Int { failing.count }
    /// Addresses banned now (`Currently banned`).
    public var currentlyBanned: Int { banned.count }
    /// The banned addresses in the order they were banned (as fail2ban lists them in `status` and `banned`).
    public var bannedAddresses: [IPAddress] {
        banned.sorted { $0.value.sequence < $1.value.sequence }.map(\.key)
    }

    /// The bans in force ordered by their end (permanent last, then in ban order), as fail2ban's `get JAIL banip`.
    public var bansByEnd: [(address: IPAddress, ban: Ban)] {
        banned.map { (address: $0.key, ban: $0.value) }.sorted {
            let (a, b) = ($0.ban, $1.ban)
            switch (a.end, b.end) {
            case (let x?, let y?) where x != y: return x < y
            case (.some, .none): return true
            case (.none, .some): return false
            default: return a.sequence < b.sequence
            }
        }
    }

    /// The ban of `address` when it is banned (ended or not, until `purge` reports it).
    public func ban(of address: IPAddress) -> Ban? { banned[address] }

    /// True when `address` is banned at `now`, by its own ban or a prefix ban covering it.
    public func isBanned(_ address: IPAddress, now: Double) -> Bool {
        guard let ban = banned[address] else { return prefixes.covering(address, now: now) != nil }
        return ban.end.map { $0 > now } ?? true
    }

    /// Records a failure read at `now`. `previousBans` is how often the address was banned before
    /// (from the store; used with `bantime.increment`).
    public mutating func record(
        _ event: FailureEvent, now: Double, previousBans: (IPAddress) -> Int = { _ in 0 },
        random: () -> Double = { Double.random(in: 0..<1) }
    ) -> JailVerdict {
        if let why = ignore.reason(for: event.address) { return .ignored(why) }
        if event.time < now - policy.findTime { return .tooOld }
        let attempts = max(1, event.attempts)
        totalFailed += event.countsOnce ? 1 : attempts
        if isBanned(event.address, now: now) {
            // Counted like any failure (fail2ban's `Currently failed` shows it); reaching maxretry again only
            // starts the count over, the address being banned already.
            // Taken out of the dictionary while it changes: a copy left there would make every append copy the
            // arrays (quadratic in the failures of one address).
            var record = failing.removeValue(forKey: event.address) ?? FailureRecord()
            for _ in 0..<min(attempts, max(policy.maxRetry, 1)) { record.times.append(event.time) }
            record.last = max(record.last, event.time)
            guard record.times.count >= policy.maxRetry else {
                failing[event.address] = record
                return .alreadyBanned
            }
            if let ban = prolong(event.address, at: event.time) { return .prolonged(event.address, end: ban.end) }
            return .alreadyBanned
        }
        // A ban that ended but was not yet reported: `purge` still reports it (`Unban`, actionunban).
        if banned.removeValue(forKey: event.address) != nil { endedUnreported.append(event.address) }

        // Trimming walks every record: do it once per as many events as there are records (amortised O(1)).
        eventsSincePurge += 1
        if eventsSincePurge >= max(1024, failing.count) { trimFailures(now: now) }

        // Taken out while it changes (see above); put back below unless it leads to a ban.
        let known = failing.removeValue(forKey: event.address)
        if known == nil, let cap = maxTracked, failing.count >= cap { dropOldestTracked(cap: cap) }
        var record = known ?? FailureRecord()
        // Each attempt is a failure at the line's time (no more than maxretry of them can matter).
        for _ in 0..<min(attempts, max(policy.maxRetry, 1)) { record.times.append(event.time) }
        if record.times.count > 1, record.times[record.times.count - 2] > event.time {
            record.times.sort()
        }
        let windowStart = max(record.times.last ?? event.time, event.time) - policy.findTime
        if let firstInside = record.times.firstIndex(where: { $0 >= windowStart }), firstInside > 0 {
            record.times.removeFirst(firstInside)
        }
        if record.times.count > policy.maxRetry { record.times.removeFirst(record.times.count - policy.maxRetry) }
        record.matches.append(contentsOf: event.matches)
        if record.matches.count > policy.maxMatches {
            record.matches.removeFirst(record.matches.count - policy.maxMatches)
        }
        record.last = max(record.last, event.time)

        guard record.times.count >= policy.maxRetry else {
            failing[event.address] = record
            return .counted(failures: record.times.count)
        }
        let count = previousBans(event.address)
        let decision = BanDecision(
            address: event.address, start: now, duration: policy.duration(previousBans: count, random: random),
            failures: record.times.count, matches: record.matches, previousBans: count
        )
        return .ban(decision)
    }

    /// Notes that a ban was applied (from `record`, from the store at start, or by `banip`). `start` is when
    /// it began (default: its end minus the jail's bantime, or `end` itself when unknown). Noting a ban already
    /// in force again updates its end and keeps its place in the ban order.
    public mutating func noteBanned(_ address: IPAddress, until end: Double?, since start: Double? = nil) {
        if var known = banned[address] {
            known.end = end
            if let start { known.start = start }
            banned[address] = known
        } else {
            let begin = start ?? end.map { $0 - max(policy.banTime, 0) } ?? 0
            banned[address] = Ban(start: begin, end: end, sequence: nextSequence)
            nextSequence += 1
            totalBanned += 1
        }
        // Failures still pending stay counted (`Currently failed`), as in fail2ban: a ban decided by `record`
        // took its own address out already, and later failures of a banned address count again.
    }

    /// A new ban of an address that is banned already (`banip` again, or maxretry reached again): when a ban
    /// starting at `time` would end later, the ban in force is prolonged to that end and keeps it as its own
    /// length; returns the ban then, nil when nothing changed. A permanent ban is never shortened.
    public mutating func prolong(_ address: IPAddress, at time: Double) -> Ban? {
        guard var ban = banned[address] else { return nil }
        let newEnd: Double? = policy.banTime < 0 ? nil : time + policy.banTime
        switch (ban.end, newEnd) {
        case (nil, _): return nil
        case (let old?, let new?) where new <= old: return nil
        default: break
        }
        ban.end = newEnd
        ban.hasOwnLength = true
        banned[address] = ban
        return ban
    }

    /// Notes an unban; returns false when the address was not banned.
    @discardableResult
    public mutating func noteUnbanned(_ address: IPAddress) -> Bool {
        banned.removeValue(forKey: address) != nil
    }

    /// Forgets every ban (for `unban --all`), returning the addresses.
    public mutating func unbanAll() -> [IPAddress] {
        let all = bannedAddresses
        banned.removeAll()
        return all
    }

    /// Drops failure records outside the window and bans that have ended; returns the ended bans (each once,
    /// also those an address's new failures displaced since the last purge).
    @discardableResult
    public mutating func purge(now: Double) -> [IPAddress] {
        trimFailures(now: now)
        var ended = endedUnreported
        endedUnreported = []
        for (a, ban) in banned {
            if let end = ban.end, end <= now { ended.append(a) }
        }
        for a in ended { banned.removeValue(forKey: a) }
        return ended.sorted()
    }

    /// Drops failure records outside the window.
    mutating func trimFailures(now: Double) {
        eventsSincePurge = 0
        let limit = now - policy.findTime
        failing = failing.filter { $0.value.last >= limit }
    }

    /// Makes room under `cap`: forgets the tracked addresses whose last failure is oldest, a sixteenth of the
    /// cap at a time so the sort is paid once per many new addresses.
    mutating func dropOldestTracked(cap: Int) {
        let excess = failing.count - cap + 1
        let count = min(failing.count, max(excess, max(1, cap / 16)))
        guard count > 0 else { return }
        var lasts = failing.values.map(\.last)
        lasts.sort()
        let threshold = lasts[count - 1]
        // Strictly older first, then addresses last seen at the threshold itself until `count` are gone.
        var tiesToDrop = count - (lasts.prefix(count).firstIndex(of: threshold) ?? (count - 1))
        let before = failing.count
        failing = failing.filter { entry in
            if entry.value.last < threshold { return false }
            if entry.value.last == threshold, tiesToDrop > 0 {
                tiesToDrop -= 1
                return false
            }
            return true
        }
        droppedTracked += before - failing.count
    }
}

extension JailState {
    /// Failures of one address counted but below `maxretry`: what a store keeps so a restart resumes counting.
    public struct Pending: Sendable, Hashable {
        /// The failures' times inside the window, oldest first.
        public var times: [Double]
        /// The matched lines kept for `<matches>`.
        public var matches: [String]

        /// Creates a record.
        public init(times: [Double], matches: [String] = []) {
            self.times = times
            self.matches = matches
        }
    }

    /// The failures `address` has pending now (nil when none: never failed, banned, or out of the window).
    public func pending(_ address: IPAddress) -> Pending? {
        failing[address].map { Pending(times: $0.times, matches: $0.matches) }
    }

    /// Every address with pending failures (for carrying them over a reload).
    public var allPending: [(IPAddress, Pending)] {
        failing.map { ($0.key, Pending(times: $0.value.times, matches: $0.value.matches)) }
    }

    /// Puts back failures stored before a restart; times older than `findtime` at `now` are dropped. Addresses
    /// that are banned or ignored are left alone. Not counted in `totalFailed` (they were counted before).
    public mutating func restorePending(_ address: IPAddress, _ pending: Pending, now: Double) {
        guard banned[address] == nil, ignore.reason(for: address) == nil else { return }
        let times = pending.times.filter { $0 >= now - policy.findTime }.sorted().suffix(policy.maxRetry)
        guard !times.isEmpty else { return }
        failing[address] = FailureRecord(
            times: Array(times), matches: Array(pending.matches.suffix(policy.maxMatches)), last: times.last!)
    }

    /// Takes over the totals of a previous instance of the same jail (after a reload).
    public mutating func absorbCounters(of old: JailState) {
        totalFailed += old.totalFailed
        totalBanned = max(totalBanned, old.totalBanned)
    }
}
