import Configuration
import Testing

@testable import Filter

/// `FirstBytes`: the bytes a start-anchored regex's match can begin with; nil whenever it cannot tell.
@Suite struct FirstBytesTests {
    func chars(_ regex: String) -> String? {
        FirstBytes.of(regex).map { set in String(decoding: (0..<128).filter { set[$0] }.map(UInt8.init), as: UTF8.self)
        }
    }

    @Test func literalsClassesGroupsAndAlternatives() {
        #expect(chars("^Failed (?:password|publickey) for") == "F")
        #expect(chars("^(?P<x>[aA]uth|User) from") == "AUa")
        #expect(chars("^[iI](?:llegal|nvalid) user") == "Ii")
        #expect(chars("^(?:(?P<a>x)?y)") == "xy")
        #expect(chars("^a*b+c") == "ab")
        #expect(chars("^(?=abc)q") == "q")
        #expect(chars("^\\[x") == "[")
        #expect(chars("^a{0,2}b") == "ab")
        #expect(chars("^a{2}b") == "a")
        #expect(chars("^[^a-z]x")?.contains("a") == false)
        #expect(chars("^[^a-z]x")?.contains("A") == true)
        #expect(chars("^x|^y") == "xy")
        // What follows the first consumed character is never read, whatever it is.
        #expect(chars("^F(?(c)a|b)\\1(?P=n)") == "F")
    }

    @Test func unknownOrEmptyMatchesHaveNoSet() {
        #expect(FirstBytes.of("^a?") == nil)  // can match empty
        #expect(FirstBytes.of("^$") == nil)
        #expect(FirstBytes.of("(?i)^abc") == nil)
        #expect(FirstBytes.of("^abc(?i)d") == nil)
        #expect(FirstBytes.of("^(?(1)a|b)") == nil)
        #expect(FirstBytes.of("^\\1") == nil)
        #expect(FirstBytes.of("^(?P=x)") == nil)
        #expect(FirstBytes.of("^[[:alpha:]]") == nil)
        #expect(FirstBytes.of("^\\Qa\\E") == nil)
        #expect(FirstBytes.of("^(a") == nil)
        #expect(FirstBytes.of("^\\x{41}") == nil)
    }

    @Test func classesAndNonASCII() throws {
        // \w, \s, \d admit every non-ASCII byte (Unicode letters, spaces and digits).
        let w = try #require(FirstBytes.of("^\\w"))
        #expect(w[0xC3] && w[0xE2] && w[Int(UInt8(ascii: "_"))] && !w[Int(UInt8(ascii: "-"))])
        // A quantifier after a non-ASCII character applies to the whole character.
        let e = try #require(FirstBytes.of("^\u{E9}?x"))
        #expect(e[0xC3] && e[Int(UInt8(ascii: "x"))])
        #expect(FirstBytes.of("^[^\u{E9}]") == nil)
        let dot = try #require(FirstBytes.of("^.x"))
        #expect(dot.allSatisfy { $0 })
    }

    /// The sshd filter (start-anchored failregexes) gets a table; the sample suites check the verdicts.
    @Test func sshdFailregexesHaveSets() throws {
        let tree = try ConfigTree(root: "/etc/fail2ban")
        let filter = try CompiledFilter(try tree.loadFilter("sshd"))
        let sets = filter.failregex.map { FirstBytes.of($0.translated) }
        #expect(sets.filter { $0 != nil }.count >= sets.count - 2)
        #expect(filter.firstByteCandidates != nil)
    }
}

/// The candidate table changes which failregexes run, never the verdict.
@Suite struct FirstByteCandidateTests {
    @Test func onlyCandidatesRunAndTheFirstMatchingOneWins() throws {
        let f = try CompiledFilter(definition(["^a from <HOST>$", "^b from <HOST>$", "^\\S+ from <HOST>$"]))
        #expect(f.firstByteCandidates != nil)
        let p = try f.makeProcessor()
        #expect(p.process("b from 192.0.2.1") == .matched)
        #expect(p.failures.first?.regexIndex == 1)
        #expect(p.process("z from 192.0.2.2") == .matched)
        #expect(p.failures.first?.regexIndex == 2)
        #expect(p.process(" from 192.0.2.3") == .missed)
    }

    @Test func moreThanSixtyFourFailregexesAllRun() throws {
        let regexes = (0..<70).map { "^r\($0) from <HOST>$" }
        let f = try CompiledFilter(definition(regexes))
        #expect(f.firstByteCandidates == nil)
        let p = try f.makeProcessor()
        #expect(p.process("r69 from 192.0.2.9") == .matched)
        #expect(p.failures.first?.regexIndex == 69)
    }
}
