#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// `portcullis-samples`: checks annotated sample logs (`# failJSON:` …) against filters loaded from a config tree.
///
/// ```
/// portcullis-samples [--conf /etc/fail2ban] [--logs DIR] [--test-conf DIR] [--filter NAME]… [--strict] [--quiet]
/// ```
/// Prints each failing check (`file:line [variant]: expected … got …` and the line), then exactly one summary line
/// `samples: N passed, M failed`. Exits non-zero on failures only with `--strict`.
@main
struct SamplesMain {
    static let usage = """
        usage: portcullis-samples [--conf DIR] [--logs DIR] [--test-conf DIR] [--filter NAME]... [--strict] [--quiet]
                                 [--verbose]
          --conf DIR       config tree whose filter.d is tested (default /etc/fail2ban)
          --logs DIR       directory of annotated sample logs named after their filter
                           (default fail2ban's tests/files/logs)
          --test-conf DIR  also test the test-only filters zzz-*.conf of this tree (Debian's copy of fail2ban's
                           tests/config cannot load, its includes point outside the package:
                           scripts/fail2ban-test-conf.sh DIR makes a tree that loads)
          --filter NAME    test only this filter (repeatable)
          --strict         exit 1 when a check failed
          --quiet          print only the summary line
          --verbose        also list every annotation that passed and every one not evaluated
        """

    static let fail2banTests = "/usr/lib/python3/dist-packages/fail2ban/tests"

    static func main() {
        var conf = "/etc/fail2ban"
        var logs: String? = nil
        var testConf: String? = nil
        var only: Set<String> = []
        var strict = false
        var quiet = false
        var verbose = false
        var args = CommandLine.arguments.dropFirst()
        while let a = args.popFirst() {
            func value() -> String {
                guard let v = args.popFirst() else { fail("option \(a) needs a value") }
                return v
            }
            switch a {
            case "--conf": conf = value()
            case "--logs": logs = value()
            case "--test-conf": testConf = value()
            case "--filter": only.insert(value())
            case "--strict": strict = true
            case "--quiet", "-q": quiet = true
            case "--verbose", "-v": verbose = true
            case "-h", "--help":
                print(usage)
                exit(0)
            default: fail("unknown argument '\(a)'\n\(usage)")
            }
        }
        let logsDir = logs ?? fail2banTests + "/files/logs"

        // fail2ban's sample test runs in this zone with "now" = 2005-08-14T10:00:00Z.
        setenv("TZ", "CET-01CEST-02,M3.5.0,M10.5.0", 1)
        tzset()

        var plan: [(name: String, conf: String)] = []
        guard let names = filterNames(in: conf + "/filter.d") else { fail("cannot list \(conf)/filter.d") }
        plan += names.filter { !$0.hasSuffix("common") }.map { ($0, conf) }
        if let testConf, let extra = filterNames(in: testConf + "/filter.d") {
            plan += extra.filter { $0.hasPrefix("zzz-") }.map { ($0, testConf) }
        }
        if !only.isEmpty { plan = plan.filter { only.contains($0.name) } }

        let runner = SampleRunner(logsDir: logsDir, loader: SampleFilterAdapter.load)
        for (name, dir) in plan {
            runner.run(filter: name, confDir: dir)
        }

        if verbose {
            for key in runner.order where runner.outcomes[key] == true { print("\(key): passed") }
            for key in runner.skipped.sorted() { print("\(key): not evaluated") }
        }
        if !quiet {
            for f in runner.failures {
                print("\(f.location) [\(f.variant)]: \(f.message)")
                print("    \(f.line)")
            }
            for e in runner.errors { print("error: \(e)") }
            if !runner.skipped.isEmpty {
                print("note: \(runner.skipped.count) annotation(s) not evaluated (excluded by constraint/condition)")
            }
        }
        let passed = runner.outcomes.values.filter { $0 }.count
        let failed = runner.outcomes.values.filter { !$0 }.count + runner.errors.count
        print("samples: \(passed) passed, \(failed) failed")
        exit(strict && failed > 0 ? 1 : 0)
    }

    static func fail(_ message: String) -> Never {
        let bytes = Array("portcullis-samples: \(message)\n".utf8)
        _ = bytes.withUnsafeBytes { write(2, $0.baseAddress!, $0.count) }
        exit(2)
    }

    /// Names of `*.conf` files in `dir` (without extension, hidden files skipped), sorted.
    static func filterNames(in dir: String) -> [String]? {
        guard let d = opendir(dir) else { return nil }
        defer { closedir(d) }
        var names: [String] = []
        while let e = readdir(d) {
            let name = withUnsafeBytes(of: e.pointee.d_name) { raw in
                String(decoding: raw.prefix { $0 != 0 }, as: UTF8.self)
            }
            if name.hasSuffix(".conf"), !name.hasPrefix(".") { names.append(String(name.dropLast(5))) }
        }
        return names.sorted()
    }
}
