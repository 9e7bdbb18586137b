import Core
import Synchronization

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// One ban as persisted: who, where, when, for how long, and the evidence.
public struct BanRecord: Sendable, Hashable {
    /// The jail that banned the address.
    public var jail: String
    /// The banned address.
    public var address: IPAddress
    /// When the ban started (seconds since the Unix epoch).
    public var timeOfBan: Double
    /// Ban duration in seconds; negative (fail2ban writes -1) means permanent.
    public var banTime: Double
    /// How many times this address has been banned, this ban included (for `bantime.increment`).
    public var banCount: Int
    /// Failures that led to the ban.
    public var failures: Int
    /// The matched log lines (stored as JSON text).
    public var matches: [String]

    /// Creates a record.
    public init(
        jail: String, address: IPAddress, timeOfBan: Double, banTime: Double, banCount: Int = 1, failures: Int = 0,
        matches: [String] = []
    ) {
        self.jail = jail
        self.address = address
        self.timeOfBan = timeOfBan
        self.banTime = banTime
        self.banCount = banCount
        self.failures = failures
        self.matches = matches
    }

    /// Whether the ban never ends.
    public var isPermanent: Bool { banTime < 0 }

    /// When the ban ends; nil when permanent.
    public var end: Double? { isPermanent ? nil : timeOfBan + banTime }

    /// Whether the ban is still in force at `now`.
    public func isActive(at now: Double) -> Bool { end.map { $0 > now } ?? true }
}

/// Where reading of a log file stopped, so a restart resumes there (unless the file was rotated).
public struct LogPosition: Sendable, Hashable {
    /// The log file path.
    public var path: String
    /// Byte offset of the next unread byte.
    public var position: Int64
    /// Hash of the file's first line (detects a file replaced under the same name).
    public var firstLineHash: String
    /// The file's inode number (detects rotation).
    public var inode: UInt64

    /// Creates a position.
    public init(path: String, position: Int64, firstLineHash: String, inode: UInt64) {
        self.path = path
        self.position = position
        self.firstLineHash = firstLineHash
        self.inode = inode
    }
}

/// Persistent bans, log positions and journal cursors in one SQLite file (WAL, full sync).
///
/// Every write is committed before the method returns, so a ban that was recorded survives even `SIGKILL`.
/// Safe to share between tasks: the connection lives inside a `Mutex`, so it is only reachable with the lock held.
/// Open another `BanStore` on the same file for a concurrent reader.
///
/// ```swift
/// let store = try BanStore(path: "/var/lib/portcullis/portcullis.sqlite3")
/// try store.addBan(BanRecord(jail: "sshd", address: IPAddress("192.0.2.1")!, timeOfBan: now, banTime: 600))
/// for ban in try store.activeBans(now: now) { firewall.ban(ban.address, jail: ban.jail) }
/// ```
public final class BanStore: Sendable {
    /// The schema version this code writes (`PRAGMA user_version`).
    public static let schemaVersion = 4

    /// The connection, reachable only with the lock held.
    private let database: Mutex<Database>

    /// True when `path` is fail2ban's own database (it has fail2ban's `fail2banDb` table): the `dbfile` of a
    /// fail2ban tree (`portcullis -c /etc/fail2ban`). Read without writing anything; false when it cannot be read.
    public static func isFail2banDatabase(path: String) -> Bool {
        guard path != ":memory:", access(path, F_OK) == 0,
            let db = try? Database(path: path, options: Database.Options(readOnly: true, writeAheadLog: false))
        else { return false }
        let found = try? db.query("SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name = 'fail2banDb'") {
            $0.int64(0)
        }
        return (found?.first ?? 0) > 0
    }

    /// Opens or creates the store at `path` (`":memory:"` for a throw-away store) and migrates its schema.
    /// Throws when the file was written by a newer Portcullis (schema version above ``schemaVersion``).
    public init(path: String, options: Database.Options = Database.Options()) throws(DatabaseError) {
        let database = try Database(path: path, options: options)
        try BanStore.migrate(database)
        self.database = Mutex(database)
    }

