import Core

/// A prefix ban as persisted (table `prefix_bans`, schema version 3): a whole network banned by a jail after
/// several of its addresses were (IPv6 /64 escalation).
public struct PrefixBanRecord: Sendable, Hashable {
    /// The jail.
    public var jail: String
    /// The network.
    public var prefix: Subnet
    /// When the ban started (epoch seconds).
    public var timeOfBan: Double
    /// Length in seconds; negative = permanent.
    public var banTime: Double
    /// The addresses whose bans led to it.
    public var addresses: [IPAddress]

    /// A record.
    public init(jail: String, prefix: Subnet, timeOfBan: Double, banTime: Double, addresses: [IPAddress] = []) {
        self.jail = jail
        self.prefix = prefix
        self.timeOfBan = timeOfBan
        self.banTime = banTime
        self.addresses = addresses
    }

    /// When it ends; nil when permanent.
    public var end: Double? { banTime < 0 ? nil : timeOfBan + banTime }
}

extension BanStore {
    /// Version 3: prefix bans. Older files gain the table; nothing else changes.
    static func migrateToVersion3(_ db: Database) throws(DatabaseError) {
        do {
            try db.transaction {
                try db.execute(
                    """
                    CREATE TABLE IF NOT EXISTS prefix_bans (
                        id INTEGER PRIMARY KEY,
                        jail TEXT NOT NULL,
                        prefix TEXT NOT NULL,
                        time_of_ban REAL NOT NULL,
                        ban_time REAL NOT NULL,
                        addresses TEXT NOT NULL DEFAULT '[]',
                        active INTEGER NOT NULL DEFAULT 1
                    );
                    CREATE INDEX IF NOT EXISTS prefix_bans_active ON prefix_bans(active, jail);
                    PRAGMA user_version = 3;
                    """)
            }
        } catch let error as DatabaseError {
            throw error
        } catch {
            throw DatabaseError(code: 1, message: "\(error)")
        }
    }

    static func insertPrefixBan(_ ban: PrefixBanRecord, _ db: Database) throws(DatabaseError) {
        try endPrefixBan(ban.prefix, jail: ban.jail, db)
        try db.run(
            "INSERT INTO prefix_bans (jail, prefix, time_of_ban, ban_time, addresses, active) VALUES (?, ?, ?, ?, ?, 1)",
            [
                .text(ban.jail), .text(Self.prefixText(ban.prefix)), .real(ban.timeOfBan),
                .real(ban.banTime < 0 ? -1 : ban.banTime),
                .text(JSON.array(ban.addresses.map { .string($0.description) }).encoded()),
            ])
    }

    static func endPrefixBan(_ prefix: Subnet, jail: String?, _ db: Database) throws(DatabaseError) {
        if let jail {
            try db.run(
                "UPDATE prefix_bans SET active = 0 WHERE active = 1 AND prefix = ? AND jail = ?",
                [.text(prefixText(prefix)), .text(jail)])
        } else {
            try db.run("UPDATE prefix_bans SET active = 0 WHERE active = 1 AND prefix = ?", [.text(prefixText(prefix))])
        }
    }

    /// Always `NETWORK/LEN`, so a row is found again whatever the length.
    static func prefixText(_ p: Subnet) -> String { "\(p.network)/\(p.prefixLength)" }

    /// Every prefix ban in force at `now`, oldest first. Rows that do not parse (edited by hand) are skipped; times
    /// are range-checked like the bans'.
    public func activePrefixBans(now: Double) throws(DatabaseError) -> [PrefixBanRecord] {
        let rows: [PrefixBanRecord?] = try read { db throws(DatabaseError) in
            try db.query(
                """
                SELECT jail, prefix, time_of_ban, ban_time, addresses FROM prefix_bans
                WHERE active = 1 AND (ban_time < 0 OR time_of_ban + ban_time > ?) ORDER BY time_of_ban, id
                """, [.real(now)]
            ) { row in
                guard row.text(1).contains("/"), let prefix = Subnet(row.text(1)) else { return nil }
                let time = row.double(2)
                guard time.isFinite, time >= 0, time <= Bounds.maximumSeconds else { return nil }
                var banTime = row.double(3)
                if banTime.isNaN || banTime > Bounds.maximumSeconds { banTime = Bounds.maximumSeconds }
                if banTime < 0 { banTime = -1 }
                let addresses = ((try? JSON.parse(row.text(4)))?.arrayValue ?? []).compactMap(\.stringValue)
                    .compactMap { IPAddress($0) }
                return PrefixBanRecord(
                    jail: row.text(0), prefix: prefix, timeOfBan: time, banTime: banTime, addresses: addresses)
            }
        }
        return rows.compactMap { $0 }
    }
}
