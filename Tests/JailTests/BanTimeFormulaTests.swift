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
        #expect(try BanTimeFormula("max(ban.Time, 10) if ban.Count else 5").evaluate(time: 3, count: 1, factor: 0) == 10)
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
