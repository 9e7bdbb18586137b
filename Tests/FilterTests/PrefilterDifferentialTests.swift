import Configuration
import Foundation
import PortcullisTestKit
import Testing

@testable import Filter

/// The prefilter (`RequiredLiterals`, `FilterOptions.prefilter`) changes no verdict: every filter in
/// /etc/fail2ban/filter.d and in the repository's config/filter.d (read at test time), in each mode its sample log
/// names, runs over every line of fail2ban's sample logs (read at test time), in file order and then shuffled with
/// mutated copies, with the prefilter off, on, and on keeping the prefregex count; outcomes, failures and counters
/// must be the same line by line (`.on` may count fewer prefregex matches, as documented).
@Suite struct PrefilterDifferentialTests {
    static let logs = "/usr/lib/python3/dist-packages/fail2ban/tests/files/logs/"
    static let ownConfig = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
        .deletingLastPathComponent().deletingLastPathComponent().appendingPathComponent("config").path

    /// Every sample log (subdirectories too): its lines without comments, and the filter options it names.
    static func sampleLogs() throws -> [(name: String, lines: [[UInt8]], modes: [[String: String]])] {
        var out: [(String, [[UInt8]], [[String: String]])] = []
        let files = try FileManager.default.subpathsOfDirectory(atPath: logs).sorted()
        for file in files {
            var isDir: ObjCBool = false
            guard FileManager.default.fileExists(atPath: logs + file, isDirectory: &isDir), !isDir.boolValue,
                let data = FileManager.default.contents(atPath: logs + file)
            else { continue }
            // Invalid UTF-8 stays as it is (the processor replaces it as fail2ban does).
            let raw = data.split(separator: 0x0A, omittingEmptySubsequences: true).map { Array($0) }
            var lines: [[UInt8]] = []
            var modes: [[String: String]] = []
            for bytes in raw {
                let text = String(decoding: bytes, as: UTF8.self)
                if text.hasPrefix("# filterOptions:") {
                    let json = Data(text.dropFirst("# filterOptions:".count).utf8)
                    let value = try? JSONSerialization.jsonObject(with: json)
                    let list = (value as? [[String: Any]]) ?? ((value as? [String: Any]).map { [$0] } ?? [])
                    modes += list.map { $0.mapValues { "\($0)" } }
                } else if !text.hasPrefix("#") {
                    lines.append(bytes)
                }
            }
            out.append((file, lines, modes))
        }
        return out
    }

    /// Variants of a line that keep most of it: a byte changed, a piece cut out, the line doubled, invalid UTF-8
    /// put in, the daemon's name swapped for another's.
    static func mutations(_ bytes: [UInt8], _ rng: inout SplitMix) -> [[UInt8]] {
        guard !bytes.isEmpty else { return [] }
        var out: [[UInt8]] = []
        var changed = bytes
        changed[rng.below(changed.count)] = [0x20, 0x5B, 0x3A, 0x61, 0x0D][rng.below(5)]
        out.append(changed)
        let a = rng.below(bytes.count)
        let b = min(bytes.count, a + 1 + rng.below(12))
        out.append(Array(bytes[..<a] + bytes[b...]))
        out.append(bytes + [0x20] + bytes)
        var invalid = bytes
        invalid.insert(contentsOf: [0xFF, 0xC3], at: rng.below(bytes.count))
        out.append(invalid)
        let line = String(decoding: bytes, as: UTF8.self)
        let names = ["sshd", "postfix/smtpd", "dovecot", "courier", "proftpd", "named", "su", "pam_unix"]
        for n in names where line.contains(n) {
            out.append(Array(line.replacingOccurrences(of: n, with: names[rng.below(names.count)]).utf8))
            break
        }
        return out
    }

    /// Every sample line in file order, then all of them with one mutated copy each, shuffled.
    static let lines: [[UInt8]] = (try? corpus()) ?? []

    static func corpus() throws -> [[UInt8]] {
        let logs = try sampleLogs()
        var rng = SplitMix(seed: 0xF11E)
        var all: [[UInt8]] = logs.flatMap(\.lines)
        var extra: [[UInt8]] = []
        for line in all {
            let variants = mutations(line, &rng)
            if !variants.isEmpty { extra.append(variants[rng.below(variants.count)]) }
        }
        var shuffled = all + extra
        for k in stride(from: shuffled.count - 1, to: 0, by: -1) { shuffled.swapAt(k, rng.below(k + 1)) }
        all += shuffled
        return all
    }

