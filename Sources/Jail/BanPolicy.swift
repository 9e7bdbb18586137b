import Core

/// How a jail turns failures into bans: fail2ban's `maxretry`, `findtime`, `bantime` and `bantime.*` options.
///
/// ```swift
/// var policy = BanPolicy(maxRetry: 3, findTime: 600, banTime: 3600)
/// policy.duration(previousBans: 0)   // 3600
/// ```
public struct BanPolicy: Sendable, Hashable {
    /// Failures that trigger a ban (`maxretry`).
    public var maxRetry: Int
    /// Window in seconds in which `maxRetry` failures must fall (`findtime`).
    public var findTime: Double
    /// Ban length in seconds (`bantime`); negative means permanent.
    public var banTime: Double
    /// `bantime.increment` settings, nil when off.
    public var increment: BanTimeIncrement?
    /// How many matched lines a ban keeps for the `<matches>` tag (`maxmatches`).
    public var maxMatches: Int
    /// When the jail bans a whole prefix (`prefix4`, `prefix6`, `prefixbans`).
    public var prefix: PrefixPolicy = .defaults

    /// A policy; defaults are fail2ban's (5 failures in 10 minutes → 10 minutes).
    public init(
        maxRetry: Int = 5, findTime: Double = 600, banTime: Double = 600, increment: BanTimeIncrement? = nil,
        maxMatches: Int? = nil
    ) {
        self.maxRetry = max(1, maxRetry)
        self.findTime = findTime
        self.banTime = banTime
        self.increment = increment
        self.maxMatches = maxMatches ?? max(1, maxRetry)
    }

    /// True when bans are permanent.
    public var isPermanent: Bool { banTime < 0 }

    /// The length of the next ban of an address banned `previousBans` times before; nil = permanent.
    /// `random` returns a value in 0..<1 (injected for tests; used with `bantime.rndtime`).
    public func duration(previousBans: Int, random: () -> Double = { Double.random(in: 0..<1) }) -> Double? {
        if banTime < 0 { return nil }
        guard let inc = increment else { return banTime }
        var t: Double
        if !inc.multipliers.isEmpty {
            let i = min(max(previousBans, 0), inc.multipliers.count - 1)
            t = banTime * inc.multipliers[i] * inc.factor
        } else {
            t = inc.formula.evaluate(time: banTime, count: max(previousBans, 0), factor: inc.factor)
        }
        if !t.isFinite || t < 0 { t = banTime }
        if let maxTime = inc.maxTime, maxTime > 0 { t = min(t, maxTime) }
        if let rnd = inc.randomTime, rnd > 0 { t += (random() * rnd).rounded(.down) }
        // A formula can reach 1e300 (`<<` on a large count): keep every later conversion in range.
        return min(t, Bounds.maximumSeconds)
    }
}

/// fail2ban's `bantime.increment` family of options.
public struct BanTimeIncrement: Sendable, Hashable {
    /// `bantime.factor` (default 1).
    public var factor: Double
    /// `bantime.formula` (default fail2ban's doubling formula).
    public var formula: BanTimeFormula
    /// `bantime.multipliers`; when set, used instead of the formula.
    public var multipliers: [Double]
    /// `bantime.maxtime`: the ban length never exceeds it.
    public var maxTime: Double?
    /// `bantime.rndtime`: up to this many random seconds are added.
    public var randomTime: Double?
    /// `bantime.overalljails`: count previous bans of the address in every jail, not just this one.
    public var overallJails: Bool

    /// Settings; the defaults double the ban each time.
    public init(
        factor: Double = 1, formula: BanTimeFormula? = nil, multipliers: [Double] = [], maxTime: Double? = nil,
        randomTime: Double? = nil, overallJails: Bool = false
    ) {
        self.factor = factor
        // The default formula always parses.
        self.formula = formula ?? (try! BanTimeFormula(BanTimeFormula.defaultSource))
        self.multipliers = multipliers
        self.maxTime = maxTime
        self.randomTime = randomTime
        self.overallJails = overallJails
    }
}
