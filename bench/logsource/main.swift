// LogSource benchmark: file tailing throughput, append→delivery latency, allocations per line, journal
// throughput. Built and run by bench/logsource.sh (compiled together with Sources/LogSource, -O).
import Synchronization

#if canImport(Glibc)
import Glibc
#endif

typealias CountFn = @convention(c) () -> UInt
let allocCount: CountFn? = dlsym(nil, "pcl_alloc_count")  // nil: RTLD_DEFAULT
    .map { unsafeBitCast($0, to: CountFn.self) }
func allocations() -> UInt { allocCount?() ?? 0 }

/// `x` with `digits` decimals (no Foundation).
func fmt(_ x: Double, _ digits: Int = 2) -> String {
    var scale = 1.0
    for _ in 0..<digits { scale *= 10 }
    let v = (x * scale).rounded() / scale
    let whole = Int(v)
    if digits == 0 { return "\(whole)" }
    var frac = String(Int(((v - Double(whole)) * scale).rounded()).magnitude)
    while frac.count < digits { frac = "0" + frac }
    return "\(whole).\(frac)"
}

func now() -> Double {
    var ts = timespec()
    clock_gettime(CLOCK_MONOTONIC, &ts)
    return Double(ts.tv_sec) + Double(ts.tv_nsec) / 1e9
}

setvbuf(stdout, nil, _IOLBF, 0)
let args = CommandLine.arguments
let dir = args.count > 1 ? args[1] : "/tmp/pcl-bench-logsource"
let lineCount = args.count > 2 ? Int(args[2])! : 2_000_000
mkdir(dir, 0o755)

// MARK: throughput
let path = dir + "/auth.log"
unlink(path)
do {
    let fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0o644)
    var chunk: [UInt8] = []
    chunk.reserveCapacity(1 << 20)
    for i in 0..<lineCount {
        let line =
            "Nov 30 00:00:\(i % 60) web1 sshd[\(1000 + i % 5000)]: Failed password for invalid user u\(i % 977) from 198.51.\(i % 250).\(i % 199) port \(20000 + i % 40000) ssh2\n"
        chunk.append(contentsOf: line.utf8)
        if chunk.count > (1 << 20) - 256 {
            _ = chunk.withUnsafeBytes { write(fd, $0.baseAddress!, $0.count) }
            chunk.removeAll(keepingCapacity: true)
        }
    }
    _ = chunk.withUnsafeBytes { write(fd, $0.baseAddress!, $0.count) }
    close(fd)
}
var st = stat()
stat(path, &st)
let bytes = Double(st.st_size)

let seen = Atomic<Int>(0)
let checksum = Atomic<Int>(0)
let tailer = FileTailer(options: .init(backend: .inotify))
tailer.subscribe([path], startAt: .beginning) { batch in
    var sum = 0
    for line in batch { sum &+= line.count &+ Int(line[line.count / 2]) }
    checksum.add(sum, ordering: .relaxed)
    seen.add(batch.count, ordering: .relaxed)
}
let a0 = allocations()
let t0 = now()
try tailer.start()
while seen.load(ordering: .relaxed) < lineCount { usleep(200) }
let t1 = now()
let a1 = allocations()
tailer.stop()
let secs = t1 - t0
let mlps = Double(lineCount) / secs / 1e6
let mbps = bytes / secs / 1e6
print(
    "file throughput: \(lineCount) lines, \(fmt(bytes / 1e6, 1)) MB in \(fmt(secs, 3)) s = \(fmt(mlps)) M lines/s, \(fmt(mbps, 0)) MB/s"
)
if allocCount != nil {
    let perLine = Double(a1 - a0) / Double(lineCount)
    print("file allocations: \(a1 - a0) during the read = \(fmt(perLine, 5)) per line")
} else {
    print("file allocations: not measured (run with LD_PRELOAD=alloccount.so)")
}

