import Core
import Firewall
import Fleet
import Jail
import Store

/// What the coordinator needs of fleet sharing: the configuration and how to wake the fleet thread.
struct FleetLink: Sendable {
    var configuration: FleetConfiguration
    var wake: @Sendable () -> Void
}

/// Fleet sharing (`[fleet]`, see `Fleet.FleetService`): the fleet jails' local bans and unbans go to the outbox in
/// the store transaction of the ban itself; the peers' bans (trusted hosts only) go into the jail's fleet sets
/// (`fleet-set-J`, `fleet6-set-J`), apart from its own, so a local unban or `unban --all` is exact; `ignoreip` and
/// the admin guard always win over a peer's ban. An address banned by `escalate-after` hosts is banned on every
/// port (sets of the pseudo jail `fleet-escalated`: every protocol, dropped).
extension BanCoordinator {
    /// The pseudo jail whose sets hold escalated addresses.
    static let escalatedJail = "fleet-escalated"

    /// Installs fleet sharing (before ``start(_:broken:)``).
    func setFleet(_ link: FleetLink?) {
        fleet = link
    }

    /// The firewall jails: fleet jails get their fleet sets, plus the escalation pseudo jail.
    func fleetFirewall(_ setups: [JailSetup]) -> [JailFirewall] {
        guard let fleet else { return setups.compactMap(\.firewall) }
        var out: [JailFirewall] = []
        for s in setups {
            guard var f = s.firewall else { continue }
            if fleet.configuration.jails.contains(s.name) { f.fleetSets = true }
            out.append(f)
        }
        if fleet.configuration.escalateAfter > 0 {
            out.append(JailFirewall(name: Self.escalatedJail, ports: .all, protocols: .all, blockType: .drop))
        }
        return out
    }

    /// Outbox rows for local bans of fleet jails; this host counts towards escalation.
    func fleetOutbox(_ bans: [(String, BanDecision)]) -> [StoreChange] {
        guard let fleet else { return [] }
        var out: [StoreChange] = []
        for (jail, d) in bans where fleet.configuration.jails.contains(jail) {
            out.append(
                .fleetOutbox(FleetOutboxRow(jail: jail, address: d.address, kind: "ban", time: d.start, end: d.end)))
            fleetHosts[d.address, default: [:]][fleet.configuration.name] = .some(d.end)
        }
        return out
    }

    /// Outbox rows for local unbans of fleet jails.
    func fleetOutbox(unbans keys: [BanKey]) -> [StoreChange] {
        guard let fleet else { return [] }
        let now = clock()
        var out: [StoreChange] = []
        for k in keys where k.scope == .address && fleet.configuration.jails.contains(k.jail) {
            out.append(
                .fleetOutbox(FleetOutboxRow(jail: k.jail, address: k.address, kind: "unban", time: now, end: nil)))
            fleetHosts[k.address]?[fleet.configuration.name] = nil
        }
        return out
    }

    /// Applies the peers' records, in order (from the fleet thread).
    public func applyFleet(_ records: [FleetRecord]) async {
        guard let fleet, !stoppedForFleet else { return }
        let now = clock()
        var bans: [BanRequest] = []
        var unbans: [BanKey] = []
        for r in records {
            guard fleet.configuration.trust.contains(r.host) else {
                actionsLog.info(
                    "[\(r.jail)] fleet: ignored \(r.kind.rawValue) of \(r.address) from \(r.host), not in trust")
                continue
            }
            guard fleet.configuration.jails.contains(r.jail), let setup = setups[r.jail] else { continue }
            switch r.kind {
            case .ban:
                if let why = setup.ignore.reason(for: r.address) {
                    actionsLog.warning(
                        "[\(r.jail)] fleet: ban of \(r.address) from \(r.host) not applied: covered by ignoreip (\(why))"
                    )
                    continue
                }
                if let why = adminGuard?.protection(of: r.address) {
                    actionsLog.warning("[\(r.jail)] fleet: ban of \(r.address) from \(r.host) withheld: \(why)")
                    continue
                }
                if let end = r.end, end <= now { continue }
                fleetBans[r.jail, default: [:]][r.address] = (r.host, r.end)
                fleetHosts[r.address, default: [:]][r.host] = .some(r.end)
                if setup.firewall != nil {
                    bans.append(
                        BanRequest(
                            address: r.address, jail: r.jail,
                            duration: r.end.map { .timeout(.seconds($0 - now)) } ?? .permanent,
                            scope: .fleet))
                }
                actionsLog.notice("[\(r.jail)] Fleet Ban \(r.address) (from \(r.host))")
                if let e = escalation(r.address, now: now) { bans.append(e) }
            case .unban:
                fleetHosts[r.address]?[r.host] = nil
                guard fleetBans[r.jail]?[r.address]?.host == r.host else { continue }
                fleetBans[r.jail]?[r.address] = nil
                if setup.firewall != nil { unbans.append(BanKey(address: r.address, jail: r.jail, scope: .fleet)) }
                actionsLog.notice("[\(r.jail)] Fleet Unban \(r.address) (from \(r.host))")
            }
        }
        guard let firewall else { return }
        if !bans.isEmpty {
            do { try await firewall.ban(bans) } catch {
                actionsLog.error("nftables refused \(bans.count) fleet bans: \(error)")
            }
        }
        if !unbans.isEmpty {
            do { try await firewall.unban(unbans) } catch {
                actionsLog.error("nftables refused a fleet unban: \(error)")
            }
        }
    }

    private var stoppedForFleet: Bool { jailNames.isEmpty }

    /// The every-port ban of `address` when enough hosts ban it now; nil otherwise or when already done.
    func escalation(_ address: IPAddress, now: Double) -> BanRequest? {
        guard let fleet, fleet.configuration.escalateAfter > 0, fleetEscalated[address] == nil else { return nil }
        let hosts = (fleetHosts[address] ?? [:]).filter { $0.value.map { $0 > now } ?? true }
        guard hosts.count >= fleet.configuration.escalateAfter else { return nil }
        let ends = hosts.values
        let end: Double? = ends.contains { $0 == nil } ? nil : ends.compactMap { $0 }.max()
        fleetEscalated[address] = .some(end)
        actionsLog.notice(
            "Fleet escalation: \(address) is banned by \(hosts.count) hosts (\(hosts.keys.sorted().joined(separator: ", "))): banned on every port"
        )
        return BanRequest(
            address: address, jail: Self.escalatedJail, duration: end.map { .timeout(.seconds($0 - now)) } ?? .permanent
        )
    }

    /// `status JAIL` entries for the bans from peers: `ADDR (HOST)`.
    public func fleetStatus(jail: String) -> [String] {
        let now = clock()
        return (fleetBans[jail] ?? [:]).filter { $0.value.end.map { $0 > now } ?? true }
            .sorted { $0.key < $1.key }.map { "\($0.key) (\($0.value.host))" }
    }
}
