import Testing

@testable import Filter

@Suite struct RegexTests {
    @Test func namedGroupsAndRanges() throws {
        let p = try Pattern(#"from (?<ip>\d+\.\d+\.\d+\.\d+) port (?<port>\d+)"#)
        #expect(p.captureCount == 2)
        #expect(p.isJIT)
        let m = p.makeMatcher()
        let line = "Failed password for root from 192.0.2.7 port 2222 ssh2"
        #expect(m.matches(line))
        let r = try #require(m.range(named: "ip"))
        #expect(Array(line.utf8)[r].elementsEqual("192.0.2.7".utf8))
        #expect(!m.matches("nothing here"))
    }

    @Test func compileErrorHasOffset() {
        #expect(throws: PatternError.self) { try Pattern("a(b") }
    }

    @Test func invalidUTF8DoesNotCrash() throws {
        let p = try Pattern("x(.)y")
        let m = p.makeMatcher()
        let bytes: [UInt8] = [0x61, 0xFF, 0x78, 0xC3, 0xA9, 0x79, 0x00, 0x0A]
        let found = bytes.withUnsafeBufferPointer { m.matches($0) }
        #expect(found)
        #expect(m.range(1) == 3..<5)
    }
}
