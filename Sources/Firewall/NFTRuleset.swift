import Core

/// One nftables command in Portcullis's table, renderable as nft text or libnftables JSON.
public enum NFTCommand: Hashable, Sendable {
    /// `add table inet T` (no error when it exists).
    case addTable
    /// `delete table inet T`.
    case deleteTable
    /// `add chain inet T C { type filter hook input priority P; policy accept; }`.
    case addChain
    /// `flush chain inet T C` (removes the rules, keeps the chain).
    case flushChain
    /// `add chain inet T C` without a hook: a no-op when the chain exists, so a following delete cannot fail.
    case ensureChain
    /// `delete chain inet T C` (it must be empty).
    case deleteChain
    /// `add chain inet T C-forward { type filter hook forward priority P; policy accept; }`: bans of forwarded
    /// connections (routing, Docker's published ports).
    case addForwardChain
    /// `flush chain inet T C-forward`.
    case flushForwardChain
    /// `add chain inet T C-forward` without a hook (a no-op when it exists).
    case ensureForwardChain
    /// `delete chain inet T C-forward`.
    case deleteForwardChain
    /// `add set inet T NAME { type ipv4_addr|ipv6_addr; flags timeout; }`.
    case addSet(name: String, family: IPAddress.Family)
    /// `add set inet T NAME { type ipv4_addr|ipv6_addr; flags interval, timeout; }` (prefix bans).
    case addIntervalSet(name: String, family: IPAddress.Family)
    /// `delete set inet T NAME`.
    case deleteSet(name: String)
    /// `flush set inet T NAME` (removes every element).
    case flushSet(name: String)
    /// `add rule inet T C …`.
    case addRule(NFTRule)
    /// `add element inet T NAME { a timeout 600s, b, … }`.
    case addElements(set: String, [NFTElement])
    /// `delete element inet T NAME { a, b, … }` (timeouts ignored).
    case deleteElements(set: String, [NFTElement])
}

/// A set element: an address (or a prefix, in an interval set) with an optional timeout (none = permanent).
public struct NFTElement: Hashable, Sendable {
    /// The address (a prefix's network address).
    public let address: IPAddress
    /// Time until the kernel removes it; nil for never.
    public let timeout: Duration?
    /// The prefix length of a prefix element (`2001:db8:1:2::/64`), nil for a single address.
    public let prefixLength: Int?

    /// Creates an element.
    public init(address: IPAddress, timeout: Duration?, prefixLength: Int? = nil) {
        self.address = address
        self.timeout = timeout
        self.prefixLength = prefixLength
    }

    /// `192.0.2.1` or `2001:db8:1:2::/64`.
    var text: String { prefixLength.map { "\(address)/\($0)" } ?? address.description }

    /// The JSON value: `"192.0.2.1"` or `{"prefix": {"addr": "2001:db8:1:2::", "len": 64}}`.
    var jsonValue: String {
        prefixLength.map { "{\"prefix\": {\"addr\": \"\(address)\", \"len\": \($0)}}" } ?? "\"\(address)\""
    }
}

/// A rule of Portcullis's chain: optional layer-4 match, source address in a jail's set, verdict.
public struct NFTRule: Hashable, Sendable {
    /// The layer-4 part of the match.
    public enum Layer4: Hashable, Sendable {
        /// Any protocol.
        case any
        /// `meta l4proto P`.
        case proto(TransportProtocol)
        /// `P dport { ports }`.
        case ports(TransportProtocol, [PortRange])
    }

    /// What to do with a matching packet.
    public enum Verdict: Hashable, Sendable {
        /// `drop`.
        case drop
        /// `reject with tcp reset`.
        case tcpReset
        /// `reject with icmp port-unreachable` (IPv4) or `icmpv6 port-unreachable` (IPv6).
        case portUnreachable
    }

    /// The layer-4 match.
    public let layer4: Layer4
    /// Address family of the set (`ip saddr` or `ip6 saddr`).
    public let family: IPAddress.Family
    /// The set the source address is looked up in.
    public let set: String
    /// The verdict.
    public let verdict: Verdict
    /// True for a rule of the forward chain (forwarded connections), false for the input chain.
    public let forward: Bool

    /// Creates a rule.
    public init(layer4: Layer4, family: IPAddress.Family, set: String, verdict: Verdict, forward: Bool = false) {
        self.layer4 = layer4
        self.family = family
        self.set = set
        self.verdict = verdict
        self.forward = forward
    }
}