    private static func migrate(_ db: Database) throws(DatabaseError) {
        let version = try db.userVersion
        if version > schemaVersion {
            throw DatabaseError(
                code: 1,
                message: "database '\(db.path)' has schema version \(version), newer than the \(schemaVersion) this "
                    + "Portcullis understands; upgrade Portcullis or move the file away")
        }
        if version < 1 {
            do {
                try db.transaction {
                    try db.execute(
                        """
                        CREATE TABLE IF NOT EXISTS bans (
                            id INTEGER PRIMARY KEY,
                            jail TEXT NOT NULL,
                            address TEXT NOT NULL,
                            time_of_ban REAL NOT NULL,
                            ban_time REAL NOT NULL,
                            ban_count INTEGER NOT NULL DEFAULT 1,
                            failures INTEGER NOT NULL DEFAULT 0,
                            matches TEXT NOT NULL DEFAULT '[]',
                            active INTEGER NOT NULL DEFAULT 1
                        );
                        CREATE INDEX IF NOT EXISTS bans_address ON bans(address, jail, active);
                        CREATE INDEX IF NOT EXISTS bans_active ON bans(active, jail);
                        CREATE INDEX IF NOT EXISTS bans_time ON bans(time_of_ban);
                        CREATE TABLE IF NOT EXISTS log_positions (
                            path TEXT PRIMARY KEY,
                            position INTEGER NOT NULL,
                            first_line_hash TEXT NOT NULL,
                            inode INTEGER NOT NULL
                        );
                        CREATE TABLE IF NOT EXISTS journal_cursors (
                            source TEXT PRIMARY KEY,
                            cursor TEXT NOT NULL
                        );
                        PRAGMA user_version = 1;
                        """)
                }
            } catch let error as DatabaseError {
                throw error
            } catch {
                throw DatabaseError(code: 1, message: "\(error)")
            }
        }
        if version < 2 {
            // Version 2: failures counted but below maxretry, stored with the position that covers them.
            do {
                try db.transaction {
                    try db.execute(
                        """
                        CREATE TABLE IF NOT EXISTS pending_failures (
                            jail TEXT NOT NULL,
                            address TEXT NOT NULL,
                            times TEXT NOT NULL,
                            matches TEXT NOT NULL DEFAULT '[]',
                            last REAL NOT NULL,
                            PRIMARY KEY (jail, address)
                        );
                        CREATE TABLE IF NOT EXISTS ban_log (
                            id INTEGER PRIMARY KEY CHECK (id = 1),
                            logged_upto INTEGER NOT NULL
                        );
                        INSERT OR IGNORE INTO ban_log (id, logged_upto) VALUES (1, (SELECT COALESCE(MAX(id), 0) FROM bans));
                        PRAGMA user_version = 2;
                        """)
                }
            } catch let error as DatabaseError {
                throw error
            } catch {
                throw DatabaseError(code: 1, message: "\(error)")
            }
        }
        if version < 3 { try migrateToVersion3(db) }
        if version < 4 { try migrateToVersion4(db) }
        // Reading every table once finds a file that is not a database, or one cut short, now rather than at the
        // first ban (SQLite reads pages lazily).
        for table in [
            "bans", "log_positions", "journal_cursors", "pending_failures", "ban_log", "prefix_bans", "fleet_outbox",
            "fleet_cursor",
        ] {
            _ = try db.query("SELECT COUNT(*) FROM \(table)") { $0.int(0) }
        }
    }

    func write<T: Sendable>(_ body: @Sendable (Database) throws -> T) throws(DatabaseError) -> T {
        do {
            return try database.withLock { database in try database.transaction { try body(database) } }
        } catch let error as DatabaseError {
            throw error
        } catch {
            throw DatabaseError(code: 1, message: "\(error)")
        }
    }

    func read<T: Sendable>(_ body: @Sendable (Database) throws(DatabaseError) -> T) throws(DatabaseError) -> T {
        try database.withLock { database throws(DatabaseError) in try body(database) }
    }

    // MARK: Bans

    /// Records a ban and commits it before returning. An earlier still-recorded ban of the same address in the
    /// same jail stops being active (the new one replaces it).
    public func addBan(_ ban: BanRecord) throws(DatabaseError) {
        try addBans([ban])
    }

