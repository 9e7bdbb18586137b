import Core

/// A transport protocol that has ports and can be matched by a rule.
public enum TransportProtocol: String, Hashable, Sendable, CaseIterable, Comparable {
    /// TCP: banned packets are answered with a TCP reset when the block type is `reject`.
    case tcp
    /// UDP.
    case udp
    /// SCTP.
    case sctp
    /// DCCP.
    case dccp

    /// Orders as declared (tcp, udp, sctp, dccp), for stable command text.
    public static func < (a: Self, b: Self) -> Bool {
        allCases.firstIndex(of: a)! < allCases.firstIndex(of: b)!
    }
}

/// Which protocols a jail's rule matches: fail2ban's `protocol = tcp | udp | all` (a comma list is accepted too).
public struct ProtocolSelection: Hashable, Sendable, CustomStringConvertible {
    /// The protocols, sorted; empty means every protocol (`all`).
    public let protocols: [TransportProtocol]

    /// Every protocol (`protocol = all`).
    public static let all = ProtocolSelection(protocols: [])
    /// TCP only, fail2ban's default.
    public static let tcp = ProtocolSelection(protocols: [.tcp])
    /// UDP only.
    public static let udp = ProtocolSelection(protocols: [.udp])

    /// A selection of the given protocols; an empty list means all.
    public init(protocols: [TransportProtocol]) {
        self.protocols = Array(Set(protocols)).sorted()
    }

    /// True when every protocol is matched.
    public var isAll: Bool { protocols.isEmpty }

    /// Parses `tcp`, `udp`, `sctp`, `dccp`, `all`, or a comma/space list such as `tcp,udp`.
    ///
    /// - Throws: ``FirewallError`` (`.invalidProtocol`) naming the jail and the value.
    public init(parsing text: String, jail: String) throws(FirewallError) {
        var list: [TransportProtocol] = []
        let words = text.lowercased().split(whereSeparator: { $0 == "," || $0 == " " || $0 == "\t" })
        if words.isEmpty {
            self = .tcp
            return
        }
        for word in words {
            if word == "all" {
                self = .all
                return
            }
            guard let p = TransportProtocol(rawValue: String(word)) else {
                throw FirewallError(
                    code: .invalidProtocol, jail: jail,
                    message: "jail '\(jail)': unknown protocol '\(word)'; use tcp, udp, sctp, dccp or all")
            }
            list.append(p)
        }
        self.init(protocols: list)
    }

    /// `all` or the comma-separated list.
    public var description: String { isAll ? "all" : protocols.map(\.rawValue).joined(separator: ",") }
}

/// An inclusive port range; a single port has `lower == upper`.
public struct PortRange: Hashable, Sendable, Comparable, CustomStringConvertible {
    /// First port.
    public let lower: UInt16
    /// Last port (inclusive).
    public let upper: UInt16

    /// A range; callers guarantee `lower <= upper` (``PortResolver`` checks it).
    public init(_ lower: UInt16, _ upper: UInt16) {
        self.lower = min(lower, upper)
        self.upper = max(lower, upper)
    }

    /// A single port.
    public init(_ port: UInt16) { self.init(port, port) }

    /// Orders by first port, then last port.
    public static func < (a: Self, b: Self) -> Bool { (a.lower, a.upper) < (b.lower, b.upper) }

    /// nft syntax: `22` or `1000-2000`.
    public var description: String { lower == upper ? "\(lower)" : "\(lower)-\(upper)" }
}

/// The ports a jail's rule covers.
public enum PortSpec: Hashable, Sendable, CustomStringConvertible {
    /// Every port and protocol the selection allows (fail2ban's `allports` actions).
    case all
    /// These ports (fail2ban's `multiport` actions); never empty.
    case ports([PortRange])

    /// `all` or the nft set body, e.g. `22, 1000-2000`.
    public var description: String {
        switch self {
        case .all: return "all"
        case .ports(let ranges): return ranges.map(\.description).joined(separator: ", ")
        }
    }
}

/// What happens to a banned packet.
public enum BlockType: String, Hashable, Sendable {
    /// Refuse: TCP gets a reset, everything else ICMP (v6) port unreachable — like fail2ban's nftables action.
    case reject
    /// Drop silently.
    case drop