/// A list of commands sent as ONE libnftables call, i.e. one kernel transaction (all or nothing).
extension NFTCommand {
    /// True for anything but adding or deleting elements.
    var isStructural: Bool {
        switch self {
        case .addElements, .deleteElements: return false
        default: return true
        }
    }
}

public struct NFTTransaction: Hashable, Sendable {
    /// The commands in order.
    public var commands: [NFTCommand]
    /// The table they act on.
    public let table: String
    /// The chain they act on.
    public let chain: String
    /// The forward chain (bans of forwarded connections).
    public var forwardChain: String { chain + "-forward" }
    /// The chain's hook priority.
    public let priority: Int

    /// True when there is nothing to send.
    public var isEmpty: Bool { commands.isEmpty }

    /// How many set elements the transaction adds or deletes (flushing or deleting sets and tables not counted).
    public var elementCount: Int {
        commands.reduce(0) { n, command in
            switch command {
            case .addElements(_, let e): return n + e.count
            case .deleteElements(_, let e): return n + e.count
            default: return n
            }
        }
    }

    /// The transaction in nft's text language, one command per line.
    ///
    /// ```text
    /// add element inet portcullis addr-set-sshd { 192.0.2.1 timeout 600s }
    /// ```
    public var text: String {
        var out = ""
        out.reserveCapacity(64 * commands.count)
        for command in commands {
            appendText(command, to: &out)
            out += "\n"
        }
        return out
    }

    /// The transaction as a libnftables JSON document (`{"nftables": [...]}`).
    public var json: String {
        var out = "{\"nftables\": ["
        for (i, command) in commands.enumerated() {
            if i > 0 { out += ", " }
            appendJSON(command, to: &out)
        }
        out += "]}"
        return out
    }

    /// The transaction in the given syntax.
    public func rendered(_ syntax: FirewallConfiguration.Syntax) -> String {
        syntax == .json ? json : text
    }

    private func appendText(_ command: NFTCommand, to out: inout String) {
        let t = "inet \(table)"
        switch command {
        case .addTable: out += "add table \(t)"
        case .deleteTable: out += "delete table \(t)"
        case .addChain:
            out += "add chain \(t) \(chain) { type filter hook input priority \(priority); policy accept; }"
        case .flushChain: out += "flush chain \(t) \(chain)"
        case .ensureChain: out += "add chain \(t) \(chain)"
        case .deleteChain: out += "delete chain \(t) \(chain)"
        case .addForwardChain:
            out += "add chain \(t) \(forwardChain) { type filter hook forward priority \(priority); policy accept; }"
        case .flushForwardChain: out += "flush chain \(t) \(forwardChain)"
        case .ensureForwardChain: out += "add chain \(t) \(forwardChain)"
        case .deleteForwardChain: out += "delete chain \(t) \(forwardChain)"
        case .addSet(let name, let family):
            out += "add set \(t) \(name) { type \(family == .v4 ? "ipv4_addr" : "ipv6_addr"); flags timeout; }"
        case .addIntervalSet(let name, let family):
            out +=
                "add set \(t) \(name) { type \(family == .v4 ? "ipv4_addr" : "ipv6_addr"); flags interval, timeout; }"
        case .deleteSet(let name): out += "delete set \(t) \(name)"
        case .flushSet(let name): out += "flush set \(t) \(name)"
        case .addRule(let rule):
            out += "add rule \(t) \(rule.forward ? forwardChain : chain) "
            switch rule.layer4 {
            case .any: break
            case .proto(let p): out += "meta l4proto \(p.rawValue) "
            case .ports(let p, let ranges):
                out += "\(p.rawValue) dport { \(ranges.map(\.description).joined(separator: ", ")) } "
            }
            out += rule.family == .v4 ? "ip saddr @\(rule.set) " : "ip6 saddr @\(rule.set) "
            switch rule.verdict {
            case .drop: out += "drop"
            case .tcpReset: out += "reject with tcp reset"
            case .portUnreachable:
                out += rule.family == .v4 ? "reject with icmp port-unreachable" : "reject with icmpv6 port-unreachable"
            }
        case .addElements(let set, let elements):
            out += "add element \(t) \(set) { "
            for (i, e) in elements.enumerated() {
                if i > 0 { out += ", " }
                out += e.text
                if let timeout = e.timeout { out += " timeout \(Self.textDuration(timeout))" }
            }
            out += " }"
        case .deleteElements(let set, let elements):
            out += "delete element \(t) \(set) { "
            for (i, e) in elements.enumerated() {
                if i > 0 { out += ", " }
                out += e.text
            }
            out += " }"
        }
    }