    static let specs: [Spec] = {
        var modesByFilter: [String: Set<[String: String]>] = [:]
        for log in (try? sampleLogs()) ?? [] {
            let name = (log.name as NSString).lastPathComponent
            modesByFilter[name, default: []].formUnion(log.modes)
        }
        var out: [Spec] = []
        for root in ["/etc/fail2ban", ownConfig] {
            let names =
                ((try? FileManager.default.contentsOfDirectory(atPath: root + "/filter.d")) ?? [])
                .filter { $0.hasSuffix(".conf") }.map { String($0.dropLast(5)) }.sorted()
            for name in names {
                out.append(Spec(root: root, spec: name))
                var modes = modesByFilter[name] ?? []
                modes.insert(["mode": "aggressive"])
                for mode in modes.sorted(by: { "\($0)" < "\($1)" }) where !mode.isEmpty {
                    let opts = mode.sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value)" }.joined(separator: ",")
                    out.append(Spec(root: root, spec: name + "[" + opts + "]"))
                }
            }
        }
        return out
    }()

    struct Spec: Sendable, CustomStringConvertible {
        var root: String
        var spec: String
        var description: String { (root == "/etc/fail2ban" ? "stock " : "own ") + spec }
    }

    /// Runs `lines` through the filter with the prefilter off, on, and keeping the prefregex count; returns the
    /// the differences.
    static func compare(_ definition: FilterConfiguration, lines: [[UInt8]], checkAll: Bool) throws -> [String] {
        func make(_ mode: Prefilter) throws -> LineProcessor {
            var options = FilterOptions(now: { 1_764_806_400 }, dnsMode: .raw, checkAllRegex: checkAll)
            options.prefilter = mode
            return try CompiledFilter(definition, options: options).makeProcessor()
        }
        let off = try make(.off)
        let on = try make(.on)
        // Without a prefregex both modes take the same path.
        let keep = definition.prefregex == nil ? nil : try make(.keepPrefregexCount)
        var problems: [String] = []
        for (n, line) in lines.enumerated() {
            let want = line.withUnsafeBufferPointer { off.process($0) }
            let wantFailures = off.failures
            for (label, p) in [("on", on), ("keepPrefregexCount", keep)] {
                guard let p else { continue }
                let got = line.withUnsafeBufferPointer { p.process($0) }
                let gotFailures = p.failures
                if got != want || gotFailures != wantFailures {
                    problems.append(
                        "\(label), line \(n + 1): \(got) \(gotFailures.map { $0.host ?? "-" }) instead of \(want) "
                            + "\(wantFailures.map { $0.host ?? "-" }): \(String(decoding: line, as: UTF8.self))")
                }
            }
            if problems.count >= 6 { break }
        }
        var onStats = on.stats
        if onStats.prefregexMatched > off.stats.prefregexMatched {
            problems.append("on: more prefregex matches (\(onStats.prefregexMatched)) than off")
        }
        onStats.prefregexMatched = off.stats.prefregexMatched
        func counters(_ s: FilterStats) -> String {
            "lines \(s.lines) matched \(s.matched) ignored \(s.ignored) missed \(s.missed) match limit \(s.matchLimit) "
                + "prefregex \(s.prefregexMatched) failregex \(s.failregexHits) ignoreregex \(s.ignoreregexHits)"
        }
        if onStats != off.stats {
            problems.append("on: counters \(counters(onStats)) instead of \(counters(off.stats))")
        }
        if let keep, keep.stats != off.stats {
            problems.append("keepPrefregexCount: counters \(counters(keep.stats)) instead of \(counters(off.stats))")
        }
        return problems
    }

    @Test func theCorpusAndTheFiltersAreThere() {
        #expect(Self.lines.count > 3000)
        #expect(Self.specs.count > 100)
        var withLiterals = 0
        for s in Self.specs {
            guard let definition = try? ConfigTree(root: s.root).loadFilter(s.spec),
                let filter = try? CompiledFilter(definition)
            else { continue }
            if filter.prefregexLiterals != nil || filter.failregexLiterals != nil { withLiterals += 1 }
        }
        // Most filters do have a prefilter (the rest use `(?i)`, back-references… and run every regex).
        #expect(withLiterals * 4 > Self.specs.count * 3, "\(withLiterals) of \(Self.specs.count) filters have literals")
    }

    @Test(arguments: specs) func sameVerdictsWithAndWithoutThePrefilter(_ s: Spec) throws {
        // Some specs name a mode a filter does not have, or a filter that needs a jail's settings: skipped here,
        // but most load (checked above).
        guard let definition = try? ConfigTree(root: s.root).loadFilter(s.spec), !definition.failregex.isEmpty,
            (try? CompiledFilter(definition)) != nil
        else { return }
        for checkAll in [false, true] {
            let problems = try Self.compare(definition, lines: Self.lines, checkAll: checkAll)
            #expect(problems.isEmpty, "checkAll=\(checkAll):\n\(problems.prefix(10).joined(separator: "\n"))")
        }
    }
}
