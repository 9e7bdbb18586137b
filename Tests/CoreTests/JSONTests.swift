import Core
import Testing

@Suite struct JSONTests {
    @Test func parsesEveryKindKeepingOrderAndExactIntegers() throws {
        let v = try JSON.parse(#" {"b": 1, "a": [true, false, null, -2.5e3, "x"], "big": 9007199254740993} "#)
        #expect(v.members.map(\.key) == ["b", "a", "big"])
        #expect(v["b"] == .int(1))
        #expect(v["a"] == .array([.bool(true), .bool(false), .null, .double(-2500), .string("x")]))
        #expect(v["big"]?.intValue == 9_007_199_254_740_993)
        #expect(v["missing"] == nil)
        #expect(JSON.int(3)["b"] == nil)
    }

    @Test func decodesEscapesAndSurrogatePairs() throws {
        let v = try JSON.parse(#""q\"b\\s\/n\nt\tu\u00e9\ud83d\ude00""#)
        #expect(v.stringValue == "q\"b\\s/n\nt\tu\u{e9}\u{1F600}")
    }

    @Test func rejectsMalformedTextWithAnOffset() {
        for bad in ["", "{", "[1,]", "{\"a\" 1}", "tru", "\"open", "\"\u{1}\"", "1 2", "-", "\"\\x\"", "{1: 2}"] {
            #expect(throws: JSON.ParseError.self, "\(bad)") { try JSON.parse(bad) }
        }
        do {
            _ = try JSON.parse("[1, x]")
            Issue.record("parsed invalid text")
        } catch {
            #expect(error.offset == 4)
            #expect(error.message.contains("byte 4"))
        }
    }

    @Test func limitsNesting() throws {
        let deep = String(repeating: "[", count: 70) + String(repeating: "]", count: 70)
        #expect(throws: JSON.ParseError.self) { try JSON.parse(deep) }
        _ = try JSON.parse(deep, maxDepth: 80)
    }

    @Test func encodesCompactlyAndEscapesControls() {
        let v = JSON.object([
            ("s", .string("a\"b\\c\n\r\t\u{1}\u{7F}é")), ("n", .array([.int(-1), .double(0.5), .null])),
            ("inf", .double(.infinity)), ("t", .bool(true)),
        ])
        #expect(v.encoded() == #"{"s":"a\"b\\c\n\r\t\u0001\u007fé","n":[-1,0.5,null],"inf":null,"t":true}"#)
        #expect(JSON.quoted("x\"y") == #""x\"y""#)
    }

    @Test func roundTrips() throws {
        let v = JSON.array([.string("line\nwith \"quotes\" and \u{2028}"), .object([("k", .int(42))]), .object([])])
        #expect(try JSON.parse(v.encoded()) == v)
    }

    @Test("quoting: the same text as a scalar-by-scalar reference on 5,000 random strings, and it parses back")
    func quotingMatchesReference() throws {
        func reference(_ s: String) -> String {
            var out = "\""
            for scalar in s.unicodeScalars {
                switch scalar {
                case "\"": out += "\\\""
                case "\\": out += "\\\\"
                case "\n": out += "\\n"
                case "\r": out += "\\r"
                case "\t": out += "\\t"
                default:
                    if scalar.value < 0x20 || scalar.value == 0x7F {
                        let hex = String(scalar.value, radix: 16)
                        out += "\\u" + String(repeating: "0", count: 4 - hex.count) + hex
                    } else {
                        out.unicodeScalars.append(scalar)
                    }
                }
            }
            return out + "\""
        }
        let alphabet: [Unicode.Scalar] =
            (0...0x7F).compactMap { Unicode.Scalar(UInt32($0)) } + ["é", "\u{2028}", "\u{FFFD}", "😀", "ß", "中"]
        var generator = SystemRandomNumberGenerator()
        for _ in 0..<5_000 {
            var s = ""
            for _ in 0..<Int.random(in: 0...24, using: &generator) {
                s.unicodeScalars.append(alphabet.randomElement(using: &generator)!)
            }
            let quoted = JSON.quoted(s)
            #expect(quoted == reference(s), "\(s.debugDescription)")
            #expect(try JSON.parse(quoted) == .string(s))
        }
    }
}
