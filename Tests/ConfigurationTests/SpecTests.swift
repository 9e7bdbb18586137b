import Testing

@testable import Configuration

@Suite("Spec parsing")
struct SpecTests {
    @Test("name only, arguments, quoted values with commas, several groups")
    func forms() throws {
        #expect(try Spec.parse("sshd") == Spec(name: "sshd", arguments: [:], argumentOrder: []))
        let a = try Spec.parse(#"n[a="x, y", b=2]"#)
        #expect(a.name == "n")
        #expect(a.arguments == ["a": "x, y", "b": "2"])
        #expect(a.argumentOrder == ["a", "b"])
        #expect(try Spec.parse("n[a='q ] r',b=  v  ,]").arguments == ["a": "q ] r", "b": "v"])
        let multi = try Spec.parse(#"a[p="x", q=1][name=n2, p="tcp"]"#)
        #expect(multi.arguments == ["p": "tcp", "q": "1", "name": "n2"])
        #expect(try Spec.parse("n[a=b=c, e=]").arguments == ["a": "b=c", "e": ""])
        #expect(try Spec.parse("n[a=1,\n   b=2]").arguments == ["a": "1", "b": "2"])
    }

    @Test(
        "malformed specs are errors",
        arguments: ["n[a=1", "n[a=1]junk", "n[a=1, bad, c=2]", "n[a b=1]", #"n["x"=1]"#, "[a=1]"])
    func malformed(_ text: String) {
        #expect { try Spec.parse(text) } throws: { ($0 as? ConfigError)?.code == .badValue }
    }

    @Test("lists split on white space outside brackets and quotes")
    func lists() {
        #expect(Spec.splitList("a[x=1, y=2]\n b[z=3,\n w=4] c\n\nd") == ["a[x=1, y=2]", "b[z=3,\n w=4]", "c", "d"])
        #expect(Spec.splitList(#"a[x="1 ] 2"] b"#) == [#"a[x="1 ] 2"]"#, "b"])
    }
}
