import Core
import Testing

@testable import Jail

@Suite struct BanTimeFormulaTests {
    @Test func defaultFormulaDoubles() throws {
        let f = try BanTimeFormula(BanTimeFormula.defaultSource)
        #expect(f.evaluate(time: 600, count: 0, factor: 1) == 600)
        #expect(f.evaluate(time: 600, count: 1, factor: 1) == 1200)
        #expect(f.evaluate(time: 600, count: 3, factor: 2) == 9600)
        // The exponent is capped at 20.
        #expect(f.evaluate(time: 1, count: 50, factor: 1) == Double(1 << 20))
    }

    @Test func exponentialFormulaFromJailConf() throws {
        let f = try BanTimeFormula("ban.Time * math.exp(float(ban.Count+1)*banFactor)/math.exp(1*banFactor)")
        let v = f.evaluate(time: 600, count: 1, factor: 2.0 / 2.885385)
        #expect(abs(v - 1200) < 1)
    }

    @Test func precedence() throws {
        #expect(try BanTimeFormula("1 + 2 * 3").evaluate(time: 0, count: 0, factor: 0) == 7)
        #expect(try BanTimeFormula("2 ** 3 ** 2").evaluate(time: 0, count: 0, factor: 0) == 512)
        #expect(try BanTimeFormula("-2 ** 2").evaluate(time: 0, count: 0, factor: 0) == -4)
        #expect(try BanTimeFormula("7 // 2 + 7 % 2").evaluate(time: 0, count: 0, factor: 0) == 4)
        #expect(try BanTimeFormula("1 << 3 < 9").evaluate(time: 0, count: 0, factor: 0) == 1)
        #expect(
            try BanTimeFormula("max(ban.Time, 10) if ban.Count else 5").evaluate(time: 3, count: 1, factor: 0) == 10)
    }

    @Test func errorsNamePosition() {
        #expect(throws: BanTimeFormula.ParseError.self) { try BanTimeFormula("ban.Time *") }
        #expect(throws: BanTimeFormula.ParseError.self) { try BanTimeFormula("__import__('os')") }
        #expect(throws: BanTimeFormula.ParseError.self) { try BanTimeFormula("(1 + 2") }
        do {
            _ = try BanTimeFormula("ban.Time + nope")
            Issue.record("should fail")
        } catch {
            #expect(error.offset == 11)
            #expect(error.description.contains("unknown name 'nope'"))
        }
    }
}

@Suite("Ban lengths stay in range")
struct BanLengthBoundsTests {
    @Test("a formula or multiplier that explodes gives at most Bounds.maximumSeconds, never inf or NaN")
    func explodingFormula() throws {
        for source in [
            "ban.Time << 999", "ban.Time * 10 ** 300 * 10 ** 300", "ban.Time ** 400",
            "(ban.Time << 999) - (ban.Time << 999)",
        ] {
            let formula = try BanTimeFormula(source)
            let policy = BanPolicy(banTime: 3600, increment: BanTimeIncrement(factor: 1, formula: formula))
            for previous in [0, 1, 1_000_000_000, Int.max] {
                let d = try #require(policy.duration(previousBans: previous))
                #expect(d.isFinite && d >= 0 && d <= Bounds.maximumSeconds, "\(source) with \(previous): \(d)")
            }
        }
        let multiplied = BanPolicy(banTime: 1e12, increment: BanTimeIncrement(multipliers: [1, 1e12]))
        #expect(multiplied.duration(previousBans: 5) == Bounds.maximumSeconds)
        #expect(
            BanPolicy(banTime: 600, increment: BanTimeIncrement()).duration(previousBans: Int.max)
                .map { $0 <= Bounds.maximumSeconds } == true)
    }
}