    /// Records several bans in one transaction (one disk sync for a whole batch of bans).
    public func addBans(_ bans: [BanRecord]) throws(DatabaseError) {
        guard !bans.isEmpty else { return }
        _ = try write { db in
            for ban in bans {
                try db.run(
                    "UPDATE bans SET active = 0 WHERE active = 1 AND jail = ? AND address = ?",
                    [.text(ban.jail), .text(ban.address.description)])
                try db.run(
                    """
                    INSERT INTO bans (jail, address, time_of_ban, ban_time, ban_count, failures, matches, active)
                    VALUES (?, ?, ?, ?, ?, ?, ?, 1)
                    """,
                    [
                        .text(ban.jail), .text(ban.address.description), .real(ban.timeOfBan),
                        .real(ban.banTime < 0 ? -1 : ban.banTime), .integer(Int64(ban.banCount)),
                        .integer(Int64(ban.failures)), .text(JSON.array(ban.matches.map { .string($0) }).encoded()),
                    ])
            }
        }
    }

    /// Every ban still in force at `now` (permanent, or ending after `now`), optionally of one jail, oldest
    /// first. Rows whose address no longer parses are skipped.
    ///
    /// `ordered: false` leaves out the sort by time of ban (a restore sorts by address anyway; a second on
    /// 1,000,000 bans).
    public func activeBans(now: Double, jail: String? = nil, ordered: Bool = true) throws(DatabaseError) -> [BanRecord]
    {
        let columns = "jail, address, time_of_ban, ban_time, ban_count, failures, matches"
        let condition = "active = 1 AND (ban_time < 0 OR time_of_ban + ban_time > ?)"
        let order = ordered ? " ORDER BY time_of_ban, id" : ""
        let rows: [BanRecord?] = try read { db throws(DatabaseError) in
            if let jail {
                return try db.query(
                    "SELECT \(columns) FROM bans WHERE \(condition) AND jail = ?\(order)",
                    [.real(now), .text(jail)], BanStore.record)
            }
            return try db.query(
                "SELECT \(columns) FROM bans WHERE \(condition)\(order)", [.real(now)], BanStore.record)
        }
        return rows.compactMap { $0 }
    }

    /// The `matches` column (a JSON array of strings); empty when it is not one.
    private static func matches(_ text: String) -> [String] {
        if text == "[]" || text.isEmpty { return [] }
        guard let items = (try? JSON.parse(text))?.arrayValue else { return [] }
        return items.compactMap(\.stringValue)
    }

    /// A row as a record, range-checked (the file may have been edited, or written by another program): a row
    /// whose address does not parse or whose time of ban is not a plausible epoch time is skipped; a ban time
    /// that is not finite or longer than `Bounds.maximumSeconds` is clamped to it (negative stays permanent);
    /// counts are clamped to `0…Bounds.maximumBanCount`.
    static func record(_ row: Statement) -> BanRecord? {
        guard let address = IPAddress(row.text(1)) else { return nil }
        let timeOfBan = row.double(2)
        guard timeOfBan.isFinite, timeOfBan >= 0, timeOfBan <= Bounds.maximumSeconds else { return nil }
        var banTime = row.double(3)
        if banTime.isNaN || banTime > Bounds.maximumSeconds { banTime = Bounds.maximumSeconds }
        if banTime < 0 { banTime = -1 }
        return BanRecord(
            jail: row.text(0), address: address, timeOfBan: timeOfBan, banTime: banTime,
            banCount: clampCount(row.int64(4)), failures: clampCount(row.int64(5)),
            matches: BanStore.matches(row.text(6)))
    }

    /// A count read from the store, clamped to `0…Bounds.maximumBanCount` (so `count + 1` cannot overflow).
    static func clampCount(_ v: Int64) -> Int { Int(min(max(v, 0), Int64(Bounds.maximumBanCount))) }

    /// The highest ban count recorded for `address` (0 when never banned, or purged since): across all jails
    /// when `jail` is nil (`bantime.overalljails`), else in that jail. The jail's next ban uses this + 1.
    public func banCount(address: IPAddress, jail: String? = nil) throws(DatabaseError) -> Int {
        try read { db throws(DatabaseError) in
            if let jail {
                return try db.query(
                    "SELECT COALESCE(MAX(ban_count), 0) FROM bans WHERE address = ? AND jail = ?",
                    [.text(address.description), .text(jail)]
                ) { BanStore.clampCount($0.int64(0)) }.first ?? 0
            }
            return try db.query(
                "SELECT COALESCE(MAX(ban_count), 0) FROM bans WHERE address = ?", [.text(address.description)]
            ) { BanStore.clampCount($0.int64(0)) }.first ?? 0
        }
    }

