import Core
import Daemon
import Synchronization

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// Resolves host names captured by `<HOST>` as the daemon does (`HostAddresses.resolve`, getaddrinfo), so that
/// `portcullis regex` shows the addresses the daemon would ban: a name getaddrinfo reads as a number but inet_pton
/// does not (`3221225985`, `0xc0.0.2.2`, `192.0.2.010`) is no address (fail2ban-regex resolves them).
/// Each name is looked up once; a name that does not resolve gives no address (and so no failure).
enum HostResolver {
    private static let cache = Mutex<[String: [IPAddress]]>([:])

    /// Addresses of `name`, in resolver order, without duplicates.
    @Sendable static func resolve(_ name: String) -> [IPAddress] {
        if let hit = cache.withLock({ $0[name] }) { return hit }
        let found = HostAddresses.resolve(name)
        cache.withLock { $0[name] = found }
        return found
    }
}