    private func appendJSON(_ command: NFTCommand, to out: inout String) {
        let tableObject = "\"family\": \"inet\", \"table\": \"\(table)\""
        switch command {
        case .addTable: out += "{\"add\": {\"table\": {\"family\": \"inet\", \"name\": \"\(table)\"}}}"
        case .deleteTable: out += "{\"delete\": {\"table\": {\"family\": \"inet\", \"name\": \"\(table)\"}}}"
        case .addChain:
            out += "{\"add\": {\"chain\": {\(tableObject), \"name\": \"\(chain)\", \"type\": \"filter\", "
            out += "\"hook\": \"input\", \"prio\": \(priority), \"policy\": \"accept\"}}}"
        case .flushChain: out += "{\"flush\": {\"chain\": {\(tableObject), \"name\": \"\(chain)\"}}}"
        case .ensureChain: out += "{\"add\": {\"chain\": {\(tableObject), \"name\": \"\(chain)\"}}}"
        case .deleteChain: out += "{\"delete\": {\"chain\": {\(tableObject), \"name\": \"\(chain)\"}}}"
        case .addForwardChain:
            out += "{\"add\": {\"chain\": {\(tableObject), \"name\": \"\(forwardChain)\", \"type\": \"filter\", "
            out += "\"hook\": \"forward\", \"prio\": \(priority), \"policy\": \"accept\"}}}"
        case .flushForwardChain: out += "{\"flush\": {\"chain\": {\(tableObject), \"name\": \"\(forwardChain)\"}}}"
        case .ensureForwardChain: out += "{\"add\": {\"chain\": {\(tableObject), \"name\": \"\(forwardChain)\"}}}"
        case .deleteForwardChain:
            out += "{\"delete\": {\"chain\": {\(tableObject), \"name\": \"\(forwardChain)\"}}}"
        case .addSet(let name, let family):
            out += "{\"add\": {\"set\": {\(tableObject), \"name\": \"\(name)\", "
            out += "\"type\": \"\(family == .v4 ? "ipv4_addr" : "ipv6_addr")\", \"flags\": [\"timeout\"]}}}"
        case .addIntervalSet(let name, let family):
            out += "{\"add\": {\"set\": {\(tableObject), \"name\": \"\(name)\", "
            out +=
                "\"type\": \"\(family == .v4 ? "ipv4_addr" : "ipv6_addr")\", \"flags\": [\"interval\", \"timeout\"]}}}"
        case .deleteSet(let name): out += "{\"delete\": {\"set\": {\(tableObject), \"name\": \"\(name)\"}}}"
        case .flushSet(let name): out += "{\"flush\": {\"set\": {\(tableObject), \"name\": \"\(name)\"}}}"
        case .addRule(let rule):
            out +=
                "{\"add\": {\"rule\": {\(tableObject), \"chain\": \"\(rule.forward ? forwardChain : chain)\", \"expr\": ["
            switch rule.layer4 {
            case .any: break
            case .proto(let p):
                out += "{\"match\": {\"op\": \"==\", \"left\": {\"meta\": {\"key\": \"l4proto\"}}, "
                out += "\"right\": \"\(p.rawValue)\"}}, "
            case .ports(let p, let ranges):
                out += "{\"match\": {\"op\": \"==\", \"left\": {\"payload\": {\"protocol\": \"\(p.rawValue)\", "
                out += "\"field\": \"dport\"}}, \"right\": {\"set\": ["
                out += ranges.map { $0.lower == $0.upper ? "\($0.lower)" : "{\"range\": [\($0.lower), \($0.upper)]}" }
                    .joined(separator: ", ")
                out += "]}}}, "
            }
            out += "{\"match\": {\"op\": \"==\", \"left\": {\"payload\": {\"protocol\": "
            out += "\"\(rule.family == .v4 ? "ip" : "ip6")\", \"field\": \"saddr\"}}, \"right\": \"@\(rule.set)\"}}, "
            switch rule.verdict {
            case .drop: out += "{\"drop\": null}"
            case .tcpReset: out += "{\"reject\": {\"type\": \"tcp reset\"}}"
            case .portUnreachable:
                out += "{\"reject\": {\"type\": \"\(rule.family == .v4 ? "icmp" : "icmpv6")\", "
                out += "\"expr\": \"port-unreachable\"}}"
            }
            out += "]}}}"
        case .addElements(let set, let elements):
            out += "{\"add\": {\"element\": {\(tableObject), \"name\": \"\(set)\", \"elem\": ["
            for (i, e) in elements.enumerated() {
                if i > 0 { out += ", " }
                if let timeout = e.timeout {
                    out += "{\"elem\": {\"val\": \(e.jsonValue), \"timeout\": \(Self.jsonSeconds(timeout))}}"
                } else {
                    out += e.jsonValue
                }
            }
            out += "]}}}"
        case .deleteElements(let set, let elements):
            out += "{\"delete\": {\"element\": {\(tableObject), \"name\": \"\(set)\", \"elem\": ["
            out += elements.map(\.jsonValue).joined(separator: ", ")
            out += "]}}}"
        }
    }

