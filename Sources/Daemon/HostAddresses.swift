import Core

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// The host's own addresses and name resolution: the system calls behind `ignoreself` and host names in `ignoreip`.
public enum HostAddresses {
    /// Every address configured on this host's interfaces (in the current network namespace), plus loopback.
    public static func own() -> [IPAddress] {
        var result: Set<IPAddress> = [IPAddress("127.0.0.1")!, IPAddress("::1")!]
        var list: UnsafeMutablePointer<ifaddrs>? = nil
        guard getifaddrs(&list) == 0 else { return Array(result) }
        defer { freeifaddrs(list) }
        var cursor = list
        while let entry = cursor {
            if let sa = entry.pointee.ifa_addr, let a = address(sa) { result.insert(a) }
            cursor = entry.pointee.ifa_next
        }
        return result.sorted()
    }

    /// Resolves a host name to its addresses with getaddrinfo; empty when it does not resolve.
    /// A name getaddrinfo would read as a number but inet_pton does not (`192.0.2.010` is 192.0.2.8 to inet_aton,
    /// `3221225985` is 192.0.2.1) is neither an address nor a host name: empty.
    public static func resolve(_ name: String) -> [IPAddress] {
        if let a = IPAddress(name) { return [a] }
        guard !isNumericSpelling(name) else { return [] }
        var hints = addrinfo()
        hints.ai_socktype = Int32(SOCK_STREAM.rawValue)
        var res: UnsafeMutablePointer<addrinfo>? = nil
        guard getaddrinfo(name, nil, &hints, &res) == 0 else { return [] }
        defer { freeaddrinfo(res) }
        var out: [IPAddress] = []
        var cursor = res
        while let info = cursor {
            if let sa = info.pointee.ai_addr, let a = address(sa), !out.contains(a) { out.append(a) }
            cursor = info.pointee.ai_next
        }
        return out
    }

    /// True when getaddrinfo takes `name` as a numeric host (inet_aton's octal, hex, short and bare-number forms).
    static func isNumericSpelling(_ name: String) -> Bool {
        var hints = addrinfo()
        hints.ai_flags = AI_NUMERICHOST
        hints.ai_socktype = Int32(SOCK_STREAM.rawValue)
        var res: UnsafeMutablePointer<addrinfo>? = nil
        guard getaddrinfo(name, nil, &hints, &res) == 0 else { return false }
        freeaddrinfo(res)
        return true
    }

    static func address(_ sa: UnsafeMutablePointer<sockaddr>) -> IPAddress? {
        switch Int32(sa.pointee.sa_family) {
        case AF_INET:
            return sa.withMemoryRebound(to: sockaddr_in.self, capacity: 1) {
                IPAddress(v4: UInt32(bigEndian: $0.pointee.sin_addr.s_addr))
            }
        case AF_INET6:
            return sa.withMemoryRebound(to: sockaddr_in6.self, capacity: 1) { p in
                withUnsafeBytes(of: p.pointee.sin6_addr) { raw in
                    var h: UInt64 = 0
                    var l: UInt64 = 0
                    for i in 0..<8 { h = h << 8 | UInt64(raw[i]) }
                    for i in 8..<16 { l = l << 8 | UInt64(raw[i]) }
                    return IPAddress(v6High: h, low: l)
                }
            }
        default:
            return nil
        }
    }
}
