import Core

/// A ban or unban waiting to be sent to the fleet's shared table (schema version 4, table `fleet_outbox`).
public struct FleetOutboxRow: Sendable, Hashable {
    /// The local sequence number (set by the store; 0 before).
    public var seq: Int64
    /// The jail.
    public var jail: String
    /// The address.
    public var address: IPAddress
    /// `ban` or `unban`.
    public var kind: String
    /// When (epoch seconds).
    public var time: Double
    /// When the ban ends, nil = permanent (or an unban).
    public var end: Double?

    /// A row.
    public init(seq: Int64 = 0, jail: String, address: IPAddress, kind: String, time: Double, end: Double?) {
        self.seq = seq
        self.jail = jail
        self.address = address
        self.kind = kind
        self.time = time
        self.end = end
    }
}

extension BanStore {
    /// Version 4: the fleet outbox (AUTOINCREMENT: a sequence number is never reused, so the shared table's
    /// unique (host, seq) recognises a record sent twice) and the cursor into the shared table.
    static func migrateToVersion4(_ db: Database) throws(DatabaseError) {
        do {
            try db.transaction {
                try db.execute(
                    """
                    CREATE TABLE IF NOT EXISTS fleet_outbox (
                        seq INTEGER PRIMARY KEY AUTOINCREMENT,
                        jail TEXT NOT NULL,
                        address TEXT NOT NULL,
                        kind TEXT NOT NULL,
                        time REAL NOT NULL,
                        ends REAL
                    );
                    CREATE TABLE IF NOT EXISTS fleet_cursor (
                        id INTEGER PRIMARY KEY CHECK (id = 1),
                        last_id INTEGER NOT NULL
                    );
                    PRAGMA user_version = 4;
                    """)
            }
        } catch let error as DatabaseError {
            throw error
        } catch {
            throw DatabaseError(code: 1, message: "\(error)")
        }
    }

    static func insertFleetOutbox(_ row: FleetOutboxRow, _ db: Database) throws(DatabaseError) {
        try db.run(
            "INSERT INTO fleet_outbox (jail, address, kind, time, ends) VALUES (?, ?, ?, ?, ?)",
            [
                .text(row.jail), .text(row.address.description), .text(row.kind), .real(row.time),
                row.end.map { .real($0) } ?? .null,
            ])
    }

    /// The oldest rows of the outbox, in order (rows that no longer parse are skipped, and deleted with the next
    /// delivery).
    public func fleetOutbox(limit: Int) throws(DatabaseError) -> [FleetOutboxRow] {
        let rows: [FleetOutboxRow?] = try read { db throws(DatabaseError) in
            try db.query(
                "SELECT seq, jail, address, kind, time, ends FROM fleet_outbox ORDER BY seq LIMIT ?",
                [.integer(Int64(limit))]
            ) { row in
                guard let address = IPAddress(row.text(2)) else { return nil }
                let end: Double? = row.isNull(5) ? nil : row.double(5)
                return FleetOutboxRow(
                    seq: row.int64(0), jail: row.text(1), address: address, kind: row.text(3), time: row.double(4),
                    end: end)
            }
        }
        return rows.compactMap { $0 }
    }

    /// Deletes the outbox rows up to `seq` (they are in the shared table).
    public func deleteFleetOutbox(upTo seq: Int64) throws(DatabaseError) {
        _ = try write { db in try db.run("DELETE FROM fleet_outbox WHERE seq <= ?", [.integer(seq)]) }
    }

    /// How many rows wait in the outbox.
    public func fleetOutboxCount() throws(DatabaseError) -> Int {
        try read { db throws(DatabaseError) in
            try db.query("SELECT COUNT(*) FROM fleet_outbox") { $0.int(0) }.first ?? 0
        }
    }

    /// The highest shared-table id read (0 at first).
    public func fleetCursor() throws(DatabaseError) -> Int64 {
        try read { db throws(DatabaseError) in
            try db.query("SELECT last_id FROM fleet_cursor WHERE id = 1") { $0.int64(0) }.first ?? 0
        }
    }

    /// Stores the highest shared-table id read.
    public func setFleetCursor(_ id: Int64) throws(DatabaseError) {
        _ = try write { db in
            try db.run(
                "INSERT INTO fleet_cursor (id, last_id) VALUES (1, ?) ON CONFLICT(id) DO UPDATE SET last_id = excluded.last_id",
                [.integer(id)])
        }
    }
}
