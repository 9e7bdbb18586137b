import Core
import Synchronization

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// Resolves host names captured by `<HOST>` with `getaddrinfo`, as fail2ban-regex does without `--raw`.
/// Each name is looked up once; a name that does not resolve gives no address (and so no failure).
enum HostResolver {
    private static let cache = Mutex<[String: [IPAddress]]>([:])

    /// Addresses of `name`, in resolver order, without duplicates.
    @Sendable static func resolve(_ name: String) -> [IPAddress] {
        if let hit = cache.withLock({ $0[name] }) { return hit }
        var hints = addrinfo()
        hints.ai_family = AF_UNSPEC
        hints.ai_socktype = Int32(SOCK_STREAM.rawValue)
        hints.ai_protocol = Int32(IPPROTO_TCP)
        var list: UnsafeMutablePointer<addrinfo>? = nil
        var found: [IPAddress] = []
        if getaddrinfo(name, nil, &hints, &list) == 0 {
            var p = list
            while let ai = p {
                var buffer = [CChar](repeating: 0, count: Int(INET6_ADDRSTRLEN) + 1)
                if let sa = ai.pointee.ai_addr {
                    if ai.pointee.ai_family == AF_INET {
                        sa.withMemoryRebound(to: sockaddr_in.self, capacity: 1) { sin in
                            var a = sin.pointee.sin_addr
                            _ = inet_ntop(AF_INET, &a, &buffer, socklen_t(buffer.count))
                        }
                    } else if ai.pointee.ai_family == AF_INET6 {
                        sa.withMemoryRebound(to: sockaddr_in6.self, capacity: 1) { sin6 in
                            var a = sin6.pointee.sin6_addr
                            _ = inet_ntop(AF_INET6, &a, &buffer, socklen_t(buffer.count))
                        }
                    }
                }
                let text = String(decoding: buffer.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
                if let ip = IPAddress(text), !found.contains(ip) { found.append(ip) }
                p = ai.pointee.ai_next
            }
            freeaddrinfo(list)
        }
        cache.withLock { $0[name] = found }
        return found
    }
}
