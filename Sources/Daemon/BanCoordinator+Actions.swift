import Control
import Core
import Jail
import Store

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// The values of the runtime tags fail2ban gives its command actions (its `ActionInfo`), built for one ticket.
///
/// Trusted (written into the script when plain): `ip`, `family`, `ip-rev`, `failures`, `ipfailures`,
/// `ipjailfailures`, `time`, `bantime`, `bancount`, `restored`, `name`, `port`, `protocol`, `jail.banned`,
/// `jail.banned_total`, `jail.found`, `jail.found_total`, `fq-hostname`, `sh-hostname`. Always passed as
/// parameters: `matches`, `ipmatches`, `ipjailmatches`, `fid`, `ip-host`, `raw-ticket` and every `<F-*>` capture.
public struct ActionTicket: Sendable, Hashable {
    /// The address, nil for `actionstart`/`actionstop`/`actioncheck` (fail2ban's empty ticket).
    public var address: IPAddress?
    public var time: Double
    public var bantime: Double?
    public var failures: Int = 0
    public var bancount: Int = 0
    public var matches: [String] = []
    public var captures: [String: String] = [:]
    public var restored = false

    /// A ticket.
    public init(
        address: IPAddress?, time: Double, bantime: Double?, failures: Int = 0, bancount: Int = 0,
        matches: [String] = [], captures: [String: String] = [:], restored: Bool = false
    ) {
        self.address = address
        self.time = time
        self.bantime = bantime
        self.failures = failures
        self.bancount = bancount
        self.matches = matches
        self.captures = captures
        self.restored = restored
    }

    /// The tag values for jail `jail`. `base` holds the jail's own (`name`, `port`, `protocol`, counters).
    public func values(base: [String: String]) -> ActionValues {
        var trusted = base
        var untrusted: [String: String] = [:]
        let ip = address?.description ?? ""
        trusted["ip"] = ip
        trusted["family"] = address.map { $0.family == .v4 ? "inet4" : "inet6" } ?? (base["family"] ?? "")
        trusted["ip-rev"] = address.map(Self.reversePointer) ?? ""
        trusted["failures"] = String(failures)
        trusted["ipfailures"] = String(failures)
        trusted["ipjailfailures"] = String(failures)
        trusted["time"] = Self.pythonFloat(time)
        if let bantime { trusted["bantime"] = Self.integerText(bantime) }
        trusted["bancount"] = String(bancount)
        trusted["restored"] = restored ? "1" : "0"
        trusted["fq-hostname"] = HostNames.fullyQualified
        trusted["sh-hostname"] = HostNames.short
        let joined = matches.joined(separator: "\n")
        untrusted["matches"] = joined
        untrusted["ipmatches"] = joined
        untrusted["ipjailmatches"] = joined
        untrusted["fid"] = captures["fid"] ?? ip
        untrusted["raw-ticket"] =
            "BanTicket: ip=\(ip) time=\(Self.pythonFloat(time)) bantime=\(bantime.map(Self.integerText) ?? "None") bancount=\(bancount) #attempts=\(failures) matches=[\(matches.map(PythonRepr.quote).joined(separator: ", "))]"
        return ActionValues(trusted, untrusted: untrusted, captures: captures)
    }

    /// fail2ban's `ip-rev` (`getPTR('')`): `1.2.0.192.` for 192.0.2.1, nibbles for IPv6.
    static func reversePointer(_ a: IPAddress) -> String {
        let text = a.description
        if a.family == .v4 { return text.split(separator: ".").reversed().joined(separator: ".") + "." }
        // 32 nibbles, lowest first.
        var nibbles: [String] = []
        for word in [a.low, a.high] {
            for i in 0..<16 { nibbles.append(String((word >> (UInt64(i) * 4)) & 0xf, radix: 16)) }
        }
        return nibbles.joined(separator: ".") + "."
    }

    /// A number of seconds as fail2ban's `int(...)`, clamped instead of trapping.
    static func integerText(_ v: Double) -> String { String(Int(saturating: v)) }

