// Date detection benchmark: lines per second for typical log lines through `DateDetector.match`.
// Run by bench/dates.sh (release build). Prints one line per case.
import Filter

#if canImport(Glibc)
import Glibc
#endif

func seconds() -> Double {
    var ts = timespec()
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts)  // CPU time: the bench host is shared
    return Double(ts.tv_sec) + Double(ts.tv_nsec) / 1e9
}

/// Builds `count` lines from `make(i)` into one contiguous buffer; returns the buffer and each line's range.
func corpus(_ count: Int, _ make: (Int) -> String) -> ([UInt8], [Range<Int>]) {
    var bytes: [UInt8] = []
    var ranges: [Range<Int>] = []
    for i in 0..<count {
        let start = bytes.count
        bytes += Array(make(i).utf8)
        ranges.append(start..<bytes.count)
    }
    return (bytes, ranges)
}

func two(_ v: Int) -> String { v < 10 ? "0\(v)" : "\(v)" }

let lines = Int(CommandLine.arguments.dropFirst().first ?? "") ?? 1_000_000
/// Optional second argument: run only the cases whose name contains it.
let only = CommandLine.arguments.count > 2 ? CommandLine.arguments[2] : nil
let now = 1_124_013_600.0
let cases: [(String, String?, (Int) -> String)] = [
    (
        "syslog (defaults)", nil,
        { i in
            "Aug 14 \(two(i / 3600 % 12)):\(two(i / 60 % 60)):\(two(i % 60)) srv sshd[\(1000 + i % 5000)]: Failed password for root from 192.0.2.\(i % 250) port 22 ssh2"
        }
    ),
    (
        "ISO 8601 (defaults)", nil,
        { i in
            "2005-08-14T\(two(i / 3600 % 12)):\(two(i / 60 % 60)):\(two(i % 60)).\(i % 1000)+02:00 srv app: login failed for 192.0.2.\(i % 250)"
        }
    ),
    (
        "apache access, date mid-line (defaults)", nil,
        { i in
            "192.0.2.\(i % 250) - - [14/Aug/2005:\(two(i / 3600 % 12)):\(two(i / 60 % 60)):\(two(i % 60)) +0200] \"GET /wp-login.php HTTP/1.1\" 404 162"
        }
    ),
    ("epoch (defaults)", nil, { i in "\(1_124_000_000 + i) 192.0.2.\(i % 250) rejected" }),
    (
        "syslog, datepattern {^LN-BEG}", "{^LN-BEG}",
        { i in
            "Aug 14 \(two(i / 3600 % 12)):\(two(i / 60 % 60)):\(two(i % 60)) srv sshd[\(1000 + i % 5000)]: Failed password for root from 192.0.2.\(i % 250) port 22 ssh2"
        }
    ),
    (
        "custom datepattern %d.%m.%Y %H:%M:%S", "^%d.%m.%Y %H:%M:%S",
        { i in
            "14.08.2005 \(two(i / 3600 % 12)):\(two(i / 60 % 60)):\(two(i % 60)) auth failure from 192.0.2.\(i % 250)"
        }
    ),
    (
        "no date at all (worst case, defaults)", nil,
        { i in
            "kernel: [UFW BLOCK] IN=eth0 OUT= SRC=192.0.2.\(i % 250) DST=198.51.100.1 LEN=40 PROTO=TCP SPT=\(i % 65535)"
        }
    ),
]

setenv("TZ", "CET-01CEST-02,M3.5.0,M10.5.0", 1)
tzset()
for (name, pattern, make) in cases where only.map({ name.contains($0) }) ?? true {
    let n = name.hasPrefix("no date") ? lines / 10 : lines
    let (bytes, ranges) = corpus(n, make)
    let detector = try DateDetector(datePattern: pattern, now: { now })
    var found = 0
    var checksum = 0.0
    var elapsed = Double.infinity
    // Several passes over the same lines; the best one is reported (first pass warms caches and the JIT).
    // PCL_BENCH_PASSES=0 skips matching: comparing malloc counts with and without it shows the per-line cost.
    let passes = Int(String(cString: getenv("PCL_BENCH_PASSES") ?? strdup("5"))) ?? 5
    for _ in 0..<passes {
        found = 0
        let start = seconds()
        bytes.withUnsafeBufferPointer { all in
            for r in ranges {
                if let m = detector.match(UnsafeBufferPointer(rebasing: all[r])) {
                    found += 1
                    checksum += m.time
                }
            }
        }
        elapsed = min(elapsed, seconds() - start)
    }
    if passes == 0 {
        print("\(name): matching skipped")
        continue
    }
    let perLine = elapsed / Double(n) * 1e9
    print(
        "\(name): \(Int(Double(n) / elapsed)) lines/s, \(String(Int(perLine))) ns/line, \(found)/\(n) dated"
            + " (checksum \(Int(checksum) % 1000))")
}