    /// Parses fail2ban's `blocktype`: `reject` (also iptables' `REJECT --reject-with …`) or `drop`/`DROP`.
    ///
    /// - Throws: ``FirewallError`` (`.invalidBlockType`) naming the jail and the value.
    public init(parsing text: String, jail: String) throws(FirewallError) {
        let word = text.lowercased().split(separator: " ").first.map(String.init) ?? "reject"
        switch word {
        case "reject": self = .reject
        case "drop": self = .drop
        default:
            throw FirewallError(
                code: .invalidBlockType, jail: jail,
                message: "jail '\(jail)': unknown blocktype '\(text)'; use reject or drop")
        }
    }
}

/// Whether a jail's bans also block forwarded connections (the host routes, or Docker publishes ports): the
/// jail option `banforward`.
public enum ForwardBanning: String, Hashable, Sendable {
    /// On when the host forwards (`net.ipv4.ip_forward` or `net.ipv6.conf.all.forwarding` is 1 in the
    /// firewall's network namespace, or Docker's chains are loaded), decided when the firewall is set up.
    case auto
    /// Always: a forward-hook chain with the same matches as the input chain.
    case yes
    /// Never: only connections to the host itself are refused.
    case no

    /// Parses `auto`, `yes`/`true`/`on`/`1` or `no`/`false`/`off`/`0` (empty = auto).
    ///
    /// - Throws: ``FirewallError`` (`.invalidForwardBanning`) naming the jail and the value.
    public init(parsing text: String, jail: String) throws(FirewallError) {
        switch text.strippingEdges(" \t").lowercased() {
        case "", "auto": self = .auto
        case "yes", "true", "on", "1": self = .yes
        case "no", "false", "off", "0": self = .no
        default:
            throw FirewallError(
                code: .invalidForwardBanning, jail: jail,
                message: "jail '\(jail)': banforward must be auto, yes or no, not '\(text)'")
        }
    }
}

/// Whether the host forwards traffic, as read in the firewall's network namespace.
public struct ForwardingState: Hashable, Sendable, CustomStringConvertible {
    /// `net.ipv4.ip_forward` is 1.
    public var ipv4: Bool
    /// `net.ipv6.conf.all.forwarding` is 1.
    public var ipv6: Bool
    /// Docker's chains (`DOCKER`, `DOCKER-USER`, `DOCKER-FORWARD`) are loaded.
    public var docker: Bool

    /// Creates a state.
    public init(ipv4: Bool, ipv6: Bool, docker: Bool) {
        self.ipv4 = ipv4
        self.ipv6 = ipv6
        self.docker = docker
    }

    /// True when anything is forwarded: `banforward = auto` then means yes.
    public var forwards: Bool { ipv4 || ipv6 || docker }

    /// Reads the two sysctls under `/proc/sys` of the calling thread's network namespace, and looks for Docker's
    /// chains in the text of `nft list chains` (nil when unknown).
    public static func read(chainsListing: String?) -> ForwardingState {
        func sysctl(_ path: String) -> Bool {
            Syscall.readFile(path).map { String(decoding: $0, as: UTF8.self).strippingEdges(" \t\n") } == "1"
        }
        return ForwardingState(
            ipv4: sysctl("/proc/sys/net/ipv4/ip_forward"), ipv6: sysctl("/proc/sys/net/ipv6/conf/all/forwarding"),
            docker: chainsListing.map(hasDockerChains) ?? false)
    }

    /// True when a `list chains` listing holds one of Docker's chains.
    public static func hasDockerChains(_ listing: String) -> Bool {
        listing.split(separator: "\n").contains { line in
            let t = line.strippingEdges(" \t")
            return t == "chain DOCKER {" || t == "chain DOCKER-USER {" || t == "chain DOCKER-FORWARD {"
        }
    }

    /// What was found, e.g. `net.ipv4.ip_forward = 1, net.ipv6.conf.all.forwarding = 0, no Docker chains`.
    public var description: String {
        "net.ipv4.ip_forward = \(ipv4 ? 1 : 0), net.ipv6.conf.all.forwarding = \(ipv6 ? 1 : 0), "
            + (docker ? "Docker's chains loaded" : "no Docker chains")
    }
}