    /// nft's compound time syntax, as `nft list` prints it: `10m`, `1h30m`, `1s500ms`, `3650d` (at least 1 ms).
    static func textDuration(_ d: Duration) -> String {
        var ms = max(1, milliseconds(min(d, NFTRuleset.maximumTimeout)))
        var out = ""
        for (unit, size) in [("d", Int64(86_400_000)), ("h", 3_600_000), ("m", 60_000), ("s", 1000), ("ms", 1)] {
            if ms >= size {
                out += "\(ms / size)\(unit)"
                ms %= size
            }
        }
        return out
    }

    /// JSON timeouts are whole seconds: rounded up, at least 1.
    static func jsonSeconds(_ d: Duration) -> Int64 {
        max(1, (milliseconds(min(d, NFTRuleset.maximumTimeout)) + 999) / 1000)
    }

    /// Milliseconds in `d`, rounded up.
    static func milliseconds(_ d: Duration) -> Int64 {
        let (s, atto) = d.components
        return s * 1000 + (atto + 999_999_999_999_999) / 1_000_000_000_000_000
    }
}

/// Produces the exact transactions for Portcullis's table: the single place where nftables commands are made.
///
/// ```swift
/// let ruleset = NFTRuleset(configuration: FirewallConfiguration())
/// let sshd = JailFirewall(name: "sshd", ports: .ports([PortRange(22)]))
/// print(ruleset.setUp(jails: [sshd]).text)
/// // add table inet portcullis
/// // add chain inet portcullis bans { type filter hook input priority -1; policy accept; }
/// // flush chain inet portcullis bans
/// // add set inet portcullis addr-set-sshd { type ipv4_addr; flags timeout; }
/// // ...
/// // add rule inet portcullis bans tcp dport { 22 } ip saddr @addr-set-sshd reject with tcp reset
/// ```
public struct NFTRuleset: Hashable, Sendable {
    /// Table, chain and priority.
    public let configuration: FirewallConfiguration

    /// The longest timeout sent; longer bans are capped to it (nft's parser rejects some larger values, and a
    /// century is permanent enough for a timed ban).
    public static let maximumTimeout: Duration = .seconds(36_500 * 86_400)

    /// A ruleset for the configuration's table.
    public init(configuration: FirewallConfiguration) {
        self.configuration = configuration
    }

    /// An empty transaction on this table.
    public func transaction(_ commands: [NFTCommand] = []) -> NFTTransaction {
        NFTTransaction(
            commands: commands, table: configuration.tableName, chain: configuration.chainName,
            priority: configuration.priority)
    }

    /// The forward-hook chain: `CHAIN-forward` (default `bans-forward`).
    public var forwardChainName: String { configuration.chainName + "-forward" }

    /// The set holding a jail's addresses of one family: `addr-set-JAIL` (IPv4) or `addr6-set-JAIL` (IPv6).
    public func setName(jail: String, family: IPAddress.Family) -> String {
        family == .v4 ? "addr-set-\(jail)" : "addr6-set-\(jail)"
    }