    /// Ends the ban of `address` in `jail` (or in every jail when nil). History is kept for ``banCount(address:jail:)``.
    /// Returns how many active bans ended.
    @discardableResult
    public func removeBan(address: IPAddress, jail: String? = nil) throws(DatabaseError) -> Int {
        try write { db in
            if let jail {
                return try db.run(
                    "UPDATE bans SET active = 0 WHERE active = 1 AND address = ? AND jail = ?",
                    [.text(address.description), .text(jail)])
            }
            return try db.run(
                "UPDATE bans SET active = 0 WHERE active = 1 AND address = ?", [.text(address.description)])
        }
    }

    /// Ends every active ban of `jail` (every jail when nil); returns how many ended. History is kept.
    @discardableResult
    public func removeAll(jail: String? = nil) throws(DatabaseError) -> Int {
        try write { db in
            if let jail {
                return try db.run("UPDATE bans SET active = 0 WHERE active = 1 AND jail = ?", [.text(jail)])
            }
            return try db.run("UPDATE bans SET active = 0 WHERE active = 1")
        }
    }

    /// Deletes ban history that started before `cutoff` (fail2ban's `dbpurgeage`: `cutoff = now - purgeAge`),
    /// except bans still in force at `now`, which must survive a restart. Returns the number of rows deleted.
    @discardableResult
    public func purge(olderThan cutoff: Double, now: Double) throws(DatabaseError) -> Int {
        try write { db in
            try db.run(
                """
                DELETE FROM bans WHERE time_of_ban < ?
                AND NOT (active = 1 AND (ban_time < 0 OR time_of_ban + ban_time > ?))
                """, [.real(cutoff), .real(now)])
        }
    }

    /// Every recorded ban (active or not) of `address`, oldest first: the history behind ``banCount(address:jail:)``.
    public func history(address: IPAddress) throws(DatabaseError) -> [BanRecord] {
        let rows: [BanRecord?] = try read { db throws(DatabaseError) in
            try db.query(
                """
                SELECT jail, address, time_of_ban, ban_time, ban_count, failures, matches FROM bans
                WHERE address = ? ORDER BY time_of_ban, id
                """, [.text(address.description)], BanStore.record)
        }
        return rows.compactMap { $0 }
    }

    // MARK: Log positions and journal cursors

    /// The saved position for a log file, if any.
    public func logPosition(path: String) throws(DatabaseError) -> LogPosition? {
        try read { db throws(DatabaseError) in
            try db.query(
                "SELECT path, position, first_line_hash, inode FROM log_positions WHERE path = ?", [.text(path)]
            ) {
                LogPosition(
                    path: $0.text(0), position: $0.int64(1), firstLineHash: $0.text(2),
                    inode: UInt64(bitPattern: $0.int64(3)))
            }
            .first
        }
    }

    /// Saves (replaces) the position for a log file.
    public func setLogPosition(_ position: LogPosition) throws(DatabaseError) {
        _ = try write { db in
            try db.run(
                """
                INSERT INTO log_positions (path, position, first_line_hash, inode) VALUES (?, ?, ?, ?)
                ON CONFLICT(path) DO UPDATE SET position = excluded.position,
                    first_line_hash = excluded.first_line_hash, inode = excluded.inode
                """,
                [
                    .text(position.path), .integer(position.position), .text(position.firstLineHash),
                    .integer(Int64(bitPattern: position.inode)),
                ])
        }
    }

    /// Forgets the position of a log file (no longer monitored); returns whether one was saved.
    @discardableResult
    public func removeLogPosition(path: String) throws(DatabaseError) -> Bool {
        try write { db in try db.run("DELETE FROM log_positions WHERE path = ?", [.text(path)]) > 0 }
    }

    /// The saved systemd journal cursor for a source (e.g. a jail name), if any.
    public func journalCursor(source: String) throws(DatabaseError) -> String? {
        try read { db throws(DatabaseError) in
            try db.query("SELECT cursor FROM journal_cursors WHERE source = ?", [.text(source)]) { $0.text(0) }.first
        }
    }