/// One jail's firewall rule: which packets from its banned addresses are blocked and how.
///
/// ```swift
/// let sshd = JailFirewall(name: "sshd", ports: .ports([PortRange(22)]), protocols: .tcp, blockType: .reject)
/// ```
public struct JailFirewall: Hashable, Sendable {
    /// The jail name; also names its sets (`addr-set-NAME`, `addr6-set-NAME`).
    public let name: String
    /// The ports covered (`.all` for allports).
    public let ports: PortSpec
    /// The protocols covered.
    public let protocols: ProtocolSelection
    /// Reject or drop.
    public let blockType: BlockType
    /// Whether forwarded connections are refused too; the backend turns `.auto` into `.yes` or `.no` at set-up
    /// (``resolved(_:)``), and the ruleset treats an unresolved `.auto` as `.no`.
    public let banForward: ForwardBanning
    /// The jail also has interval sets for prefix bans (`net-set-NAME`, `net6-set-NAME`), see ``BanScope/prefix(_:)``.
    public var prefixSets: Bool = false
    /// The jail also has sets for bans applied from fleet peers (`fleet-set-NAME`, `fleet6-set-NAME`).
    public var fleetSets: Bool = false

    /// Creates a jail rule.
    public init(
        name: String, ports: PortSpec, protocols: ProtocolSelection = .tcp, blockType: BlockType = .reject,
        banForward: ForwardBanning = .auto, prefixSets: Bool = false, fleetSets: Bool = false
    ) {
        self.name = name
        self.ports = ports
        self.protocols = protocols
        self.blockType = blockType
        self.banForward = banForward
        self.prefixSets = prefixSets
        self.fleetSets = fleetSets
    }

    /// The rule with `banforward = auto` decided by the host's forwarding state.
    public func resolved(_ state: ForwardingState) -> JailFirewall {
        guard banForward == .auto else { return self }
        return JailFirewall(
            name: name, ports: ports, protocols: protocols, blockType: blockType,
            banForward: state.forwards ? .yes : .no, prefixSets: prefixSets, fleetSets: fleetSets)
    }

    /// The scopes this jail has sets for, `.address` first.
    public var scopes: [BanScope.Kind] {
        [.address] + (prefixSets ? [.prefix] : []) + (fleetSets ? [.fleet] : [])
    }
}

/// How long a ban lasts from the moment it is applied.
public enum BanDuration: Hashable, Sendable {
    /// Until unbanned (`bantime = -1`): a set element without timeout.
    case permanent
    /// Expires in the kernel after this long, even while the daemon is down.
    case timeout(Duration)

    /// From a fail2ban-style ban time in seconds: negative (or NaN) means permanent (`bantime = -1`).
    ///
    /// ```swift
    /// BanDuration(banTime: 600)   // .timeout(.seconds(600))
    /// BanDuration(banTime: -1)    // .permanent
    /// ```
    public init(banTime seconds: Double) {
        if seconds < 0 || seconds.isNaN {
            self = .permanent
        } else {
            let ms = (seconds * 1000).rounded(.up)
            self = .timeout(.milliseconds(ms >= 9.2e18 ? Int64.max : Int64(ms)))
        }
    }
}

/// A request to ban one address in one jail.
public struct BanRequest: Hashable, Sendable {
    /// The address to ban.
    public let address: IPAddress
    /// The jail whose rule applies.
    public let jail: String
    /// How long from now; for a restored ban pass the time remaining.
    public let duration: BanDuration
    /// Which of the jail's sets: the address itself (default), a whole prefix, or a ban from a fleet peer.
    public let scope: BanScope

    /// Creates a ban request.
    public init(address: IPAddress, jail: String, duration: BanDuration, scope: BanScope = .address) {
        self.address = scope.normalise(address)
        self.jail = jail
        self.duration = duration
        self.scope = scope
    }

    /// The key of this ban.
    public var key: BanKey { BanKey(address: address, jail: jail, scope: scope) }
}

