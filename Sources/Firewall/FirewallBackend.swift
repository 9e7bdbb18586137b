/// What the daemon needs from a firewall: the real one is ``NFTablesFirewall``; tests use
/// `PortcullisTestKit.RecordingFirewall`, which records the exact transactions instead of sending them.
///
/// Every method is one transaction: it applies completely or not at all.
public protocol FirewallBackend: Sendable {
    /// Creates (or updates, on reload) Portcullis's table, chain, sets and rules for these jails. Sets of jails no
    /// longer listed are removed; bans in the sets of listed jails stay (they outlive daemon restarts), and bans
    /// the backend applied earlier that the kernel lost are put back.
    func setUp(jails: [JailFirewall]) async throws(FirewallError)

    /// Bans every request in one transaction. A ban of an already banned address replaces its timeout.
    func ban(_ requests: [BanRequest]) async throws(FirewallError)

    /// Unbans in one transaction; addresses that are not banned are ignored.
    func unban(_ keys: [BanKey]) async throws(FirewallError)

    /// Removes every ban of one jail.
    func flush(jail: String) async throws(FirewallError)

    /// The bans of one jail as the firewall holds them, with remaining timeouts.
    func list(jail: String) async throws(FirewallError) -> [BannedEntry]

    /// Stops: removes the table unless configured to keep it.
    func tearDown() async throws(FirewallError)
}