    /// Saves (replaces) the journal cursor for a source.
    public func setJournalCursor(_ cursor: String, source: String) throws(DatabaseError) {
        _ = try write { db in
            try db.run(
                """
                INSERT INTO journal_cursors (source, cursor) VALUES (?, ?)
                ON CONFLICT(source) DO UPDATE SET cursor = excluded.cursor
                """, [.text(source), .text(cursor)])
        }
    }
}

/// Failures of one address in one jail that were counted but did not reach `maxretry` yet: stored with the log
/// position that covers them, so a restart neither forgets nor counts them again.
public struct PendingFailureRecord: Sendable, Hashable {
    /// The jail counting them.
    public var jail: String
    /// The failing address.
    public var address: IPAddress
    /// The failures' times (epoch seconds), oldest first.
    public var times: [Double]
    /// The matched lines kept for the `<matches>` tag.
    public var matches: [String]

    /// Creates a record.
    public init(jail: String, address: IPAddress, times: [Double], matches: [String] = []) {
        self.jail = jail
        self.address = address
        self.times = times
        self.matches = matches
    }
}

/// A ban's jail and address as stored.
public struct BanKeyText: Sendable, Hashable {
    /// The jail.
    public var jail: String
    /// The address as text.
    public var address: String

    /// A key.
    public init(jail: String, address: String) {
        self.jail = jail
        self.address = address
    }
}

/// One change to the store; ``BanStore/apply(_:beforeCommit:)`` writes a list of them in one transaction.
public enum StoreChange: Sendable, Hashable {
    /// A ban, with `banCount` as given.
    case ban(BanRecord)
    /// A ban whose `banCount` is computed from the history: one more than the highest recorded for the address
    /// in its jail (or in every jail with `acrossJails`, fail2ban's `bantime.overalljails`).
    case banCountingHistory(BanRecord, acrossJails: Bool)
    /// Ends the ban of `address` in `jail` (every jail when nil).
    case unban(address: IPAddress, jail: String?)
    /// Ends every ban of `jail` (every jail when nil).
    case unbanAll(jail: String?)
    /// Gives the active ban of `address` in `jail` (every active ban of the jail when nil) the length `seconds`
    /// from its start (`set JAIL bantime`, a prolonged ban; -1 permanent).
    case banTime(jail: String, address: IPAddress?, seconds: Double)
    /// Replaces (or, with `times` empty, deletes) the pending failures of one address in one jail.
    case pending(PendingFailureRecord)
    /// The `Ban` log lines of every ban up to row id `upTo` are written (nil: of every ban stored now).
    case banLogged(upTo: Int64?)
    /// Deletes the pending failures of `jail` whose latest failure is before `before` (out of `findtime`).
    case prunePending(jail: String, before: Double)
    /// The position reading a log file has reached.
    case logPosition(LogPosition)
    /// The journal cursor reading a source has reached.
    case journalCursor(source: String, cursor: String)
    /// ``BanStore/purge(olderThan:now:)``.
    case purge(olderThan: Double, now: Double)
    /// A prefix ban (table `prefix_bans`).
    case prefixBan(PrefixBanRecord)
    /// Ends the ban of `prefix` in `jail` (every jail when nil).
    case prefixUnban(prefix: Subnet, jail: String?)
    /// A ban or unban to share with the fleet (table `fleet_outbox`), in the transaction of the ban itself.
    case fleetOutbox(FleetOutboxRow)
}

extension BanStore {
    /// Writes `changes` in order in one transaction; `beforeCommit` runs after the last statement, just before
    /// `COMMIT`. Nothing is written when it throws; the caller keeps the changes to try again.
    /// Returns the row id of the last ban inserted (nil when there was none), for ``StoreChange/banLogged(upTo:)``.
    @discardableResult
    public func apply(
        _ changes: [StoreChange], beforeCommit: @Sendable () -> Void = {}
    ) throws(DatabaseError) -> Int64? {
        guard !changes.isEmpty else {
            beforeCommit()
            return nil
        }
        return try write { db -> Int64? in
            var last: Int64? = nil
            for change in changes {
                try BanStore.run(change, db)
                switch change {
                case .ban, .banCountingHistory: last = db.lastInsertRowID
                default: break
                }
            }
            beforeCommit()
            return last
        }
    }

