import Configuration
import Jail

extension JailSetup {
    /// Reads `prefix4`, `prefix6` and `prefixbans` (also from `[DEFAULT]`), each a whole number in range.
    static func prefixPolicy(_ jail: JailConfiguration) throws(ConfigError) -> PrefixPolicy {
        func number(
            _ key: String, _ range: ClosedRange<Int>, _ fallback: Int, _ example: String
        ) throws(ConfigError) -> Int {
            guard let raw = jail.values[key] else { return fallback }
            let text = String(raw.filter { $0 != " " && $0 != "\t" })
            if text.isEmpty { return fallback }
            guard let n = Int(text), range.contains(n) else {
                throw ConfigError(
                    .badValue,
                    "jail '\(jail.name)': \(key) must be a whole number from \(range.lowerBound) to \(range.upperBound), not '\(text)'",
                    at: jail.locations[key], hint: "write e.g. \(key) = \(example)")
            }
            return n
        }
        let d = PrefixPolicy.defaults
        return PrefixPolicy(
            prefix4: try number("prefix4", 0...32, d.prefix4, "24"),
            prefix6: try number("prefix6", 0...128, d.prefix6, "64"),
            bans: try number("prefixbans", 0...1_000_000, d.bans, "3 (0 = never ban a whole prefix)"))
    }
}
