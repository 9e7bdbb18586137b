import Configuration
import Foundation
import Testing

@testable import Filter

/// The prefilter (`RequiredLiterals`, `FilterOptions.prefilter`) changes no verdict: every filter in
/// /etc/fail2ban/filter.d and in the repository's config/filter.d (read at test time), in each mode its sample log
/// names, runs over every line of fail2ban's sample logs (read at test time), in file order and then shuffled with
/// mutated copies, with the prefilter off, on, and on keeping the prefregex count; outcomes, failures and counters
/// must be the same line by line (`.on` may count fewer prefregex matches, as documented).
@Suite(.enabled(if: FileManager.default.fileExists(atPath: PrefilterDifferentialTests.logs))) struct
    PrefilterDifferentialTests
{
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

    /// Every sample line in file order, then all of them with mutated copies, shuffled.
    static func corpus() throws -> [[UInt8]] {
        let logs = try sampleLogs()
        var rng = SplitMix(seed: 0xF11E)
        var all: [[UInt8]] = logs.flatMap(\.lines)
        var extra: [[UInt8]] = []
        for line in all { extra += mutations(line, &rng) }
        var shuffled = all + extra
        for k in stride(from: shuffled.count - 1, to: 0, by: -1) { shuffled.swapAt(k, rng.below(k + 1)) }
        all += shuffled
        return all
    }

    static let specs: [(root: String, spec: String)] = {
        var modesByFilter: [String: Set<[String: String]>] = [:]
        for log in (try? sampleLogs()) ?? [] {
            let name = (log.name as NSString).lastPathComponent
            modesByFilter[name, default: []].formUnion(log.modes)
        }
        var out: [(String, String)] = []
        for root in ["/etc/fail2ban", ownConfig] {
            let names =
                ((try? FileManager.default.contentsOfDirectory(atPath: root + "/filter.d")) ?? [])
                .filter { $0.hasSuffix(".conf") }.map { String($0.dropLast(5)) }.sorted()
            for name in names {
                out.append((root, name))
                var modes = modesByFilter[name] ?? []
                modes.insert(["mode": "aggressive"])
                for mode in modes.sorted(by: { "\($0)" < "\($1)" }) where !mode.isEmpty {
                    let opts = mode.sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value)" }.joined(separator: ",")
                    out.append((root, name + "[" + opts + "]"))
                }
            }
        }
        return out
    }()

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
        let keep = try make(.keepPrefregexCount)
        var problems: [String] = []
        for (n, line) in lines.enumerated() {
            let want = line.withUnsafeBufferPointer { off.process($0) }
            let wantFailures = off.failures
            for (label, p) in [("on", on), ("keepPrefregexCount", keep)] {
                let got = line.withUnsafeBufferPointer { p.process($0) }
                let gotFailures = p.failures
                if got != want || gotFailures != wantFailures {
                    problems.append(
                        "\(label), line \(n + 1): \(got) \(gotFailures.map { $0.host ?? "-" }) instead of \(want) "
                            + "\(wantFailures.map { $0.host ?? "-" }): \(String(decoding: line, as: UTF8.self))")
                }
            }
            if problems.count > 10 { break }
        }
        var onStats = on.stats
        if onStats.prefregexMatched > off.stats.prefregexMatched {
            problems.append("on: more prefregex matches (\(onStats.prefregexMatched)) than off")
        }
        onStats.prefregexMatched = off.stats.prefregexMatched
        if onStats != off.stats { problems.append("on: counters \(onStats) instead of \(off.stats)") }
        if keep.stats != off.stats { problems.append("keepPrefregexCount: counters \(keep.stats) instead of \(off.stats)") }
        return problems
    }

    @Test func everyFilterGivesTheSameVerdictsWithAndWithoutThePrefilter() throws {
        let lines = try Self.corpus()
        #expect(lines.count > 5000)
        var compared = 0
        var withLiterals = 0
        for (root, spec) in Self.specs {
            guard let definition = try? ConfigTree(root: root).loadFilter(spec), !definition.failregex.isEmpty,
                let filter = try? CompiledFilter(definition)
            else { continue }
            if filter.prefregexLiterals != nil || filter.failregexLiterals != nil { withLiterals += 1 }
            compared += 1
            for checkAll in [false, true] {
                let problems = try Self.compare(definition, lines: lines, checkAll: checkAll)
                #expect(
                    problems.isEmpty,
                    "\(root) \(spec) checkAll=\(checkAll):\n\(problems.prefix(10).joined(separator: "\n"))")
            }
        }
        // Every stock filter and ours were compared, and most of them do have a prefilter.
        #expect(compared > 100)
        #expect(withLiterals * 2 > compared, "\(withLiterals) of \(compared) filters have literals")
    }
}