    /// Records that the `Ban` lines of every ban up to row `id` are written (``StoreChange/banLogged(upTo:)``), in a
    /// transaction committed without waiting for the disk (`synchronous=OFF` for this one commit; the write-ahead
    /// log still has it when the process is killed). The lines are written between the bans' commit and this
    /// mark, and a crash in between writes them again at the next start: without the disk wait that window is the
    /// time of one small write instead of an fsync (tens of milliseconds on a busy disk). Only a crash of the
    /// machine can lose the mark, which then repeats those lines, never a ban.
    public func markBansLogged(upTo id: Int64) throws(DatabaseError) {
        do {
            try database.withLock { db in
                try db.execute("PRAGMA synchronous=OFF")
                defer { try? db.execute(db.options.fullSync ? "PRAGMA synchronous=FULL" : "PRAGMA synchronous=NORMAL") }
                try db.transaction { try BanStore.run(.banLogged(upTo: id), db) }
            }
        } catch let error as DatabaseError {
            throw error
        } catch {
            throw DatabaseError(code: 1, message: "\(error)")
        }
    }

    /// The active bans whose `Ban` log line may not have been written (inserted after the last
    /// ``StoreChange/banLogged(upTo:)``): a crash hit between their commit and their log line.
    public func unloggedBans() throws(DatabaseError) -> Set<BanKeyText> {
        let rows: [BanKeyText] = try read { db throws(DatabaseError) in
            try db.query(
                "SELECT jail, address FROM bans WHERE active = 1 AND id > (SELECT COALESCE(MAX(logged_upto), 0) FROM ban_log)"
            ) { BanKeyText(jail: $0.text(0), address: $0.text(1)) }
        }
        return Set(rows)
    }

    private static func run(_ change: StoreChange, _ db: Database) throws(DatabaseError) {
        switch change {
        case .ban(let ban):
            try insert(ban, count: .integer(Int64(ban.banCount)), countSQL: "?", db)
        case .banCountingHistory(let ban, let across):
            let history =
                across
                ? "(SELECT MIN(MAX(COALESCE(MAX(ban_count), 0), 0), \(Bounds.maximumBanCount - 1)) + 1 FROM bans WHERE address = ?)"
                : "(SELECT MIN(MAX(COALESCE(MAX(ban_count), 0), 0), \(Bounds.maximumBanCount - 1)) + 1 FROM bans WHERE address = ? AND jail = ?)"
            try insert(ban, count: nil, countSQL: history, db, across: across)
        case .unban(let address, let jail):
            if let jail {
                try db.run(
                    "UPDATE bans SET active = 0 WHERE active = 1 AND address = ? AND jail = ?",
                    [.text(address.description), .text(jail)])
            } else {
                try db.run("UPDATE bans SET active = 0 WHERE active = 1 AND address = ?", [.text(address.description)])
            }
        case .banTime(let jail, let address, let seconds):
            if let address {
                try db.run(
                    "UPDATE bans SET ban_time = ? WHERE active = 1 AND jail = ? AND address = ?",
                    [.real(seconds), .text(jail), .text(address.description)])
            } else {
                try db.run("UPDATE bans SET ban_time = ? WHERE active = 1 AND jail = ?", [.real(seconds), .text(jail)])
            }
        case .unbanAll(let jail):
            if let jail {
                try db.run("UPDATE bans SET active = 0 WHERE active = 1 AND jail = ?", [.text(jail)])
                try db.run("UPDATE prefix_bans SET active = 0 WHERE active = 1 AND jail = ?", [.text(jail)])
            } else {
                try db.run("UPDATE bans SET active = 0 WHERE active = 1")
                try db.run("UPDATE prefix_bans SET active = 0 WHERE active = 1")
            }
        case .prefixBan(let ban):
            try insertPrefixBan(ban, db)
        case .prefixUnban(let prefix, let jail):
            try endPrefixBan(prefix, jail: jail, db)
        case .fleetOutbox(let row):
            try insertFleetOutbox(row, db)
        case .pending(let p):
            if p.times.isEmpty {
                try db.run(
                    "DELETE FROM pending_failures WHERE jail = ? AND address = ?",
                    [.text(p.jail), .text(p.address.description)])
            } else {
                try db.run(
                    """
                    INSERT INTO pending_failures (jail, address, times, matches, last) VALUES (?, ?, ?, ?, ?)
                    ON CONFLICT(jail, address) DO UPDATE SET times = excluded.times, matches = excluded.matches,
                        last = excluded.last
                    """,
                    [
                        .text(p.jail), .text(p.address.description),
                        .text(JSON.array(p.times.map { .double($0) }).encoded()),
                        .text(JSON.array(p.matches.map { .string($0) }).encoded()), .real(p.times.max() ?? 0),
                    ])
            }
        case .banLogged(let id):
            if let id {
                try db.run("UPDATE ban_log SET logged_upto = MAX(logged_upto, ?)", [.integer(id)])
            } else {
                try db.run("UPDATE ban_log SET logged_upto = (SELECT COALESCE(MAX(id), 0) FROM bans)")
            }
        case .prunePending(let jail, let before):
            try db.run("DELETE FROM pending_failures WHERE jail = ? AND last < ?", [.text(jail), .real(before)])
        case .logPosition(let position):
            try db.run(
                """
                INSERT INTO log_positions (path, position, first_line_hash, inode) VALUES (?, ?, ?, ?)
                ON CONFLICT(path) DO UPDATE SET position = excluded.position,
                    first_line_hash = excluded.first_line_hash, inode = excluded.inode
                """,
                [
                    .text(position.path), .integer(position.position), .text(position.firstLineHash),
                    .integer(Int64(bitPattern: position.inode)),
                ])
        case .journalCursor(let source, let cursor):
            try db.run(
                """
                INSERT INTO journal_cursors (source, cursor) VALUES (?, ?)
                ON CONFLICT(source) DO UPDATE SET cursor = excluded.cursor
                """, [.text(source), .text(cursor)])
        case .purge(let cutoff, let now):
            try db.run(
                """
                DELETE FROM bans WHERE time_of_ban < ?
                AND NOT (active = 1 AND (ban_time < 0 OR time_of_ban + ban_time > ?))
                """, [.real(cutoff), .real(now)])
            try db.run(
                """
                DELETE FROM prefix_bans WHERE time_of_ban < ?
                AND NOT (active = 1 AND (ban_time < 0 OR time_of_ban + ban_time > ?))
                """, [.real(cutoff), .real(now)])
        }
    }

