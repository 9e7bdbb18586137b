// Filter throughput: a fail2ban filter over a synthetic but realistic auth.log (¾ of the lines are not failures).
// Usage: portcullis-filter-bench [--filter sshd] [--lines 2000000] [--config /etc/fail2ban] [--file auth.log]
import Configuration
import Filter
import Foundation

var filterSpec = "sshd"
var lineCount = 2_000_000
var root = "/etc/fail2ban"
var file: String? = nil
var args = CommandLine.arguments.dropFirst()
while let a = args.popFirst() {
    switch a {
    case "--filter": filterSpec = args.popFirst() ?? filterSpec
    case "--lines": lineCount = Int(args.popFirst() ?? "") ?? lineCount
    case "--config": root = args.popFirst() ?? root
    case "--file": file = args.popFirst()
    default:
        FileHandle.standardError.write("unknown argument \(a)\n".data(using: .utf8)!)
        exit(2)
    }
}

/// A deterministic generator (xorshift) so that runs are comparable.
struct Rng {
    var s: UInt64 = 0x9E37_79B9_7F4A_7C15
    mutating func next(_ n: Int) -> Int {
        s ^= s << 13
        s ^= s >> 7
        s ^= s << 17
        return Int(s % UInt64(n))
    }
}

func syntheticLog(_ count: Int) -> [UInt8] {
    var rng = Rng()
    var out: [UInt8] = []
    out.reserveCapacity(count * 110)
    let users = ["root", "admin", "test", "oracle", "ubuntu", "postgres", "git", "user1"]
    for i in 0..<count {
        let sec = i / 50
        let stamp = String(
            format: "Nov %2d %02d:%02d:%02d", 1 + (sec / 86400) % 28, (sec / 3600) % 24, (sec / 60) % 60, sec % 60)
        let pid = 1000 + rng.next(30000)
        let ip = "203.0.\(rng.next(256)).\(rng.next(256))"
        let good = "198.51.100.\(rng.next(256))"
        let port = 1024 + rng.next(60000)
        let user = users[rng.next(users.count)]
        let line: String
        switch rng.next(16) {
        // 4/16 failures
        case 0: line = "\(stamp) web1 sshd[\(pid)]: Failed password for \(user) from \(ip) port \(port) ssh2"
        case 1: line = "\(stamp) web1 sshd[\(pid)]: Invalid user \(user) from \(ip) port \(port)"
        case 2:
            line = "\(stamp) web1 sshd[\(pid)]: Failed password for invalid user \(user) from \(ip) port \(port) ssh2"
        case 3:
            line =
                "\(stamp) web1 sshd[\(pid)]: pam_unix(sshd:auth): authentication failure; logname= uid=0 euid=0 tty=ssh ruser= rhost=\(ip)  user=\(user)"
        // 12/16 ordinary traffic
        case 4:
            line = "\(stamp) web1 CRON[\(pid)]: pam_unix(cron:session): session opened for user root(uid=0) by (uid=0)"
        case 5: line = "\(stamp) web1 CRON[\(pid)]: pam_unix(cron:session): session closed for user root"
        case 6:
            line =
                "\(stamp) web1 sshd[\(pid)]: Accepted publickey for deploy from \(good) port \(port) ssh2: ED25519 SHA256:Qf3kT0dNfGm1f0v2Z4lYv8mB7q9p0C1xW2yZ3a4b5c6"
        case 7:
            line =
                "\(stamp) web1 sshd[\(pid)]: pam_unix(sshd:session): session opened for user deploy(uid=1000) by (uid=0)"
        case 8: line = "\(stamp) web1 systemd-logind[612]: New session \(pid) of user deploy."
        case 9:
            line =
                "\(stamp) web1 sudo:   deploy : TTY=pts/0 ; PWD=/home/deploy ; USER=root ; COMMAND=/usr/bin/systemctl restart nginx"
        case 10:
            line = "\(stamp) web1 sshd[\(pid)]: Received disconnect from \(good) port \(port):11: disconnected by user"
        case 11: line = "\(stamp) web1 sshd[\(pid)]: Disconnected from user deploy \(good) port \(port)"
        case 12: line = "\(stamp) web1 sshd[\(pid)]: pam_unix(sshd:session): session closed for user deploy"
        case 13: line = "\(stamp) web1 systemd[1]: Started Session \(pid) of User deploy."
        case 14:
            line =
                "\(stamp) web1 kernel: [12345.678901] [UFW BLOCK] IN=eth0 OUT= MAC=00:00 SRC=\(ip) DST=192.0.2.1 LEN=40 PROTO=TCP SPT=\(port) DPT=23"
        default: line = "\(stamp) web1 systemd-logind[612]: Session \(pid) logged out. Waiting for processes to exit."
        }
        out.append(contentsOf: line.utf8)
        out.append(0x0A)
    }
    return out
}

let data: [UInt8]
if let file {
    data = Array(FileManager.default.contents(atPath: file) ?? Data())
} else {
    data = syntheticLog(lineCount)
}
let config = try ConfigTree(root: root).loadFilter(filterSpec)
let filter = try CompiledFilter(config, options: FilterOptions(timeZone: "UTC"))
let processor = try filter.makeProcessor()

func cpuSeconds() -> Double {
    var ts = timespec()
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts)
    return Double(ts.tv_sec) + Double(ts.tv_nsec) / 1e9
}

var failures = 0
let cpuStart = cpuSeconds()
let start = DispatchTime.now().uptimeNanoseconds
data.withUnsafeBufferPointer { all in
    var lineStart = 0
    let n = all.count
    while lineStart < n {
        var end = lineStart
        while end < n, all[end] != 0x0A { end += 1 }
        processor.process(UnsafeBufferPointer(rebasing: all[lineStart..<end]))
        failures &+= processor.failures.count
        lineStart = end + 1
    }
}
let seconds = Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9
let cpu = cpuSeconds() - cpuStart
let s = processor.stats
print(
    "filter \(filterSpec): \(s.lines) lines, \(s.matched) matched, \(s.ignored) ignored, \(s.missed) missed, \(failures) failures"
)
print("hits per failregex: \(s.failregexHits)")
print(String(format: "wall %.3f s: %.0f lines/s", seconds, Double(s.lines) / seconds))
print(
    String(
        format:
            "cpu  %.3f s: %.0f lines/s, %.0f ns/line (one core; the machine is shared, so CPU time is the steadier figure)",
        cpu, Double(s.lines) / cpu, cpu * 1e9 / Double(s.lines)))
if let out = ProcessInfo.processInfo.environment["FILTER_BENCH_WRITE"] {
    FileManager.default.createFile(atPath: out, contents: Data(data))
}