/// An address in a jail, used for unbanning.
public struct BanKey: Hashable, Sendable {
    /// The address.
    public let address: IPAddress
    /// The jail.
    public let jail: String
    /// Which of the jail's sets.
    public let scope: BanScope

    /// Creates a key.
    public init(address: IPAddress, jail: String, scope: BanScope = .address) {
        self.address = scope.normalise(address)
        self.jail = jail
        self.scope = scope
    }
}

/// A ban read back from the kernel.
public struct BannedEntry: Hashable, Sendable {
    /// The banned address.
    public let address: IPAddress
    /// The jail.
    public let jail: String
    /// The timeout it was added with; nil for a permanent ban.
    public let timeout: Duration?
    /// Time left before the kernel removes it; nil for a permanent ban.
    public let remaining: Duration?

    /// Creates an entry.
    public init(address: IPAddress, jail: String, timeout: Duration?, remaining: Duration?) {
        self.address = address
        self.jail = jail
        self.timeout = timeout
        self.remaining = remaining
    }
}

/// Where and how Portcullis keeps its rules.
public struct FirewallConfiguration: Hashable, Sendable {
    /// Which syntax the commands are sent in.
    public enum Syntax: String, Hashable, Sendable {
        /// nft's text language (what `nft -f` reads).
        case text
        /// libnftables JSON (what `nft -j -f` reads).
        case json
    }

    /// Portcullis's own table in family `inet` (default `portcullis`).
    public var tableName: String
    /// The base chain in that table, hooked at `input` (default `bans`).
    public var chainName: String
    /// Hook priority; default -1 (`filter - 1`) so the bans apply before any admin filter chain.
    public var priority: Int
    /// Leave the table and its bans in place at ``FirewallBackend/tearDown()`` (default false).
    public var keepTableOnStop: Bool
    /// Command syntax sent to libnftables.
    public var syntax: Syntax
    /// Named network namespace (`/run/netns/NAME`) to work in; nil for the daemon's own.
    public var networkNamespace: String?
    /// How often the backend checks that its table and chain still exist (default 250 ms; a cheap chain listing).
    public var healthCheckInterval: Duration
    /// How often it also checks every set and rule (default 5 s; libnftables fetches the set elements for this,
    /// so it costs more with many bans).
    public var fullCheckInterval: Duration
    /// Follow the kernel's change notifications (default on): bans someone else deletes (`nft flush set`,
    /// `nft delete element`) are put back at once, and a deleted table, chain, set or rule is rebuilt at once
    /// rather than at the next check.
    public var followsChanges: Bool

    /// Creates a configuration; every parameter has a default.
    public init(
        tableName: String = "portcullis", chainName: String = "bans", priority: Int = -1,
        keepTableOnStop: Bool = false, syntax: Syntax = .text, networkNamespace: String? = nil,
        healthCheckInterval: Duration = .milliseconds(250), fullCheckInterval: Duration = .seconds(5),
        followsChanges: Bool = true
    ) {
        self.followsChanges = followsChanges
        self.tableName = tableName
        self.chainName = chainName
        self.priority = priority
        self.keepTableOnStop = keepTableOnStop
        self.syntax = syntax
        self.networkNamespace = networkNamespace
        self.healthCheckInterval = healthCheckInterval
        self.fullCheckInterval = fullCheckInterval
    }
}

/// Something the backend did on its own, for the daemon's log.
public enum FirewallEvent: Hashable, Sendable, CustomStringConvertible {
    /// Milliseconds with one decimal.
    static func ms(_ d: Duration) -> Double {
        let ms = Double(d.components.seconds) * 1000 + Double(d.components.attoseconds) / 1e15
        return (ms * 10).rounded() / 10
    }

    /// The table had disappeared (ruleset flushed or table deleted) and was rebuilt with this many bans; `took` is
    /// the time of the rebuilding transaction.
    case restored(bans: Int, took: Duration)
    /// Rebuilding failed; the backend retries at the next check.
    case restoreFailed(String)
    /// Someone else deleted these still-active bans of `jail` (`nft flush set`, `nft delete element`); they were
    /// put back in one transaction that took `took`. `by` is the committing process id when the kernel said.
    case refilled(jail: String, addresses: [IPAddress], by: Int32?, took: Duration)
    /// The kernel dropped change notifications (socket buffer full); every active ban was added again.
    case refilledAfterOverrun(bans: Int, took: Duration)
    /// Change notifications are not available: deletions of single bans are not noticed.
    case monitorUnavailable(String)
    /// Another process changed the ruleset while a large own transaction ran without notifications; the table is
    /// checked and every active ban added again.
    case missedWhileQuiet

