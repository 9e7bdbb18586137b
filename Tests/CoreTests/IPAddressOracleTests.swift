import Core
import Foundation
import PortcullisTestKit
import Testing

/// Address parsing against two oracles run at test time: Python's `ipaddress` and `socket.inet_pton` (glibc's,
/// which fail2ban's `IPAddr` uses). Issue 7: `192.0.2.018` was accepted as 192.0.2.18.
@Suite("IPAddress against Python's ipaddress", .blocking)
struct IPAddressOracleTests {
    /// One oracle verdict: nil (rejected) or family and 128-bit value, IPv4-mapped IPv6 normalised to IPv4.
    struct Verdict: Equatable, CustomStringConvertible {
        var family: Int
        var value: String  // decimal integer text (128 bits do not fit an Int)
        var description: String { "v\(family) \(value)" }
    }

    @Test("a generated corpus of valid and invalid strings: same accept/reject and value as the oracles")
    func corpusAgreesWithPython() throws {
        let corpus = Self.corpus()
        #expect(corpus.count >= 5000)
        let (ipaddress, pton) = try Self.oracle(corpus)
        var accepted = 0
        var disagreements: [String] = []
        for (i, text) in corpus.enumerated() {
            let ours = IPAddress(text).map(Self.verdict)
            let oursBytes = IPAddress(bytes: Array(text.utf8)).map(Self.verdict)
            let oursQuad = IPAddress(dottedQuad: Array(text.utf8)).map(Self.verdict)
            // Python's ipaddress accepts zone ids (`fe80::1%eth0`); inet_pton and fail2ban do not, nor do we.
            let expected = text.contains("%") ? pton[i] : ipaddress[i]
            if text.contains("%") { #expect(ours == nil, "zone id accepted: \(text.debugDescription)") }
            #expect(pton[i] == (text.contains("%") ? nil : ipaddress[i]), "oracles differ on \(text.debugDescription)")
            if ours != expected || oursBytes != expected {
                disagreements.append(
                    "\(text.debugDescription): ours \(String(describing: ours)), "
                        + "bytes \(String(describing: oursBytes)), python \(String(describing: expected))")
            }
            // The allocation-free dotted-quad parser: the same answer for IPv4 text, nil for anything else.
            let quadExpected = expected.flatMap { $0.family == 4 && !text.contains(":") ? $0 : nil }
            if oursQuad != quadExpected {
                disagreements.append("dottedQuad \(text.debugDescription): \(String(describing: oursQuad))")
            }
            if expected != nil { accepted += 1 }
        }
        #expect(disagreements.isEmpty, "\(disagreements.count) disagreements: \(disagreements.prefix(20))")
        // The corpus must really hold both kinds.
        #expect(accepted > 1500)
        #expect(corpus.count - accepted > 1500)
    }

    @Test("named edge cases")
    func edgeCases() {
        for bad in [
            "192.0.2.018", "0192.0.2.4", "1.2.3.00", "00.0.0.0", "::ffff:192.0.2.018", "1.2.3", "192.0.2.4.",
            ".192.0.2.4", "1..2.3", "256.1.1.1", " 192.0.2.4", "192.0.2.4 ", "0x192.0.2.4", "192.0.2.4\0", "::1\0x",
            "1::2::3", ":::", "1:2:3:4:5:6:7:8:9", "1:2:3:4:5:6:7", "12345::", "fe80::1%eth0", "::1.2.3",
            "1:2:3:4:5:6:7:192.0.2.4", "[]", "[", "", "192.0.2.4/24",
        ] {
            #expect(IPAddress(bad) == nil, "\(bad.debugDescription) accepted")
            #expect(IPAddress(bytes: Array(bad.utf8)) == nil, "\(bad.debugDescription) accepted from bytes")
            #expect(IPAddress(dottedQuad: Array(bad.utf8)) == nil, "\(bad.debugDescription) accepted as a quad")
        }
        #expect(IPAddress("0.0.0.0")?.description == "0.0.0.0")
        #expect(IPAddress("192.0.2.0")?.description == "192.0.2.0")
        #expect(IPAddress("::")?.description == "::")
        #expect(IPAddress("1:2:3:4:5:6:7::")?.description == "1:2:3:4:5:6:7:0")
        #expect(IPAddress("::FFFF:192.0.2.1")?.description == "192.0.2.1")
        #expect(IPAddress("2001:0db8:0000::0001")?.description == "2001:db8::1")
        #expect(IPAddress("[2001:db8::1]")?.description == "2001:db8::1")
    }

    static func verdict(_ a: IPAddress) -> Verdict {
        // 128-bit decimal text from the two halves.
        var digits: [UInt8] = []
        var words = a.family == .v4 ? [UInt64(0), a.low] : [a.high, a.low]
        while words.contains(where: { $0 != 0 }) {
            var remainder: UInt64 = 0
            for k in words.indices {
                let (q, r) = UInt64(10).dividingFullWidth((high: remainder, low: words[k]))
                words[k] = q
                remainder = r
            }
            digits.append(UInt8(remainder) + 0x30)
        }
        let text = digits.isEmpty ? "0" : String(decoding: digits.reversed(), as: UTF8.self)
        return Verdict(family: a.family == .v4 ? 4 : 6, value: text)
    }

    /// Runs both oracles over the corpus (hex-encoded, so NUL and newlines survive).
    static func oracle(_ corpus: [String]) throws -> ([Verdict?], [Verdict?]) {
        let script = #"""
            import ipaddress, socket, sys
            def norm(fam, v):
                if fam == 6 and v >> 32 == 0xFFFF:
                    return "4 %d" % (v & 0xFFFFFFFF)
                return "%d %d" % (fam, v)
            def py(s):
                try:
                    a = ipaddress.ip_address(s)
                except ValueError:
                    return "-"
                return norm(a.version, int(a))
            def pton(s):
                for fam, v in ((socket.AF_INET, 4), (socket.AF_INET6, 6)):
                    try:
                        return norm(v, int.from_bytes(socket.inet_pton(fam, s), "big"))
                    except (OSError, ValueError):
                        pass
                return "-"
            for line in sys.stdin:
                s = bytes.fromhex(line.strip()).decode("utf-8", "surrogateescape")
                print(py(s), pton(s), sep="|")
            """#
        let input = corpus.map { text in text.utf8.map { String(format: "%02x", $0) }.joined() + "\n" }.joined()
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent(
            "pcl-ip-\(getpid())-\(UInt32.random(in: 0...UInt32.max))")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        let inURL = dir.appendingPathComponent("in")
        let outURL = dir.appendingPathComponent("out")
        try input.write(to: inURL, atomically: true, encoding: .utf8)
        FileManager.default.createFile(atPath: outURL.path, contents: nil)
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/python3")
        process.arguments = ["-c", script]
        process.standardInput = try FileHandle(forReadingFrom: inURL)
        process.standardOutput = try FileHandle(forWritingTo: outURL)
        try process.run()
        process.waitUntilExit()
        try #require(process.terminationStatus == 0, "python3 (the oracle) failed")
        let lines = try String(contentsOf: outURL, encoding: .utf8).split(separator: "\n")
        try #require(lines.count == corpus.count)
        func parse(_ s: Substring) -> Verdict? {
            if s == "-" { return nil }
            let p = s.split(separator: " ")
            return Verdict(family: Int(p[0])!, value: String(p[1]))
        }
        var a: [Verdict?] = []
        var b: [Verdict?] = []
        for line in lines {
            let parts = line.split(separator: "|")
            a.append(parse(parts[0]))
            b.append(parse(parts[1]))
        }
        return (a, b)
    }

    /// A deterministic corpus: well-formed addresses of every shape, hand-picked edge cases, and random
    /// mutations (insert, delete, replace a character) of both.
    static func corpus() -> [String] {
        var rng = SplitMix64(seed: 0x5EED_7)
        var out: [String] = []
        func octet() -> String {
            switch rng.next() % 6 {
            case 0: return "0"
            case 1: return "255"
            case 2: return String(rng.next() % 10)
            default: return String(rng.next() % 256)
            }
        }
        func v4() -> String { (0..<4).map { _ in octet() }.joined(separator: ".") }
        func hextet() -> String {
            let v = rng.next() % 0x10000
            var s = String(v, radix: 16, uppercase: rng.next() % 4 == 0)
            if rng.next() % 5 == 0 { s = String(repeating: "0", count: max(0, 4 - s.count)) + s }
            return s
        }
        func v6() -> String {
            var groups = (0..<8).map { _ in hextet() }
            var tail: String? = nil
            if rng.next() % 4 == 0 {
                groups.removeLast(2)
                tail = v4()
                if rng.next() % 2 == 0 { groups = ["0", "0", "0", "0", "0", "ffff"] }
            }
            var text: String
            if rng.next() % 2 == 0 {
                // Compress a run of groups into `::`.
                let from = Int(rng.next() % UInt64(groups.count + 1))
                let to = from + Int(rng.next() % UInt64(groups.count - from + 1))
                text = groups[..<from].joined(separator: ":") + "::" + groups[to...].joined(separator: ":")
                if tail != nil, to < groups.count || from == to { text += ":" }
                // With `::` at the end (to == groups.count, from != to) the text already ends in a colon.
            } else {
                text = groups.joined(separator: ":") + (tail != nil ? ":" : "")
            }
            return text + (tail ?? "")
        }
        let fixed = [
            "192.0.2.018", "0.0.0.0", "255.255.255.255", "256.0.0.0", "1.2.3.04", "01.1.1.1", "1.2.3", "192.0.2.4.5",
            "::", ":::", "::1", "1::", "1::2::3", "::ffff:192.0.2.4", "::ffff:1.2.3.04", "::192.0.2.4",
            "1:2:3:4:5:6:7::",
            "::2:3:4:5:6:7:8", "1:2:3:4:5:6:7:8:9", "1:2:3:4:5:6:7", "1:2:3:4:5:6:192.0.2.4", "1:2:3:4:5:6:7:192.0.2.4",
            "12345::1", "fe80::1%eth0", "fe80::1%", "2001:db8::1 ", " 2001:db8::1", "2001:db8::1\n", "192.0.2.4\0",
            "::1\0", "１.2.3.4", "0x7f.0.0.1", "1.2.3.-4", "+192.0.2.4", "192.0.2.4/32", "::ffff:", "1:", ":1",
            "1::1.2.3",
        ]
        out += fixed
        var valid: [String] = []
        for _ in 0..<1500 { valid.append(v4()) }
        for _ in 0..<1500 { valid.append(v6()) }
        out += valid
        let alphabet = Array("0123456789abcdefABCDEFgx.:%/ \u{0}")
        let seeds = valid + fixed
        for _ in 0..<4000 {
            var chars = Array(seeds[Int(rng.next() % UInt64(seeds.count))])
            for _ in 0...(rng.next() % 3) {
                let pos = Int(rng.next() % UInt64(chars.count + 1))
                let c = alphabet[Int(rng.next() % UInt64(alphabet.count))]
                switch rng.next() % 3 {
                case 0: chars.insert(c, at: pos)
                case 1: if !chars.isEmpty { chars.remove(at: min(pos, chars.count - 1)) }
                default: if !chars.isEmpty { chars[min(pos, chars.count - 1)] = c }
                }
            }
            out.append(String(chars))
        }
        return out
    }
}

/// A small deterministic generator (SplitMix64) so the corpus is the same on every run.
struct SplitMix64: RandomNumberGenerator {
    var state: UInt64
    init(seed: UInt64) { state = seed }
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}
