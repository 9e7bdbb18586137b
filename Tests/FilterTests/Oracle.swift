import Configuration
import Foundation
import Testing

@testable import Filter

/// Runs fail2ban 1.0.2 (installed, used only as a test oracle) over lines and returns its verdict per line.
/// The Python below is ours: it drives fail2ban's public Filter API the way fail2ban-regex does.
enum Oracle {
    static let python = "/usr/bin/python3"
    static var available: Bool {
        FileManager.default.fileExists(atPath: "/usr/lib/python3/dist-packages/fail2ban/server/filter.py")
    }

    static let script = #"""
        # Portcullis test oracle: runs fail2ban's Filter over lines and prints one JSON object per line.
        import sys, json
        from fail2ban.server.filter import Filter
        from fail2ban.client.filterreader import FilterReader

        DEFINITION = {"failregex": [], "ignoreregex": [], "prefregex": None, "maxlines": None, "datepattern": None}

        def load(spec):
            flt = Filter(None)
            flt.returnRawHost = True
            flt.checkAllRegex = spec.get("checkAll", False)
            flt.checkFindTime = False
            flt.active = True
            if "filter" in spec:
                name = spec["filter"]; opts = spec.get("opts", {})
                r = FilterReader(name, "jail", opts, basedir=spec.get("basedir", "/etc/fail2ban"))
                r.read(); r.getOptions({})
                for opt in r.convert():
                    vals = opt[3] if opt[0] == "multi-set" else [opt[3]]
                    for v in vals:
                        k = opt[2]
                        if k == "prefregex": flt.prefRegex = v; DEFINITION["prefregex"] = v
                        elif k == "addfailregex": flt.addFailRegex(v); DEFINITION["failregex"].append(v)
                        elif k == "addignoreregex": flt.addIgnoreRegex(v); DEFINITION["ignoreregex"].append(v)
                        elif k == "maxlines": flt.setMaxLines(v); DEFINITION["maxlines"] = int(v)
                        elif k == "datepattern": flt.setDatePattern(v); DEFINITION["datepattern"] = v
            else:
                if spec.get("maxlines"): flt.setMaxLines(spec["maxlines"])
                if spec.get("datepattern"): flt.setDatePattern(spec["datepattern"])
                if spec.get("prefregex"): flt.prefRegex = spec["prefregex"]
                for r in spec.get("failregex", []): flt.addFailRegex(r)
                for r in spec.get("ignoreregex", []): flt.addIgnoreRegex(r)
            return flt

        def conv(v):
            if isinstance(v, (set, frozenset)): return sorted(str(x) for x in v)
            if isinstance(v, (list, tuple)): return [conv(x) for x in v]
            if v is None or isinstance(v, (int, float, bool, str)): return v
            return str(v)

        def main():
            spec = json.loads(sys.argv[1])
            flt = load(spec)
            if spec.get("dump"):
                print(json.dumps(DEFINITION))
                return
            state = {"ign": []}
            flt.onIgnoreRegex = lambda idx, rx: state["ign"].append(idx)
            for raw in sys.stdin.buffer.read().split(b"\n"):
                line = raw.decode("utf-8", "replace")
                state["ign"] = []
                found = flt.processLine(line)
                fails = []; nofail = False
                for idx, ip, t, fail in found:
                    if fail.get("nofail"): nofail = True
                    d = {k: conv(v) for k, v in fail.items() if v is not None and k not in ("matches", "nofail-matches", "mlfpending")}
                    d["attempts"] = len(fail.get("matches", []))
                    fails.append({"idx": idx, "id": None if ip is None else str(ip), "time": t, "fields": d})
                real = [f for f in fails if not f["fields"].get("nofail")]
                outcome = "ignored" if (nofail or state["ign"]) else ("matched" if real else "missed")
                print(json.dumps({"outcome": outcome, "ignoreHits": state["ign"], "failures": fails}, sort_keys=True))

        main()
        """#

    struct Verdict: Decodable {
        struct Fail: Decodable {
            var idx: Int
            var id: String?
            var time: Double?
            var fields: [String: FieldValue]
        }
        var outcome: String
        var ignoreHits: [Int]
        var failures: [Fail]
    }

    enum FieldValue: Decodable, Equatable {
        case string(String)
        case int(Int)
        case list([String])
        init(from decoder: Decoder) throws {
            let c = try decoder.singleValueContainer()
            if let s = try? c.decode(String.self) {
                self = .string(s)
                return
            }
            if let i = try? c.decode(Int.self) {
                self = .int(i)
                return
            }
            self = .list(try c.decode([String].self))
        }
    }

    /// Runs the oracle with `spec` (JSON object) over `lines`.
    /// The resolved definition of an installed fail2ban filter (`name`, with `opts` such as `mode`).
    static func definition(filter name: String, opts: [String: String] = [:]) throws -> FilterConfiguration {
        let data = try runRaw(spec: ["filter": name, "opts": opts, "dump": true], lines: [])
        struct Def: Decodable {
            var failregex: [String]
            var ignoreregex: [String]
            var prefregex: String?
            var maxlines: Int?
            var datepattern: String?
        }
        let d = try JSONDecoder().decode(Def.self, from: data)
        return FilterConfiguration(
            name: "test", file: "test.conf",
            failregex: d.failregex.map { ConfigValue($0) }, ignoreregex: d.ignoreregex.map { ConfigValue($0) },
            prefregex: d.prefregex.map { ConfigValue($0) }, datepattern: d.datepattern.map { ConfigValue($0) },
            maxlines: d.maxlines)
    }

    static func run(spec: [String: Any], lines: [String]) throws -> [Verdict] {
        let out = try runRaw(spec: spec, lines: lines)
        let decoder = JSONDecoder()
        return try out.split(separator: UInt8(ascii: "\n")).map { try decoder.decode(Verdict.self, from: Data($0)) }
    }

    static func runRaw(spec: [String: Any], lines: [String]) throws -> Data {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("pcl-oracle-\(getpid())")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        let scriptURL = dir.appendingPathComponent("oracle.py")
        try script.write(to: scriptURL, atomically: true, encoding: .utf8)
        let specData = try JSONSerialization.data(withJSONObject: spec)
        let p = Process()
        p.executableURL = URL(fileURLWithPath: python)
        p.arguments = [scriptURL.path, String(decoding: specData, as: UTF8.self)]
        var env = ProcessInfo.processInfo.environment
        env["TZ"] = "UTC"
        p.environment = env
        let input = Pipe()
        let output = Pipe()
        p.standardInput = input
        p.standardOutput = output
        p.standardError = FileHandle.nullDevice
        try p.run()
        let data = Data(lines.joined(separator: "\n").utf8)
        // A thread of its own: the write blocks until Python has read it all (Dispatch's global threads are the
        // cooperative pool's on Linux).
        Thread.detachNewThread {
            input.fileHandleForWriting.write(data)
            try? input.fileHandleForWriting.close()
        }
        let out = output.fileHandleForReading.readDataToEndOfFile()
        p.waitUntilExit()
        return out
    }
}
