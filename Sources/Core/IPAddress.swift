#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// An IPv4 or IPv6 address, normalised as fail2ban does: IPv4-mapped IPv6 (`::ffff:192.0.2.1`) becomes IPv4.
///
/// ```swift
/// IPAddress("::ffff:192.0.2.1")?.description   // "192.0.2.1"
/// IPAddress("2001:DB8::1")?.description        // "2001:db8::1"
/// ```
public struct IPAddress: Hashable, Sendable, Comparable, CustomStringConvertible {
    /// The address family.
    public enum Family: Sendable, Hashable { case v4, v6 }

    /// Upper 64 bits (IPv6) or 0 (IPv4).
    public let high: UInt64
    /// Lower 64 bits (IPv6) or the IPv4 address in the low 32 bits.
    public let low: UInt64
    /// The family.
    public let family: Family

    /// An IPv4 address from its 32-bit value (host order).
    public init(v4 value: UInt32) {
        self.init(raw: 0, UInt64(value), .v4)
    }

    private init(raw high: UInt64, _ low: UInt64, _ family: Family) {
        self.high = high
        self.low = low
        self.family = family
    }

    /// An IPv6 address from its two halves; IPv4-mapped addresses are normalised to IPv4.
    public init(v6High: UInt64, low: UInt64) {
        if v6High == 0, low >> 32 == 0xFFFF {
            self.init(v4: UInt32(truncatingIfNeeded: low))
        } else {
            self.init(raw: v6High, low, .v6)
        }
    }

    /// Parses an address with exactly the rules of `inet_pton(3)` (which fail2ban uses): a dotted quad of four
    /// decimal parts 0…255 without leading zeros (`192.0.2.018` is not an address), or any textual IPv6 form
    /// (`::`, embedded IPv4 such as `::ffff:192.0.2.1`), optionally in brackets. Zone ids (`fe80::1%eth0`),
    /// surrounding spaces and NUL bytes are rejected. Nil when not an address.
    public init?(_ text: some StringProtocol) {
        var s = String(text)
        if s.utf8.count > 2, s.hasPrefix("["), s.hasSuffix("]") { s = String(s.dropFirst().dropLast()) }
        if let v4 = IPAddress.parseV4(s.utf8) {
            self.init(v4: v4)
            return
        }
        // inet_pton reads a C string: a NUL inside would cut the text and accept its head.
        guard !s.isEmpty, s.utf8.count <= 64, s.contains(":"), !s.utf8.contains(0) else { return nil }
        var a6 = in6_addr()
        guard inet_pton(AF_INET6, s, &a6) == 1 else { return nil }
        let bytes = withUnsafeBytes(of: &a6) { Array($0) }
        var h: UInt64 = 0
        var l: UInt64 = 0
        for i in 0..<8 { h = h << 8 | UInt64(bytes[i]) }
        for i in 8..<16 { l = l << 8 | UInt64(bytes[i]) }
        self.init(v6High: h, low: l)
    }

    /// Parses an address straight from bytes (the hot path's captured group).
    public init?(bytes: some Collection<UInt8>) {
        if let v4 = IPAddress.parseV4(bytes) {
            self.init(v4: v4)
            return
        }
        guard bytes.count <= 64 else { return nil }
        self.init(String(decoding: bytes, as: UTF8.self))
    }

    /// A strict dotted quad as `inet_pton(AF_INET)` reads it — four decimal parts 0…255, no leading zeros
    /// (`018` is rejected, `0` is fine) — parsed without allocating; nil for anything else.
    public init?(dottedQuad bytes: some Sequence<UInt8>) {
        guard let v = IPAddress.parseV4(bytes) else { return nil }
        self.init(v4: v)
    }

    /// `init?(dottedQuad:)` for a string, parsed from its UTF-8 bytes (not generic: callable from the hot path of
    /// another module without an unspecialised iteration per byte).
    public init?(dottedQuad text: String) {
        var text = text
        guard let v = text.withUTF8({ IPAddress.parseV4($0) }) else { return nil }
        self.init(v4: v)
    }