    private static func insert(
        _ ban: BanRecord, count: SQLValue?, countSQL: String, _ db: Database, across: Bool = false
    ) throws(DatabaseError) {
        try db.run(
            "UPDATE bans SET active = 0 WHERE active = 1 AND jail = ? AND address = ?",
            [.text(ban.jail), .text(ban.address.description)])
        var countArguments: [SQLValue] = []
        if let count {
            countArguments = [count]
        } else {
            countArguments =
                across ? [.text(ban.address.description)] : [.text(ban.address.description), .text(ban.jail)]
        }
        try db.run(
            """
            INSERT INTO bans (jail, address, time_of_ban, ban_time, ban_count, failures, matches, active)
            VALUES (?, ?, ?, ?, \(countSQL), ?, ?, 1)
            """,
            [
                .text(ban.jail), .text(ban.address.description), .real(ban.timeOfBan),
                .real(ban.banTime < 0 ? -1 : ban.banTime),
            ]
                + countArguments
                + [.integer(Int64(ban.failures)), .text(JSON.array(ban.matches.map { .string($0) }).encoded())])
    }

    /// Every stored pending failure record (counted, below `maxretry`), by jail and address. Rows whose address
    /// no longer parses are skipped.
    public func pendingFailures() throws(DatabaseError) -> [PendingFailureRecord] {
        let rows: [PendingFailureRecord?] = try read { db throws(DatabaseError) in
            try db.query("SELECT jail, address, times, matches FROM pending_failures ORDER BY jail, address") { row in
                guard let address = IPAddress(row.text(1)) else { return nil }
                // Range-checked like every number read back: a time that is not a plausible epoch time is dropped.
                let times = ((try? JSON.parse(row.text(2)))?.arrayValue ?? []).compactMap(\.doubleValue)
                    .filter { $0.isFinite && $0 >= 0 && $0 <= Bounds.maximumSeconds }
                let matches = ((try? JSON.parse(row.text(3)))?.arrayValue ?? []).compactMap(\.stringValue)
                return PendingFailureRecord(jail: row.text(0), address: address, times: times, matches: matches)
            }
        }
        return rows.compactMap { $0 }
    }
}
