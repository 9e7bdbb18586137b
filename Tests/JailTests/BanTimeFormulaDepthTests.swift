import Testing

@testable import Jail

/// A `bantime.formula` is parsed and evaluated recursively: a deeply nested or very long one must be refused with
/// a ParseError at load, never overflow the stack at start or at the next ban.
@Suite struct BanTimeFormulaDepthTests {
    @Test("deeply nested parentheses are refused, not a stack overflow", arguments: [100_000, 1_000_000])
    func nestedParentheses(depth: Int) {
        let text = String(repeating: "(", count: depth) + "1" + String(repeating: ")", count: depth)
        #expect(throws: BanTimeFormula.ParseError.self) { try BanTimeFormula(text) }
    }

    @Test("a long chain of unary operators is refused")
    func unaryChain() {
        #expect(throws: BanTimeFormula.ParseError.self) {
            try BanTimeFormula(String(repeating: "-", count: 500_000) + "1")
        }
        #expect(throws: BanTimeFormula.ParseError.self) {
            try BanTimeFormula(String(repeating: "not ", count: 200_000) + "1")
        }
    }

    @Test("a long operator chain (a left-deep tree) is refused before evaluation can overflow")
    func longChain() {
        let text = "ban.Time" + String(repeating: " + 1", count: 500_000)
        #expect(throws: BanTimeFormula.ParseError.self) { try BanTimeFormula(text) }
        let nestedCalls = String(repeating: "min(", count: 100_000) + "1" + String(repeating: ")", count: 100_000)
        #expect(throws: BanTimeFormula.ParseError.self) { try BanTimeFormula(nestedCalls) }
    }

    @Test("formulas people write still parse")
    func realFormulasStillParse() throws {
        let f = try BanTimeFormula(
            "ban.Time * (1<<(ban.Count if ban.Count<20 else 20)) * banFactor + " + String(repeating: "(", count: 40)
                + "0" + String(repeating: ")", count: 40))
        #expect(f.evaluate(time: 600, count: 1, factor: 1) == 1200)
    }
}
