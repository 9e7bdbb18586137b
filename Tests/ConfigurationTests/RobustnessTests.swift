import Testing

@testable import Configuration

/// Random and hostile input never traps: every outcome is a value or a ConfigError.
@Suite("Robustness")
struct RobustnessTests {
    /// A small deterministic generator (SplitMix64), so a failure can be replayed.
    struct SplitMix: RandomNumberGenerator {
        var state: UInt64
        mutating func next() -> UInt64 {
            state &+= 0x9E37_79B9_7F4A_7C15
            var z = state
            z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
            z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
            return z ^ (z >> 31)
        }
    }

    static let alphabet = Array("[]=:;#% ()s<>/\"',\n\t\r abcDEF0123456789.-+hmdwyo\\é\u{0}")

    static func randomText(_ rng: inout SplitMix, length: Int) -> String {
        String((0..<length).map { _ in alphabet[Int(rng.next() % UInt64(alphabet.count))] })
    }

    @Test("random text through INI parsing, specs, time spans and tag substitution")
    func randomInput() throws {
        var rng = SplitMix(state: 0x5EED)
        var parsed = 0
        var rejected = 0
        for round in 0..<3000 {
            let text = Self.randomText(&rng, length: Int(rng.next() % 80))
            do {
                let ini = try IniFile.parse("[Definition]\n" + text, path: "/fuzz.conf")
                var store = ConfigStore()
                store.merge(ini)
                let interp = Interpolator(store: store)
                for option in store.options(in: "Definition") { _ = try? interp.get("Definition", option) }
                parsed += 1
            } catch {
                #expect(error.location?.file == "/fuzz.conf", "round \(round)")
                rejected += 1
            }
            if (try? Spec.parse(text)) == nil { rejected += 1 }
            if (try? TimeSpan.parse(text)) == nil { rejected += 1 }
            var tags = TagSubstitution { (name: String) throws(ConfigError) -> String? in
                name.count % 3 == 0 ? nil : "<\(name.dropLast())>x"
            }
            _ = try? tags.substitute(text)
            _ = Spec.splitList(text)
            _ = shellSplit(text)
        }
        #expect(parsed > 0)
        #expect(rejected > 0)
    }

    @Test("self-referencing and mutually growing tags end with an error, not a hang")
    func growingTags() {
        var tags = TagSubstitution { (name: String) throws(ConfigError) -> String? in
            switch name {
            case "a": return "<b><b>"
            case "b": return "<c>"
            case "c": return "<a>"
            default: return nil
            }
        }
        #expect { try tags.substitute("x <a> y") } throws: { ($0 as? ConfigError)?.code == .interpolationLoop }
        var growing = TagSubstitution { (name: String) throws(ConfigError) -> String? in
            // Each round builds a new tag name from the pieces: <n> → <<n>> style growth is cut off.
            name.hasPrefix("n") && name.count < 500 ? "<" + name + "n>" : nil
        }
        #expect { try growing.substitute("<n>") } throws: { ($0 as? ConfigError)?.code == .interpolationLoop }
    }
}
