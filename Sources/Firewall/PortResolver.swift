#if canImport(Glibc)
import Glibc
#endif

/// Resolves a jail's `port =` value at configuration load: numbers, ranges, `all`, and service names from
/// `/etc/services` (including aliases).
///
/// ```swift
/// let resolver = try PortResolver()
/// try resolver.resolve("smtp,465,submission,imap,imaps,pop3,pop3s", jail: "postfix")
/// // .ports([25, 110, 143, 465, 587, 993, 995])
/// try resolver.resolve("1000:2000", jail: "x")   // .ports([1000-2000])
/// try resolver.resolve("all", jail: "x")         // .all
/// ```
public struct PortResolver: Sendable {
    /// Name or alias → port. TCP entries win over other protocols when a name has several.
    private let ports: [String: UInt16]
    /// Where the names came from, for error messages.
    public let source: String

    /// Reads a services file (default `/etc/services`).
    ///
    /// - Throws: ``FirewallError`` (`.servicesFile`) when it cannot be read.
    public init(servicesPath: String = "/etc/services") throws(FirewallError) {
        guard let data = Syscall.readFile(servicesPath) else {
            throw FirewallError(
                code: .servicesFile,
                message: "cannot read \(servicesPath); port names cannot be resolved (install netbase or use numbers)")
        }
        self.init(servicesText: String(decoding: data, as: UTF8.self), source: servicesPath)
    }

    /// Uses services-file text directly (`name port/proto [aliases…] [# comment]` per line).
    public init(servicesText: String, source: String = "services text") {
        var tcp: [String: UInt16] = [:]
        var other: [String: UInt16] = [:]
        for rawLine in servicesText.split(whereSeparator: \.isNewline) {
            let line = rawLine.split(separator: "#", maxSplits: 1, omittingEmptySubsequences: false).first ?? ""
            let fields = line.split(whereSeparator: { $0 == " " || $0 == "\t" })
            guard fields.count >= 2 else { continue }
            let portProto = fields[1].split(separator: "/")
            guard portProto.count == 2, let port = UInt16(portProto[0]) else { continue }
            let isTCP = portProto[1] == "tcp"
            for name in [fields[0]] + fields.dropFirst(2) {
                let key = String(name)
                if isTCP {
                    if tcp[key] == nil { tcp[key] = port }
                } else if other[key] == nil {
                    other[key] = port
                }
            }
        }
        ports = other.merging(tcp) { _, t in t }
        self.source = source
    }

    /// The port of a service name or alias, nil when unknown.
    public func port(named name: String) -> UInt16? {
        ports[name] ?? ports[name.lowercased()]
    }

    /// Resolves a `port =` value: a comma- or space-separated list of numbers, names, and ranges
    /// (`1000:2000` or `1000-2000`, ends may be names), or `all`. Ranges are merged and sorted.
    ///
    /// - Throws: ``FirewallError`` naming the jail and the offending item (`.unknownPort` or `.invalidPort`).
    public func resolve(_ value: String, jail: String) throws(FirewallError) -> PortSpec {
        let items = value.split(whereSeparator: { $0 == "," || $0 == " " || $0 == "\t" || $0 == "\n" })
        guard !items.isEmpty else {
            throw FirewallError(
                code: .invalidPort, jail: jail, message: "jail '\(jail)': empty port list; set port = ssh, 22 or all")
        }
        var ranges: [PortRange] = []
        for item in items {
            let token = String(item)
            if token.lowercased() == "all" || token.lowercased() == "any" { return .all }
            if let single = try endpoint(token, jail: jail, whole: token, allowUnknown: true) {
                ranges.append(PortRange(single))
                continue
            }
            let separator: Character? = token.contains(":") ? ":" : (token.contains("-") ? "-" : nil)
            guard let separator else {
                throw unknown(token, jail: jail)
            }
            let parts = token.split(separator: separator, omittingEmptySubsequences: false)
            guard parts.count == 2, !parts[0].isEmpty, !parts[1].isEmpty else {
                throw FirewallError(
                    code: .invalidPort, jail: jail,
                    message: "jail '\(jail)': malformed port range '\(token)'; write it as 1000:2000 or 1000-2000")
            }
            let lower = try endpoint(String(parts[0]), jail: jail, whole: token, allowUnknown: false)!
            let upper = try endpoint(String(parts[1]), jail: jail, whole: token, allowUnknown: false)!
            guard lower <= upper else {
                throw FirewallError(
                    code: .invalidPort, jail: jail,
                    message: "jail '\(jail)': port range '\(token)' runs backwards; write the lower port first")
            }
            ranges.append(PortRange(lower, upper))
        }
        return .ports(Self.merged(ranges))
    }

    /// A number or a known name; nil when `allowUnknown` and the text is neither (it may be a range).
    private func endpoint(
        _ text: String, jail: String, whole: String, allowUnknown: Bool
    ) throws(FirewallError)
        -> UInt16?
    {
        if text.utf8.allSatisfy({ $0 >= 0x30 && $0 <= 0x39 }) {
            guard let n = UInt16(text) else {
                throw FirewallError(
                    code: .invalidPort, jail: jail,
                    message: "jail '\(jail)': port '\(text)' in '\(whole)' is out of range; ports are 0-65535")
            }
            return n
        }
        if let n = port(named: text) { return n }
        if allowUnknown { return nil }
        throw unknown(text, jail: jail)
    }

    private func unknown(_ name: String, jail: String) -> FirewallError {
        FirewallError(
            code: .unknownPort, jail: jail,
            message: "jail '\(jail)': unknown port name '\(name)' (not in \(source)); "
                + "use a number, a range such as 1000:2000, all, or a service name")
    }

    /// Sorted, with overlapping and adjacent ranges joined (nft rejects overlapping intervals).
    static func merged(_ ranges: [PortRange]) -> [PortRange] {
        var out: [PortRange] = []
        for r in ranges.sorted() {
            if let last = out.last, UInt32(r.lower) <= UInt32(last.upper) + 1 {
                out[out.count - 1] = PortRange(last.lower, max(last.upper, r.upper))
            } else {
                out.append(r)
            }
        }
        return out
    }
}
