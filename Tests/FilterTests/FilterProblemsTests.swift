import Configuration
import Filter
import Testing

@Suite("CompiledFilter.problems lists every part that does not compile")
struct FilterProblemsTests {
    func value(_ text: String, line: Int) -> ConfigValue {
        ConfigValue(text, location: SourceLocation(file: "f.conf", line: line))
    }

    @Test("a filter that compiles has no problems")
    func clean() {
        let def = FilterConfiguration(
            name: "t", file: "f.conf", failregex: [value("^fail from <HOST>$", line: 2)],
            ignoreregex: [value("^ok$", line: 3)])
        #expect(CompiledFilter.problems(def).isEmpty)
    }

    @Test("each bad failregex and ignoreregex, with its line; good ones are not reported")
    func several() {
        let def = FilterConfiguration(
            name: "t", file: "f.conf",
            failregex: [
                value("^fail from <HOST>$", line: 2), value("^bad ( <HOST>$", line: 3),
                value("^no address here$", line: 4),
                value("^worse [z-a] <HOST>$", line: 5),
            ],
            ignoreregex: [value("^ok$", line: 6), value("^broken (", line: 7)])
        let problems = CompiledFilter.problems(def)
        #expect(problems.compactMap(\.location?.line) == [3, 4, 5, 7], "\(problems)")
        #expect(problems.filter { $0.code == .badRegex }.count == 3)
        #expect(problems.filter { $0.code == .noFailureID }.count == 1)
    }

    @Test("a broken prefregex is reported once, and does not make its failregexes look address-less")
    func prefregex() {
        let def = FilterConfiguration(
            name: "t", file: "f.conf", failregex: [value("^fail$", line: 3)],
            prefregex: value("^(?P<x <HOST> %(__prefix)s", line: 2))
        let problems = CompiledFilter.problems(def)
        #expect(problems.count == 1, "\(problems)")
        #expect(problems.first?.location?.line == 2)
    }
}
