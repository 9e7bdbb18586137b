/// The ranges Portcullis accepts for numbers that come from outside (configuration, the control socket, the
/// store), so no conversion or arithmetic on them can trap.
///
/// Values are range-checked where they are parsed (configuration: an error naming file, line and option;
/// store rows: clamped or skipped); the conversions below are the second line of defence for values computed
/// from them (a `bantime.formula` result, a sum of times).
///
/// ```swift
/// Bounds.maximumSeconds            // 1e12: about 31,700 years
/// Int(saturating: 1e300)           // Int.max
/// Int(saturating: .nan)            // 0
/// ```
public enum Bounds {
    /// The longest time span accepted in configuration (`bantime`, `findtime`, `bantime.maxtime`, …) and the
    /// longest ban a formula may compute: 10¹² seconds, about 31,700 years. fail2ban keeps any Python number;
    /// past this every ban is effectively permanent anyway, and write `-1` to say so.
    public static let maximumSeconds: Double = 1e12
    /// The highest ban count read from the store (a row may hold anything).
    public static let maximumBanCount = 1_000_000_000
    /// The largest count accepted from the control socket (`set JAIL maxretry`, `maxmatches`, `dbmaxmatches`, …):
    /// a billion, far beyond any useful value; fail2ban keeps any Python integer.
    public static let maximumCount = 1_000_000_000
    /// The longest log line matched, in bytes without its newline: 64 KiB. sshd caps its messages near 1 KiB,
    /// syslog daemons at 1–8 KiB (rsyslog's default `maxMessageSize` is 8 KiB); journald keeps larger fields.
    /// A longer line is skipped whole and counted, never matched from a prefix: a cut would let an attacker
    /// choose where the line ends (pad a user name so the cut lands right after a forged `from ADDR`).
    public static let maximumLineLength = 64 * 1024
}

extension Int {
    /// `value` rounded toward zero and clamped to `Int.min…Int.max`; NaN becomes 0. Never traps.
    ///
    /// ```swift
    /// Int(saturating: 9.3e18)   // Int.max
    /// Int(saturating: -2.5)     // -2
    /// ```
    public init(saturating value: Double) {
        if value.isNaN {
            self = 0
        } else if value >= 9_223_372_036_854_775_807.0 {  // rounds to 2^63, one past Int.max
            self = .max
        } else if value <= -9_223_372_036_854_775_808.0 {
            self = .min
        } else {
            self = Int(value)
        }
    }
}

extension Int64 {
    /// `value` rounded toward zero and clamped to `Int64.min…Int64.max`; NaN becomes 0. Never traps.
    public init(saturating value: Double) {
        self = Int64(Int(saturating: value))
    }
}