    /// The set of one scope (see ``BanScope``): `addr-set-J`, `net-set-J`, `fleet-set-J` (IPv6: `addr6-`, …).
    public func setName(jail: String, family: IPAddress.Family, kind: BanScope.Kind) -> String {
        let v6 = family == .v6 ? "6" : ""
        switch kind {
        case .address: return "addr\(v6)-set-\(jail)"
        case .prefix: return "net\(v6)-set-\(jail)"
        case .fleet: return "fleet\(v6)-set-\(jail)"
        }
    }

    /// The set holding `key`.
    public func setName(_ key: BanKey) -> String {
        setName(jail: key.jail, family: key.address.family, kind: key.scope.kind)
    }

    /// The rules of one jail for one family on its address set, in order.
    public func rules(for jail: JailFirewall, family: IPAddress.Family) -> [NFTRule] {
        rules(for: jail, family: family, kind: .address)
    }

    /// The rules of one jail for one family on the set of `kind`, in order: those of the input chain, then (when
    /// the jail bans forwarded connections, ``JailFirewall/banForward`` `.yes`) the same matches in the forward
    /// chain.
    public func rules(for jail: JailFirewall, family: IPAddress.Family, kind: BanScope.Kind) -> [NFTRule] {
        let input = inputRules(for: jail, family: family, kind: kind)
        guard jail.banForward == .yes else { return input }
        return input
            + input.map {
                NFTRule(layer4: $0.layer4, family: $0.family, set: $0.set, verdict: $0.verdict, forward: true)
            }
    }

    /// The input chain's rules of one jail for one family on the set of `kind` (the same ports and verdicts).
    func inputRules(for jail: JailFirewall, family: IPAddress.Family, kind: BanScope.Kind) -> [NFTRule] {
        let set = setName(jail: jail.name, family: family, kind: kind)
        func verdict(_ p: TransportProtocol?) -> NFTRule.Verdict {
            if jail.blockType == .drop { return .drop }
            return p == .tcp ? .tcpReset : .portUnreachable
        }
        switch jail.ports {
        case .ports(let ranges):
            let protocols: [TransportProtocol] = jail.protocols.isAll ? [.tcp, .udp] : jail.protocols.protocols
            return protocols.map {
                NFTRule(layer4: .ports($0, ranges), family: family, set: set, verdict: verdict($0))
            }
        case .all:
            if jail.protocols.isAll {
                if jail.blockType == .drop {
                    return [NFTRule(layer4: .any, family: family, set: set, verdict: .drop)]
                }
                // TCP gets a reset, everything else port unreachable.
                return [
                    NFTRule(layer4: .proto(.tcp), family: family, set: set, verdict: .tcpReset),
                    NFTRule(layer4: .any, family: family, set: set, verdict: .portUnreachable),
                ]
            }
            return jail.protocols.protocols.map {
                NFTRule(layer4: .proto($0), family: family, set: set, verdict: verdict($0))
            }
        }
    }

    /// The commands that create the table, chain, sets and rules.
    func structure(jails: [JailFirewall]) -> [NFTCommand] {
        [.addTable, .addChain] + forwardChain(jails: jails) + setsAndRules(jails: jails)
    }

    /// The forward chain, when at least one jail bans forwarded connections.
    func forwardChain(jails: [JailFirewall]) -> [NFTCommand] {
        jails.contains { $0.banForward == .yes } ? [.addForwardChain] : []
    }

    /// Every jail's two sets, then every jail's rules.
    func setsAndRules(jails: [JailFirewall]) -> [NFTCommand] {
        var commands: [NFTCommand] = []
        for jail in jails {
            for kind in jail.scopes {
                for family in [IPAddress.Family.v4, .v6] {
                    let name = setName(jail: jail.name, family: family, kind: kind)
                    commands.append(
                        kind == .prefix
                            ? .addIntervalSet(name: name, family: family) : .addSet(name: name, family: family))
                }
            }
        }
        for jail in jails {
            for kind in jail.scopes {
                for family in [IPAddress.Family.v4, .v6] {
                    commands += rules(for: jail, family: family, kind: kind).map { .addRule($0) }
                }
            }
        }
        return commands
    }

