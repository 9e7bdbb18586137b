import Core

/// The `[fleet]` section of the main configuration (portcullis.conf, or fail2ban.local on a fail2ban tree):
///
/// ```ini
/// [fleet]
/// url = postgresql://portcullis@/portcullis?host=/run/postgresql
/// name = web1
/// jails = sshd, postfix
/// trust = web2, web3
/// escalate-after = 3
/// password-file = /etc/portcullis/fleet.password
/// ```
///
/// `url` is a libpq URI or conninfo (TLS options such as `sslmode=verify-full&sslrootcert=…` go in it); the
/// password is read from `password-file` (mode 0600, never the world-readable tree), or libpq's own ~/.pgpass.
public struct FleetConfiguration: Sendable, Hashable {
    /// libpq URI or conninfo.
    public var url: String
    /// This host's name in the fleet.
    public var name: String
    /// The jails that share their bans and apply the peers'.
    public var jails: [String]
    /// The peers whose bans are applied here.
    public var trust: [String]
    /// An address banned by this many hosts is banned on every port (0 = never).
    public var escalateAfter: Int
    /// The file holding the password, nil for none.
    public var passwordFile: String?

    /// A configuration.
    public init(
        url: String, name: String, jails: [String], trust: [String], escalateAfter: Int = 0, passwordFile: String? = nil
    ) {
        self.url = url
        self.name = name
        self.jails = jails
        self.trust = trust
        self.escalateAfter = escalateAfter
        self.passwordFile = passwordFile
    }

    /// Reads `fleet.KEY` values (as `MainConfiguration.values` holds them, `fleet.@KEY` their place); nil when
    /// there is no `[fleet]` section or it has no `url`. Errors name the file, line and key.
    public static func parse(_ values: [String: String]) throws(FleetError) -> FleetConfiguration? {
        func get(_ key: String) -> String? {
            values["fleet." + key].map { trim($0) }.flatMap { $0.isEmpty ? nil : $0 }
        }
        // An error at the key's place, or prefixed with the section when the value has none.
        func error(_ key: String, _ text: String) -> FleetError {
            values["fleet.@" + key].map { FleetError(text, at: $0) } ?? FleetError("[fleet] " + text)
        }
        guard let url = get("url") else {
            if values.keys.contains(where: { $0.hasPrefix("fleet.") && !$0.hasPrefix("fleet.@") }) {
                throw FleetError(
                    "[fleet] has no url: write e.g. url = postgresql://portcullis@/portcullis?host=/run/postgresql")
            }
            return nil
        }
        guard let name = get("name") else {
            throw error("url", "[fleet] needs name = THIS-HOST (how the peers' trust lists call it)")
        }
        func list(_ key: String) -> [String] {
            (get(key) ?? "").split(whereSeparator: { $0 == "," || $0 == " " || $0 == "\t" || $0 == "\n" }).map(
                String.init)
        }
        let ok = { (s: String) in !s.isEmpty && s.utf8.count <= 64 && s.utf8.allSatisfy { $0 > 0x20 && $0 < 0x7F } }
        guard ok(name) else { throw error("name", "name '\(name)': 1-64 printable characters, no spaces") }
        var escalate = 0
        if let text = get("escalate-after") {
            guard let n = Int(text), n >= 0, n <= 100_000 else {
                throw error(
                    "escalate-after", "escalate-after must be a whole number of hosts (0 = never), not '\(text)'")
            }
            escalate = n
        }
        return FleetConfiguration(
            url: url, name: name, jails: list("jails"), trust: list("trust"), escalateAfter: escalate,
            passwordFile: get("password-file"))
    }
}

/// One ban or unban as shared in the fleet table.
public struct FleetRecord: Sendable, Hashable {
    /// A ban or an unban.
    public enum Kind: String, Sendable, Hashable {
        /// Banned by `host`.
        case ban
        /// Lifted by `host`.
        case unban
    }

    /// The table's id (0 before it is written).
    public var id: Int64
    /// The host that banned.
    public var host: String
    /// Its jail.
    public var jail: String
    /// The address.
    public var address: IPAddress
    /// Ban or unban.
    public var kind: Kind
    /// When (epoch seconds).
    public var time: Double
    /// When the ban ends (epoch seconds), nil = permanent.
    public var end: Double?

    /// A record.
    public init(id: Int64 = 0, host: String, jail: String, address: IPAddress, kind: Kind, time: Double, end: Double?) {
        self.id = id
        self.host = host
        self.jail = jail
        self.address = address
        self.kind = kind
        self.time = time
        self.end = end
    }
}

/// `text` without leading and trailing blanks.
func trim(_ text: String) -> String {
    let blank: (Character) -> Bool = { $0 == " " || $0 == "\t" || $0 == "\n" || $0 == "\r" }
    return String(text.drop(while: blank).reversed().drop(while: blank).reversed())
}