    /// One line for the log.
    public var description: String {
        switch self {
        case .restored(let bans, let took):
            return "table was missing or damaged (ruleset flushed?); rebuilt with \(bans) bans in \(Self.ms(took)) ms"
        case .restoreFailed(let why):
            return "table was missing or damaged and could not be rebuilt (retrying): \(why)"
        case .refilled(let jail, let addresses, let pid, let took):
            let shown = addresses.prefix(10).map(\.description).joined(separator: ", ")
            let more = addresses.count > 10 ? " and \(addresses.count - 10) more" : ""
            let who = pid.map { " by process \($0)" } ?? ""
            return
                "[\(jail)] \(addresses.count) active bans were deleted from the kernel\(who); restored in \(Self.ms(took)) ms: \(shown)\(more)"
        case .refilledAfterOverrun(let bans, let took):
            return
                "change notifications were lost (buffer full); re-added all \(bans) active bans in \(Self.ms(took)) ms"
        case .monitorUnavailable(let why):
            return "cannot follow nftables changes, deleted bans are noticed only when the table is damaged: \(why)"
        case .missedWhileQuiet:
            return
                "another process changed the ruleset during a large transaction; checking the table and re-adding all bans"
        }
    }
}

/// A firewall error: a code, a message for a person, and the jail or libnftables error when there is one.
public struct FirewallError: Error, Hashable, Sendable, CustomStringConvertible {
    /// What went wrong.
    public enum Code: String, Hashable, Sendable {
        /// A jail or table name that cannot be an nftables identifier.
        case invalidName
        /// A ban, unban or list for a jail that was not set up.
        case unknownJail
        /// A port name that is not in the services file.
        case unknownPort
        /// A malformed port number or range.
        case invalidPort
        /// An unknown protocol.
        case invalidProtocol
        /// An unknown blocktype.
        case invalidBlockType
        /// A `banforward` value other than auto, yes or no.
        case invalidForwardBanning
        /// A banaction Portcullis cannot map to nftables.
        case unsupportedBanAction
        /// The services file cannot be read.
        case servicesFile
        /// The network namespace cannot be opened or entered.
        case networkNamespace
        /// libnftables rejected a command.
        case nftables
        /// The backend has been shut down.
        case stopped
        /// Kernel output could not be understood.
        case unexpectedOutput
    }

    /// What went wrong.
    public let code: Code
    /// The jail concerned, if any.
    public let jail: String?
    /// A sentence for a person: what is wrong and what to do.
    public let message: String
    /// The libnftables error behind it, if any.
    public let underlying: NFTError?

    /// Creates an error.
    public init(code: Code, jail: String? = nil, message: String, underlying: NFTError? = nil) {
        self.code = code
        self.jail = jail
        self.message = message
        self.underlying = underlying
    }

    /// The message, followed by the libnftables error when there is one.
    public var description: String {
        guard let underlying else { return message }
        return "\(message): \(underlying.description)"
    }
}

/// Checks that `name` can be used in an nftables identifier: letters, digits, `_`, `.`, `-`; 1…200 characters.
func validateIdentifier(_ name: String, what: String, jail: String? = nil) throws(FirewallError) {
    let ok =
        !name.isEmpty && name.utf8.count <= 200
        && name.utf8.allSatisfy { b in
            (b >= 0x30 && b <= 0x39) || (b >= 0x41 && b <= 0x5A) || (b >= 0x61 && b <= 0x7A) || b == 0x5F
                || b == 0x2E || b == 0x2D
        }
    guard ok else {
        throw FirewallError(
            code: .invalidName, jail: jail,
            message:
                "\(what) '\(name)' cannot name an nftables object; use 1-200 letters, digits, '_', '.' or '-'")
    }
}
