import Core
import Testing

@Suite("Saturating conversions")
struct BoundsTests {
    @Test(
        "Int(saturating:) never traps and clamps at both ends",
        arguments: [
            (Double.nan, 0), (.infinity, Int.max), (-.infinity, Int.min), (9.3e18, Int.max), (-9.3e18, Int.min),
            (9_223_372_036_854_775_807.0, Int.max), (-9_223_372_036_854_775_808.0, Int.min), (1e300, Int.max),
            (-2.7, -2), (2.7, 2), (0, 0), (9_223_372_036_854_774_784.0, 9_223_372_036_854_774_784),
        ])
    func saturating(_ value: Double, _ expected: Int) {
        #expect(Int(saturating: value) == expected)
        #expect(Int64(saturating: value) == Int64(expected))
    }
}
