/// Maps a jail's fail2ban `banaction` onto Portcullis's native nftables rule shape.
///
/// Portcullis always bans through its own nftables sets. fail2ban configurations name other mechanisms; they
/// map as follows (a warning is produced for everything that is not an `nftables*` action):
///
/// - multiport: `nftables`, `nftables-multiport`, `iptables`, `iptables-multiport`, `iptables-multiport-log`,
///   `iptables-new`, `iptables-ipset`, `iptables-ipset-proto4`, `iptables-ipset-proto6`, `firewallcmd-multiport`,
///   `firewallcmd-new`, `firewallcmd-ipset`, `firewallcmd-rich-rules`, `firewallcmd-rich-logging`;
/// - allports: `nftables-allports`, `iptables-allports`, `iptables-ipset-proto6-allports`,
///   `iptables-xt_recent-echo`, `firewallcmd-allports`;
/// - a `[type=allports]` / `[type=multiport]` / `[actiontype=<allports>]` parameter overrides the name's shape;
/// - any other `nftables-*`, `iptables-*`, `ip6tables-*`, `firewallcmd-*` or `portcullis-*` name: allports when
///   the name contains `allports`, else multiport (`portcullis` itself is native: no warning).
///
/// iptables' `oneport` (plain `iptables`) is a multiport rule with one port. Logging (`-log`), `NEW`-state
/// matching (`-new`) and xt_recent have no counterpart: the ban applies to every packet from the address.
/// Anything else (`shorewall`, `ufw`, `route`, …) is an error naming the jail.
///
/// ```swift
/// let m = try BanActionMapping(banaction: "iptables-multiport[name=SSH, port=ssh]", jail: "sshd")
/// m.kind      // .multiport
/// m.warning   // "jail 'sshd': banaction iptables-multiport is served by Portcullis's nftables multiport rule"
/// ```
public struct BanActionMapping: Hashable, Sendable {
    /// The rule shape.
    public enum Kind: String, Hashable, Sendable {
        /// Only the jail's ports (`tcp dport { … }`).
        case multiport
        /// Every port.
        case allports
    }

    /// The rule shape.
    public let kind: Kind
    /// The action's name without parameters.
    public let name: String
    /// A message for the log when the action was translated, nil for native nftables actions.
    public let warning: String?

    /// Maps a banaction value (with or without `[params]`).
    ///
    /// - Throws: ``FirewallError`` (`.unsupportedBanAction`) naming the jail and the action.
    public init(banaction: String, jail: String) throws(FirewallError) {
        var text = Substring(banaction).drop(while: { $0 == " " || $0 == "\t" })
        while let last = text.last, last == " " || last == "\t" { text = text.dropLast() }
        let name: String
        var params = ""
        if let open = text.firstIndex(of: "[") {
            name = String(text[..<open])
            params = String(text[text.index(after: open)...]).lowercased()
        } else {
            name = String(text)
        }
        let lower = name.lowercased()
        self.name = name
        let compact = params.filter { $0 != " " && $0 != "\"" && $0 != "'" && $0 != "<" && $0 != ">" }
        let typeParam: Kind? =
            compact.contains("type=allports")
            ? .allports
            : (compact.contains("type=multiport") || compact.contains("type=oneport") ? .multiport : nil)

        let allports: Set<String> = [
            "nftables-allports", "iptables-allports", "iptables-ipset-proto6-allports", "iptables-xt_recent-echo",
            "firewallcmd-allports",
        ]
        let multiport: Set<String> = [
            "nftables", "nftables-multiport", "iptables", "iptables-multiport", "iptables-multiport-log",
            "iptables-new", "iptables-ipset", "iptables-ipset-proto4", "iptables-ipset-proto6",
            "firewallcmd-multiport", "firewallcmd-new", "firewallcmd-ipset", "firewallcmd-rich-rules",
            "firewallcmd-rich-logging",
        ]
        let families = ["nftables", "iptables", "ip6tables", "firewallcmd", "portcullis"]
        let base: Kind
        if allports.contains(lower) {
            base = .allports
        } else if multiport.contains(lower) {
            base = .multiport
        } else if families.contains(where: { lower == $0 || lower.hasPrefix($0 + "-") }) {
            // Other members of a firewall family (ip6tables-*, local variants): shape from the name.
            base = lower.contains("allports") ? .allports : .multiport
        } else {
            throw FirewallError(
                code: .unsupportedBanAction, jail: jail,
                message: "jail '\(jail)': banaction '\(name)' is not supported; Portcullis bans with nftables, "
                    + "use nftables-multiport or nftables-allports (iptables-* and firewallcmd-* are translated)"
            )
        }
        kind = typeParam ?? base
        warning =
            lower.hasPrefix("nftables") || lower.hasPrefix("portcullis")
            ? nil : "jail '\(jail)': banaction \(name) is served by Portcullis's nftables \(kind.rawValue) rule"
    }
}

extension JailFirewall {
    /// Builds a jail's rule from its raw fail2ban settings, resolving port names at configuration load.
    ///
    /// - Parameters:
    ///   - banaction: the jail's `banaction` (default `nftables-multiport`); `allports` actions ignore `port`.
    ///   - port: the `port` value (`ssh`, `smtp,465,submission`, `1000:2000`, `all`).
    ///   - protocol: `tcp` (default), `udp`, `all`, …
    ///   - blocktype: `reject` (default) or `drop`.
    ///   - banforward: `auto` (default), `yes` or `no`: whether forwarded connections are refused too.
    /// - Returns: the rule and a warning for the log when the banaction was translated.
    /// - Throws: ``FirewallError`` naming the jail and the bad value.
    public static func fromSettings(
        jail: String, banaction: String = "nftables-multiport", port: String, protocol: String = "tcp",
        blocktype: String = "reject", banforward: String = "auto", resolver: PortResolver
    ) throws(FirewallError) -> (rule: JailFirewall, warning: String?) {
        try validateIdentifier(jail, what: "jail name", jail: jail)
        let mapping = try BanActionMapping(banaction: banaction, jail: jail)
        let protocols = try ProtocolSelection(parsing: `protocol`, jail: jail)
        let blockType = try BlockType(parsing: blocktype, jail: jail)
        let forward = try ForwardBanning(parsing: banforward, jail: jail)
        let ports: PortSpec = mapping.kind == .allports ? .all : try resolver.resolve(port, jail: jail)
        return (
            JailFirewall(name: jail, ports: ports, protocols: protocols, blockType: blockType, banForward: forward),
            mapping.warning
        )
    }
}
