/// A small deterministic generator (SplitMix64) for reproducible random tests: the same seed gives the same sequence
/// on every machine and run.
///
/// ```swift
/// var rng = SplitMix(seed: 0x5EED)
/// let pick = rng.below(10)   // 0..<10
/// ```
public struct SplitMix: RandomNumberGenerator, Sendable {
    /// The generator's state; the next value derives from it.
    public var state: UInt64

    /// A generator starting at `seed`.
    public init(seed: UInt64) { state = seed }

    /// The next 64 random bits.
    public mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }

    /// A number in `0..<n` (`n` > 0; modulo, slightly biased, which random tests do not mind).
    public mutating func below(_ n: Int) -> Int { Int(next() % UInt64(n)) }
}