// MARK: latency
for backend in [FileTailer.Backend.inotify, .polling] {
    let lpath = dir + "/latency-\(backend).log"
    unlink(lpath)
    close(open(lpath, O_WRONLY | O_CREAT, 0o644))
    let delivered = Atomic<Int>(0)
    let deliveredAt = Atomic<UInt64>(0)
    let t = FileTailer(options: .init(backend: backend, pollInterval: .milliseconds(250)))
    t.subscribe([lpath]) { batch in
        var ts = timespec()
        clock_gettime(CLOCK_MONOTONIC, &ts)
        deliveredAt.store(UInt64(ts.tv_sec) * 1_000_000_000 + UInt64(ts.tv_nsec), ordering: .relaxed)
        delivered.add(batch.count, ordering: .relaxed)
    }
    try t.start()
    usleep(50_000)
    let writer = open(lpath, O_WRONLY | O_APPEND)
    let samples = backend == .inotify ? 2000 : 40
    var lat: [Double] = []
    let line = Array("Nov 30 00:00:00 web1 sshd[1]: Failed password for root from 198.51.100.7 port 22 ssh2\n".utf8)
    for i in 0..<samples {
        var ts = timespec()
        clock_gettime(CLOCK_MONOTONIC, &ts)
        let sent = UInt64(ts.tv_sec) * 1_000_000_000 + UInt64(ts.tv_nsec)
        _ = line.withUnsafeBytes { write(writer, $0.baseAddress!, $0.count) }
        while delivered.load(ordering: .relaxed) < i + 1 { usleep(20) }
        lat.append(Double(deliveredAt.load(ordering: .relaxed) - sent) / 1e6)
        usleep(backend == .inotify ? 200 : UInt32.random(in: 0..<50_000))
    }
    close(writer)
    t.stop()
    lat.sort()
    let p50 = lat[lat.count / 2]
    let p99 = lat[lat.count * 99 / 100]
    let worst = lat[lat.count - 1]
    print(
        "append→delivery latency (\(backend), \(samples) samples): p50 \(fmt(p50, 3)) ms, p99 \(fmt(p99, 3)) ms, max \(fmt(worst, 3)) ms"
    )
}

// MARK: journal
let tool = "/lib/systemd/systemd-journal-remote"
if access(tool, X_OK) == 0 {
    let entries = args.count > 3 ? Int(args[3])! : 50_000
    let jpath = dir + "/bench.journal"
    let export = dir + "/bench.export"
    unlink(jpath)
    do {
        let fd = open(export, O_WRONLY | O_CREAT | O_TRUNC, 0o644)
        var out: [UInt8] = []
        for i in 0..<entries {
            let e =
                "__REALTIME_TIMESTAMP=\(1_700_000_000_000_000 + i)\n__MONOTONIC_TIMESTAMP=\(1000 + i)\n_BOOT_ID=0123456789abcdef0123456789abcdef\n_HOSTNAME=web1\nSYSLOG_IDENTIFIER=sshd\n_PID=\(1000 + i % 5000)\n_COMM=sshd\n_SYSTEMD_UNIT=ssh.service\nMESSAGE=Failed password for invalid user u\(i % 977) from 198.51.\(i % 250).\(i % 199) port 22 ssh2\n\n"
            out.append(contentsOf: e.utf8)
        }
        _ = out.withUnsafeBytes { write(fd, $0.baseAddress!, $0.count) }
        close(fd)
    }
    var pid = pid_t()
    let argv: [UnsafeMutablePointer<CChar>?] = [strdup(tool), strdup("--output=\(jpath)"), strdup(export), nil]
    posix_spawn(&pid, tool, nil, nil, argv, environ)
    var status: Int32 = 0
    waitpid(pid, &status, 0)
    let count = Atomic<Int>(0)
    let source = JournalSource(
        location: .files([jpath]),
        match: try JournalMatch(parsing: "_SYSTEMD_UNIT=ssh.service"),
        start: .head,
        handler: { entry in count.add(entry.line.count > 0 ? 1 : 0, ordering: .relaxed) }
    )
    let ja0 = allocations()
    let j0 = now()
    try source.start()
    // journal-remote may start a new output file when one fills up: stop waiting when no more arrive.
    var last = -1
    var idleSince = now()
    while count.load(ordering: .relaxed) < entries {
        let c = count.load(ordering: .relaxed)
        if c != last {
            last = c
            idleSince = now()
        } else if now() - idleSince > 2 {
            break
        }
        usleep(200)
    }
    let j1 = count.load(ordering: .relaxed) < entries ? idleSince : now()
    let read = count.load(ordering: .relaxed)
    let ja1 = allocations()
    source.stop()
    let jsecs = j1 - j0
    let kps = Double(read) / jsecs / 1e3
    print("journal throughput: \(read) entries in \(fmt(jsecs, 3)) s = \(fmt(kps, 0)) k entries/s")
    if allocCount != nil {
        let perEntry = Double(ja1 - ja0) / Double(max(1, read))
        print("journal allocations: \(fmt(perEntry, 3)) per entry")
    }
    unlink(export)
    unlink(jpath)
}
unlink(path)