    /// Set-up at start (and reload): the table created if missing; the chains recreated (the forward chain only
    /// when a jail bans forwarded connections, so turning it off removes it) (so a changed priority
    /// applies: nft cannot change a base chain's priority in place) with the current rules; sets of jails no
    /// longer configured (`staleSets`) deleted; sets created if missing. Elements of existing sets survive, so
    /// bans that outlived a daemon restart stay in force. All in one transaction: no packet sees a half state.
    public func setUp(jails: [JailFirewall], staleSets: [String] = []) -> NFTTransaction {
        var commands: [NFTCommand] = [
            .addTable, .ensureChain, .flushChain, .deleteChain, .ensureForwardChain, .flushForwardChain,
            .deleteForwardChain, .addChain,
        ]
        commands += forwardChain(jails: jails)
        commands += staleSets.map { .deleteSet(name: $0) }
        commands += setsAndRules(jails: jails)
        return transaction(commands)
    }

    /// Rebuild from nothing: the table (if any) deleted and recreated with every ban, in one transaction.
    /// Used after the ruleset was flushed or the table deleted.
    public func rebuild(jails: [JailFirewall], bans: [BanRequest]) -> NFTTransaction {
        var t = transaction([.addTable, .deleteTable] + structure(jails: jails))
        t.commands += elementCommands(bans, replacing: [])
        return t
    }

    /// Bans in one transaction. Addresses in `replacing` are already in their set: they are deleted and added
    /// again so the new timeout applies on every kernel (older kernels keep the old timeout on re-add).
    public func ban(_ requests: [BanRequest], replacing: Set<BanKey> = []) -> NFTTransaction {
        transaction(elementCommands(requests, replacing: replacing))
    }

    /// Unbans in one transaction. Each address is first added (a no-op when present) then deleted, so an
    /// address the kernel already expired does not make the whole transaction fail.
    public func unban(_ keys: [BanKey]) -> NFTTransaction {
        var groups: [String: [NFTElement]] = [:]
        var order: [String] = []
        var seen: Set<BanKey> = []
        for key in keys where seen.insert(key).inserted {
            let set = setName(key)
            if groups[set] == nil { order.append(set) }
            groups[set, default: []].append(
                NFTElement(address: key.address, timeout: nil, prefixLength: key.scope.prefixLength))
        }
        var commands: [NFTCommand] = []
        for set in order {
            let elements = groups[set]!
            commands.append(.addElements(set: set, elements))
            commands.append(.deleteElements(set: set, elements))
        }
        return transaction(commands)
    }

    /// Removes every ban of a jail (both families).
    public func flush(jail: String) -> NFTTransaction {
        transaction([
            .flushSet(name: setName(jail: jail, family: .v4)), .flushSet(name: setName(jail: jail, family: .v6)),
        ])
    }

    /// Removes Portcullis's table (no error when it is already gone).
    public func tearDown() -> NFTTransaction {
        transaction([.addTable, .deleteTable])
    }

    /// Element commands grouped per set, in first-seen order; duplicate keys keep the last request; expired
    /// (non-positive) timeouts are skipped.
    func elementCommands(_ requests: [BanRequest], replacing: Set<BanKey>) -> [NFTCommand] {
        var latest: [BanKey: Int] = [:]
        for (i, r) in requests.enumerated() { latest[r.key] = i }
        var fresh: [String: [NFTElement]] = [:]
        var again: [String: [NFTElement]] = [:]
        var order: [String] = []
        for (i, r) in requests.enumerated() {
            let key = r.key
            guard latest[key] == i else { continue }
            let timeout: Duration?
            switch r.duration {
            case .permanent: timeout = nil
            case .timeout(let d):
                guard d > .zero else { continue }
                timeout = d
            }
            let set = setName(key)
            if fresh[set] == nil && again[set] == nil { order.append(set) }
            let element = NFTElement(address: r.address, timeout: timeout, prefixLength: r.scope.prefixLength)
            if replacing.contains(key) {
                again[set, default: []].append(element)
            } else {
                fresh[set, default: []].append(element)
            }
        }
        var commands: [NFTCommand] = []
        for set in order {
            if let elements = again[set] {
                // add (no-op if present) + delete + add: the element ends up with exactly the new timeout.
                commands.append(.addElements(set: set, elements))
                commands.append(.deleteElements(set: set, elements))
            }
        }
        for set in order {
            let all = (fresh[set] ?? []) + (again[set] ?? [])
            if !all.isEmpty { commands.append(.addElements(set: set, all)) }
        }
        return commands
    }
}