    /// Python's `str(float)` for epoch times (`1733280000.0`, `1733280000.25`).
    static func pythonFloat(_ v: Double) -> String { PythonRepr.float(v) }
}

extension ActionTicket {
    /// Adds, on the runner's thread, what takes time to find: the reverse DNS name (`ip-host`) when a command
    /// uses it, and matches merged from this address's earlier bans (`ipmatches`, `ipjailmatches`).
    static func enrich(
        address: IPAddress?, jail: String, store: BanStore?
    )
        -> @Sendable (inout ActionValues, (String) -> Bool) -> Void
    {
        { values, uses in
            guard let address else { return }
            // fail2ban prints Python's None for an address without a PTR name.
            if uses("ip-host") { values.untrusted["ip-host"] = HostNames.reverse(address) ?? "None" }
            guard let store, uses("ipmatches") || uses("ipjailmatches") || uses("ipfailures") || uses("ipjailfailures")
            else { return }
            guard let history = try? store.history(address: address) else { return }
            let current = values.untrusted["matches"].map { $0.isEmpty ? [] : [$0] } ?? []
            let failures = Int(values.trusted["failures"] ?? "0") ?? 0
            // The current ban is in the history already (stored before the job ran): merge the earlier ones.
            let earlier = history.dropLast(history.last.map { $0.jail == jail } == true ? 1 : 0)
            let all = earlier.flatMap(\.matches) + current
            let inJail = earlier.filter { $0.jail == jail }.flatMap(\.matches) + current
            values.untrusted["ipmatches"] = all.joined(separator: "\n")
            values.untrusted["ipjailmatches"] = inJail.joined(separator: "\n")
            values.trusted["ipfailures"] = String(earlier.reduce(failures) { $0 + $1.failures })
            values.trusted["ipjailfailures"] = String(
                earlier.filter { $0.jail == jail }.reduce(failures) { $0 + $1.failures })
        }
    }
}

/// The host's names, as fail2ban's `<fq-hostname>` (`socket.getfqdn()`) and `<sh-hostname>` (`gethostname()`).
enum HostNames {
    static let short: String = {
        var buf = [CChar](repeating: 0, count: 256)
        guard gethostname(&buf, buf.count - 1) == 0 else { return "localhost" }
        return String(decoding: buf.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }()

    static let fullyQualified: String = {
        var hints = addrinfo()
        hints.ai_flags = AI_CANONNAME
        var res: UnsafeMutablePointer<addrinfo>? = nil
        guard getaddrinfo(short, nil, &hints, &res) == 0, let first = res else { return short }
        defer { freeaddrinfo(res) }
        guard let name = first.pointee.ai_canonname else { return short }
        return String(cString: name)
    }()

    /// The PTR name of `address`, nil when it has none.
    static func reverse(_ address: IPAddress) -> String? {
        var host = [CChar](repeating: 0, count: 1025)
        let rc: Int32
        if address.family == .v4 {
            var sin = sockaddr_in()
            sin.sin_family = sa_family_t(AF_INET)
            guard inet_pton(AF_INET, address.description, &sin.sin_addr) == 1 else { return nil }
            rc = withUnsafePointer(to: &sin) {
                $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                    getnameinfo(
                        $0, socklen_t(MemoryLayout<sockaddr_in>.size), &host, socklen_t(host.count), nil, 0, NI_NAMEREQD
                    )
                }
            }
        } else {
            var sin6 = sockaddr_in6()
            sin6.sin6_family = sa_family_t(AF_INET6)
            guard inet_pton(AF_INET6, address.description, &sin6.sin6_addr) == 1 else { return nil }
            rc = withUnsafePointer(to: &sin6) {
                $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                    getnameinfo(
                        $0, socklen_t(MemoryLayout<sockaddr_in6>.size), &host, socklen_t(host.count), nil, 0,
                        NI_NAMEREQD)
                }
            }
        }
        guard rc == 0 else { return nil }
        return String(decoding: host.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }
}