    static func parseV4(_ b: some Sequence<UInt8>) -> UInt32? {
        var value: UInt32 = 0
        var part: UInt32 = 0
        var digits = 0
        var dots = 0
        for c in b {
            if c >= 0x30, c <= 0x39 {
                if digits == 1 && part == 0 { return nil }  // leading zero
                part = part * 10 + UInt32(c - 0x30)
                digits += 1
                if digits > 3 || part > 255 { return nil }
            } else if c == 0x2E {
                if digits == 0 || dots == 3 { return nil }
                value = value << 8 | part
                part = 0
                digits = 0
                dots += 1
            } else {
                return nil
            }
        }
        guard dots == 3, digits > 0 else { return nil }
        return value << 8 | part
    }

    /// Canonical text: dotted quad, or RFC 5952 IPv6.
    public var description: String {
        switch family {
        case .v4:
            let v = UInt32(truncatingIfNeeded: low)
            return "\(v >> 24).\(v >> 16 & 0xFF).\(v >> 8 & 0xFF).\(v & 0xFF)"
        case .v6:
            var a6 = in6_addr()
            withUnsafeMutableBytes(of: &a6) { raw in
                for i in 0..<8 { raw[i] = UInt8(truncatingIfNeeded: high >> (56 - 8 * UInt64(i))) }
                for i in 0..<8 { raw[8 + i] = UInt8(truncatingIfNeeded: low >> (56 - 8 * UInt64(i))) }
            }
            var buffer = [CChar](repeating: 0, count: Int(INET6_ADDRSTRLEN) + 1)
            _ = inet_ntop(AF_INET6, &a6, &buffer, socklen_t(buffer.count))
            return String(decoding: buffer.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
        }
    }

    /// Number of bits in this family's addresses.
    public var bitWidth: Int { family == .v4 ? 32 : 128 }

    public static func < (a: IPAddress, b: IPAddress) -> Bool {
        if a.family != b.family { return a.family == .v4 }
        return (a.high, a.low) < (b.high, b.low)
    }
}

/// A CIDR network such as `192.0.2.0/24` or `2001:db8::/32`; a plain address is a /32 or /128.
public struct Subnet: Hashable, Sendable, CustomStringConvertible {
    /// The network address (host bits cleared).
    public let network: IPAddress
    /// Prefix length.
    public let prefixLength: Int

    /// Parses `ADDR` or `ADDR/LEN` (LEN may also be an IPv4 netmask such as 255.255.255.0).
    public init?(_ text: some StringProtocol) {
        let parts = text.split(separator: "/", maxSplits: 1, omittingEmptySubsequences: false)
        guard let addr = IPAddress(parts[0]) else { return nil }
        var len = addr.bitWidth
        if parts.count == 2 {
            if let n = Int(parts[1]), n >= 0, n <= addr.bitWidth {
                len = n
            } else if addr.family == .v4, let mask = IPAddress(parts[1]), mask.family == .v4 {
                let m = UInt32(truncatingIfNeeded: mask.low)
                let ones = m.nonzeroBitCount
                guard m.leadingZeroBitCount == 0 || m == 0, (m << ones) == 0 || ones == 32 else { return nil }
                len = ones
            } else {
                return nil
            }
        }
        self.init(address: addr, prefixLength: len)
    }

    /// The network of `address` with `prefixLength` bits.
    public init(address: IPAddress, prefixLength: Int) {
        self.prefixLength = prefixLength
        switch address.family {
        case .v4:
            let mask: UInt32 = prefixLength == 0 ? 0 : ~UInt32(0) << UInt32(32 - prefixLength)
            network = IPAddress(v4: UInt32(truncatingIfNeeded: address.low) & mask)
        case .v6:
            let (mh, ml) = Subnet.mask128(prefixLength)
            network = IPAddress(v6High: address.high & mh, low: address.low & ml)
        }
    }

    static func mask128(_ n: Int) -> (UInt64, UInt64) {
        if n == 0 { return (0, 0) }
        if n <= 64 { return (n == 64 ? ~0 : ~UInt64(0) << UInt64(64 - n), 0) }
        return (~0, n == 128 ? ~0 : ~UInt64(0) << UInt64(128 - n))
    }

    /// True when `address` lies inside this network.
    public func contains(_ address: IPAddress) -> Bool {
        guard address.family == network.family else { return false }
        return Subnet(address: address, prefixLength: prefixLength).network == network
    }

    public var description: String {
        prefixLength == network.bitWidth ? network.description : "\(network)/\(prefixLength)"
    }
}
