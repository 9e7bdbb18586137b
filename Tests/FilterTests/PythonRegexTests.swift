import Testing

@testable import Filter

/// One test per difference between Python's `re` and PCRE2 that the translation handles.
@Suite struct PythonRegexTests {
    func translated(_ s: String) -> String { PythonRegex.translate(s).pattern }

    func matches(_ python: String, _ subject: String) throws -> Bool {
        let t = PythonRegex.translate(python)
        var options: Pattern.Options = [.utf]
        if !t.ascii { options.insert(.ucp) }
        return try Pattern("(*LF)" + t.pattern, options: options).makeMatcher().matches(subject)
    }

    @Test func openLowerBoundQuantifier() throws {
        #expect(translated("x{,2}y") == "x{0,2}y")
        #expect(translated("x{,}y") == "x{0,}y")
        #expect(try matches("^x{,2}y$", "xxy"))
        #expect(try !matches("^x{,2}y$", "xxxy"))
        #expect(try matches("^x{,2}y$", "y"))
        // Not a quantifier: left alone.
        #expect(translated("x{a,2}") == "x{a,2}")
        #expect(translated("[{,2}]") == "[{,2}]")
    }

    @Test func endOfStringZ() throws {
        #expect(translated(#"abc\Z"#) == #"abc\z"#)
        // Python's \Z never matches before a final newline; PCRE2's \Z would.
        #expect(try !matches(#"abc\Z"#, "abc\n"))
        #expect(try matches(#"abc\Z"#, "abc"))
        #expect(try matches(#"abc$"#, "abc\n"))
    }

    @Test func namedGroupsAndBackReferenceByName() throws {
        #expect(translated("(?P<a>x)(?P=a)") == "(?P<a>x)(?P=a)")
        #expect(try matches("^(?P<a>x+)-(?P=a)$", "xx-xx"))
        #expect(try !matches("^(?P<a>x+)-(?P=a)$", "xx-x"))
    }

    @Test func conditionalOnNamedGroup() throws {
        let rx = "^(?P<q>\")?v(?(q)\")$"
        #expect(try matches(rx, "\"v\""))
        #expect(try matches(rx, "v"))
        #expect(try !matches(rx, "\"v"))
    }

    @Test func globalFlagsInTheMiddleApplyToTheWholePattern() throws {
        #expect(translated("abc(?i)def") == "(?i)abcdef")
        #expect(try matches("abc(?i)def", "ABCDEF"))
    }

    @Test func unicodeFlagIsDroppedAndCaseFlagKept() throws {
        #expect(translated("(?iu)abc") == "(?i)abc")
        #expect(try matches("^(?iu)ÉTÉ$", "été"))
        #expect(translated("(?u:x)") == "(?:x)")
        #expect(translated("(?-i:x)") == "(?-i:x)")
    }

    @Test func asciiFlagTurnsUnicodeClassesOff() throws {
        #expect(PythonRegex.translate("(?a)\\w+").ascii)
        #expect(try matches(#"^\w+$"#, "héllo"))
        #expect(try !matches(#"(?a)^\w+$"#, "héllo"))
    }

    @Test func unicodeClassesAsInPython3() throws {
        #expect(try matches(#"^\w+$"#, "naïve"))
        #expect(try matches(#"^\d$"#, "٣"))  // ARABIC-INDIC DIGIT THREE
        #expect(try matches(#"^a\sb$"#, "a\u{00A0}b"))  // NO-BREAK SPACE
    }

    @Test func unicodeEscapes() throws {
        #expect(translated(#"\u00e9"#) == #"\x{00e9}"#)
        #expect(translated(#"\U0001F600"#) == #"\x{0001F600}"#)
        #expect(try matches(#"^caf\u00e9$"#, "café"))
    }

    @Test func octalAndNumericBackReferences() throws {
        #expect(translated(#"\0"#) == #"\o{0}"#)
        #expect(translated(#"\101"#) == #"\o{101}"#)
        #expect(try matches(#"^\101$"#, "A"))
        #expect(translated(#"(a)\1"#) == #"(a)\g{1}"#)
        #expect(try matches(#"^(a)\1$"#, "aa"))
    }

    @Test func openBracketInsideClassIsLiteral() throws {
        #expect(translated("[[:x]") == #"[\[:x]"#)
        #expect(try matches("^[[:x]+$", "[:x"))
        #expect(try !matches("^[[:x]+$", "a"))
        #expect(translated("[]a]") == #"[\]a]"#)
        #expect(translated("[^]a]") == #"[^\]a]"#)
    }

    @Test func commentsAndEscapesAreCopied() {
        #expect(translated("a(?#x{,2})b") == "a(?#x{,2})b")
        #expect(translated(#"\{,2\}"#) == #"\{,2\}"#)
        #expect(translated(#"\d\.\["#) == #"\d\.\["#)
    }
}
