import Core
import Firewall
import Policy

#if canImport(Glibc)
import Glibc
#endif

/// The listening TCP and UDP sockets of the calling thread's network namespace, read from
/// `/proc/net/{tcp,tcp6,udp,udp6}` with their owners from `/proc/PID/fd` (what `ss -lntup` shows).
///
/// ```swift
/// for s in SocketTable.listening() { print(s.proto, s.address, s.port, s.owner) }
/// ```
public enum SocketTable {
    /// Every listening TCP socket and every bound, unconnected UDP socket.
    ///
    /// An IPv6 wildcard socket counts as dual-stack when no IPv4 wildcard socket has the same port and
    /// `net.ipv6.bindv6only` is off (the kernel would refuse the IPv4 bind otherwise); a program that sets
    /// `IPV6_V6ONLY` on a lone IPv6 socket is then over-reported as reachable over IPv4.
    public static func listening(procRoot: String = "/proc") -> [ListeningSocket] {
        var raw: [(ListeningSocket, inode: String)] = []
        for (file, proto, v6) in [
            ("tcp", TransportProtocol.tcp, false), ("tcp6", .tcp, true), ("udp", .udp, false),
            ("udp6", .udp, true),
        ] {
            guard let text = HostSys.readFile("\(procRoot)/net/\(file)") else { continue }
            for line in text.split(separator: "\n").dropFirst() {
                let f = line.split(separator: " ")
                guard f.count >= 10 else { continue }
                let state = f[3]
                let remote = f[2].split(separator: ":")
                guard remote.count == 2 else { continue }
                if proto == .tcp {
                    guard state == "0A" else { continue }
                } else {
                    guard state == "07", remote[1] == "0000", remote[0].allSatisfy({ $0 == "0" }) else { continue }
                }
                let local = f[1].split(separator: ":")
                guard local.count == 2, let port = UInt16(local[1], radix: 16), port != 0,
                    let address = parseAddress(local[0], v6: v6)
                else { continue }
                raw.append((ListeningSocket(proto: proto, address: address, port: port), String(f[9])))
            }
        }
        let owners = socketOwners(procRoot: procRoot)
        let bindV6Only = HostSys.sysctl("\(procRoot)/sys/net/ipv6/bindv6only") == "1"
        var out: [ListeningSocket] = []
        for (var s, inode) in raw {
            if let o = owners[inode] {
                s.pid = o.0
                s.process = o.1
            }
            if s.address.family == .v6, s.address.high == 0, s.address.low == 0, !bindV6Only {
                s.dualStack = !raw.contains {
                    $0.0.proto == s.proto && $0.0.port == s.port && $0.0.address == IPAddress(v4: 0)
                }
            }
            if !out.contains(where: { $0.proto == s.proto && $0.port == s.port && $0.address == s.address }) {
                out.append(s)
            }
        }
        return out
    }

    /// `0100007F` → 127.0.0.1; IPv6 as four host-order 32-bit words.
    static func parseAddress(_ hex: Substring, v6: Bool) -> IPAddress? {
        let chars = Array(hex.utf8)
        guard chars.count == (v6 ? 32 : 8) else { return nil }
        var bytes: [UInt8] = []
        for word in stride(from: 0, to: chars.count, by: 8) {
            var w: [UInt8] = []
            for i in stride(from: word, to: word + 8, by: 2) {
                guard let b = UInt8(String(decoding: chars[i..<i + 2], as: UTF8.self), radix: 16) else { return nil }
                w.append(b)
            }
            // /proc prints each 32-bit word as the CPU holds it: little-endian on the machines Portcullis runs on.
            bytes += w.reversed()
        }
        func word(_ range: Range<Int>) -> UInt64 { bytes[range].reduce(0) { $0 << 8 | UInt64($1) } }
        if !v6 { return IPAddress(v4: UInt32(word(0..<4))) }
        return IPAddress(v6High: word(0..<8), low: word(8..<16))
    }

    /// socket inode → (pid, comm), from every `/proc/PID/fd/*` link `socket:[INODE]`.
    static func socketOwners(procRoot: String) -> [String: (Int32, String)] {
        var owners: [String: (Int32, String)] = [:]
        guard let dir = opendir(procRoot) else { return owners }
        defer { closedir(dir) }
        var pids: [Int32] = []
        while let e = readdir(dir) {
            let name = withUnsafePointer(to: e.pointee.d_name) {
                $0.withMemoryRebound(to: CChar.self, capacity: 256) { String(cString: $0) }
            }
            if let pid = Int32(name) { pids.append(pid) }
        }
        for pid in pids {
            let fdDir = "\(procRoot)/\(pid)/fd"
            guard let fds = opendir(fdDir) else { continue }
            var comm: String? = nil
            while let e = readdir(fds) {
                let name = withUnsafePointer(to: e.pointee.d_name) {
                    $0.withMemoryRebound(to: CChar.self, capacity: 256) { String(cString: $0) }
                }
                var buffer = [CChar](repeating: 0, count: 128)
                let n = readlink("\(fdDir)/\(name)", &buffer, 127)
                guard n > 8 else { continue }
                let link = String(decoding: buffer[0..<n].map { UInt8(bitPattern: $0) }, as: UTF8.self)
                guard link.hasPrefix("socket:["), link.hasSuffix("]") else { continue }
                let inode = String(link.dropFirst(8).dropLast())
                if owners[inode] != nil { continue }
                if comm == nil {
                    comm =
                        HostSys.readFile("\(procRoot)/\(pid)/comm")?.split(separator: "\n").first.map(String.init)
                        ?? "?"
                }
                owners[inode] = (pid, comm!)
            }
            closedir(fds)
        }
        return owners
    }
}
