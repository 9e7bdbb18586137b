import Core
import Firewall
import Jail
import Store

/// Prefix escalation (jail options `prefix4`, `prefix6`, `prefixbans`; see `Jail.PrefixPolicy`): when enough
/// addresses of one network were banned within `findtime`, the network itself is banned in the jail's interval
/// sets (`net-set-J`, `net6-set-J`), stored in `prefix_bans`, shown by `status JAIL` and lifted with
/// `set JAIL unbanip NETWORK/LEN`. Command actions are not run for prefix bans (their `<ip>` is one address).
extension BanCoordinator {
    /// After `decision` (a ban in `jail` decided at `now`): asks the jail whether its prefix is due, and if so
    /// notes the prefix ban at once (later failures in the batch see it) and queues it for ``apply``.
    func escalate(jail: String, after decision: BanDecision, now: Double) {
        guard let p = states[jail]?.escalation(after: decision, now: now) else { return }
        states[jail]?.noteBanned(prefix: p.prefix, until: p.end)
        prefixDecisions.append((jail, p))
    }

    /// The firewall requests, store changes and log lines of the prefix bans decided since the last call.
    func takePrefixDecisions() -> (requests: [BanRequest], stored: [StoreChange], lines: [String]) {
        var requests: [BanRequest] = []
        var stored: [StoreChange] = []
        var lines: [String] = []
        for (jail, p) in prefixDecisions {
            guard let setup = setups[jail] else { continue }
            if setup.firewall?.prefixSets == true {
                requests.append(
                    BanRequest(
                        address: p.prefix.network, jail: jail,
                        duration: p.duration.map { .timeout(.seconds($0)) } ?? .permanent,
                        scope: .prefix(p.prefix.prefixLength)))
            }
            stored.append(
                .prefixBan(
                    PrefixBanRecord(
                        jail: jail, prefix: p.prefix, timeOfBan: p.start, banTime: p.duration ?? -1,
                        addresses: p.addresses)))
            let members = p.addresses.map(\.description).joined(separator: ", ")
            lines.append(
                "[\(jail)] Ban \(p.prefix) (prefix: \(p.addresses.count) addresses banned within findtime: \(members))")
        }
        prefixDecisions = []
        return (requests, stored, lines)
    }

    /// After the firewall call: the prefix bans among `requests` are noted again (a reload may have rebuilt the
    /// jail's state while the call was in flight).
    func notePrefixBansApplied(_ requests: [BanRequest]) {
        for r in requests {
            guard case .prefix(let length) = r.scope else { continue }
            let end: Double?
            switch r.duration {
            case .permanent: end = nil
            case .timeout(let d): end = clock() + Double(d.components.seconds)
            }
            let prefix = Subnet(address: r.address, prefixLength: length)
            if states[r.jail]?.bannedPrefix(covering: r.address, now: clock()) == nil {
                states[r.jail]?.noteBanned(prefix: prefix, until: end)
            }
        }
    }

    /// Restores the prefix bans of `jails` still in force from the store (one transaction).
    @discardableResult
    func restorePrefixBans(jails: Set<String>) async -> Int {
        guard let store, !jails.isEmpty else { return 0 }
        let now = clock()
        let records: [PrefixBanRecord]
        do {
            records = try store.activePrefixBans(now: now)
        } catch {
            actionsLog.error("cannot read prefix bans from the database: \(error)")
            return 0
        }
        var requests: [BanRequest] = []
        var restored = 0
        for r in records where jails.contains(r.jail) {
            guard let setup = setups[r.jail] else { continue }
            states[r.jail]?.noteBanned(prefix: r.prefix, until: r.end)
            restored += 1
            actionsLog.notice("[\(r.jail)] Restore Ban \(r.prefix) (prefix)")
            if setup.firewall?.prefixSets == true {
                requests.append(
                    BanRequest(
                        address: r.prefix.network, jail: r.jail,
                        duration: r.end.map { .timeout(.seconds($0 - now)) } ?? .permanent,
                        scope: .prefix(r.prefix.prefixLength)))
            } else if setup.firewall != nil {
                actionsLog.warning(
                    "[\(r.jail)] prefix ban \(r.prefix) is in the database but the jail no longer bans prefixes (prefixbans = 0): not applied in nftables"
                )
            }
        }
        if let firewall, !requests.isEmpty {
            do {
                try await firewall.ban(requests)
            } catch {
                actionsLog.error("cannot restore \(requests.count) prefix bans in nftables: \(error)")
            }
        }
        return restored
    }

    /// Lifts the ban of `prefix` in `jail` (every jail when nil); returns how many were lifted.
    public func unban(prefix: Subnet, jail: String? = nil) async -> Int {
        var keys: [BanKey] = []
        for name in jail.map({ [$0] }) ?? jailNames where states[name]?.noteUnbanned(prefix: prefix) == true {
            keys.append(BanKey(address: prefix.network, jail: name, scope: .prefix(prefix.prefixLength)))
        }
        await liftPrefixes(keys)
        return keys.count
    }

    /// `unban --all`: every prefix ban of `jail` (or every jail); returns how many were lifted.
    func unbanAllPrefixes(jail: String?) async -> Int {
        var keys: [BanKey] = []
        for name in jail.map({ [$0] }) ?? jailNames {
            for p in states[name]?.unbanAllPrefixes() ?? [] {
                keys.append(BanKey(address: p.network, jail: name, scope: .prefix(p.prefixLength)))
            }
        }
        await liftPrefixes(keys)
        return keys.count
    }

    private func liftPrefixes(_ keys: [BanKey]) async {
        guard !keys.isEmpty else { return }
        writer?.submit(
            keys.map {
                .prefixUnban(
                    prefix: Subnet(address: $0.address, prefixLength: $0.scope.prefixLength ?? 128), jail: $0.jail)
            })
        if let firewall {
            let native = keys.filter { setups[$0.jail]?.firewall?.prefixSets == true }
            if !native.isEmpty {
                do { try await firewall.unban(native) } catch {
                    actionsLog.error("nftables refused a prefix unban: \(error)")
                }
            }
        }
        for k in keys {
            actionsLog.notice("[\(k.jail)] Unban \(k.address)/\(k.scope.prefixLength ?? 128) (prefix)")
        }
    }

    /// Housekeeping: prefix bans of `jail` that ended (the kernel already dropped them) are logged.
    func endPrefixBans(jail: String, now: Double) {
        for p in states[jail]?.purgePrefixes(now: now) ?? [] {
            actionsLog.notice("[\(jail)] Unban \(p) (prefix)")
        }
    }

    /// The banned prefixes of `jail` (every jail when nil) that cover `address` now, as (jail, prefix).
    public func prefixBans(covering address: IPAddress, jail: String? = nil) -> [(jail: String, prefix: Subnet)] {
        let now = clock()
        var out: [(jail: String, prefix: Subnet)] = []
        for name in jail.map({ [$0] }) ?? jailNames {
            if let p = states[name]?.bannedPrefix(covering: address, now: now) { out.append((name, p)) }
        }
        return out
    }

    /// The prefixes `jail` bans now (for `status JAIL`).
    public func bannedPrefixes(jail: String) -> [Subnet] {
        states[jail]?.bannedPrefixes(now: clock()) ?? []
    }
}
