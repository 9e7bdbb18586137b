internal import CSQLite

/// An error reported by SQLite or by the wrapper: the SQLite result code, SQLite's message and the SQL involved.
///
/// ```swift
/// do { try db.execute("SELEC 1") } catch { print(error) }   // "SQLite error 1 (SQL logic error): near "SELEC"…"
/// ```
public struct DatabaseError: Error, Sendable, Hashable, CustomStringConvertible {
    /// The (extended) SQLite result code, e.g. 5 for `SQLITE_BUSY`, 19 for `SQLITE_CONSTRAINT`.
    public var code: Int32
    /// What went wrong, for a person.
    public var message: String
    /// The SQL statement involved, when there is one.
    public var sql: String?

    /// Creates an error.
    public init(code: Int32, message: String, sql: String? = nil) {
        self.code = code
        self.message = message
        self.sql = sql
    }

    /// `SQLITE_BUSY` or `SQLITE_LOCKED`: another connection holds a lock longer than the busy timeout.
    public var isBusy: Bool { code & 0xFF == SQLITE_BUSY || code & 0xFF == SQLITE_LOCKED }

    /// `SQLITE_CORRUPT` or `SQLITE_NOTADB`: the file is damaged or is not a database.
    public var isCorruption: Bool { code & 0xFF == SQLITE_CORRUPT || code & 0xFF == SQLITE_NOTADB }

    /// One line: code, message and the SQL.
    public var description: String {
        let name = String(cString: sqlite3_errstr(code))
        var text = "SQLite error \(code) (\(name)): \(message)"
        if let sql { text += " — in: \(sql)" }
        return text
    }
}

/// A value bound to or read from a statement column.
public enum SQLValue: Sendable, Hashable {
    /// SQL NULL.
    case null
    /// A 64-bit integer.
    case integer(Int64)
    /// A double.
    case real(Double)
    /// UTF-8 text.
    case text(String)
    /// Bytes.
    case blob([UInt8])
}

/// One SQLite connection. Not thread-safe by itself: use it from one thread at a time (``BanStore`` guards its
/// connection with a mutex); open more connections for concurrent readers.
///
/// ```swift
/// let db = try Database(path: ":memory:")
/// try db.execute("CREATE TABLE t(a INTEGER, b TEXT)")
/// try db.run("INSERT INTO t VALUES (?, ?)", [.integer(1), .text("x")])
/// let names = try db.query("SELECT b FROM t") { $0.text(0) }   // ["x"]
/// ```
public final class Database {
    /// How to open a database.
    public struct Options: Sendable, Hashable {
        /// Open read-only (the file must exist).
        public var readOnly: Bool
        /// Milliseconds to wait for another connection's lock before failing with `SQLITE_BUSY`.
        public var busyTimeoutMilliseconds: Int32
        /// Use write-ahead logging (file databases only), so readers never block the writer.
        public var writeAheadLog: Bool
        /// `synchronous=FULL`: a committed transaction survives a crash of the process and of the machine.
        public var fullSync: Bool

        /// Read-write, WAL, 5 s busy timeout, full sync.
        public init(
            readOnly: Bool = false, busyTimeoutMilliseconds: Int32 = 5000, writeAheadLog: Bool = true,
            fullSync: Bool = true
        ) {
            self.readOnly = readOnly
            self.busyTimeoutMilliseconds = busyTimeoutMilliseconds
            self.writeAheadLog = writeAheadLog
            self.fullSync = fullSync
        }
    }

    /// The path given at open (`:memory:` for an in-memory database).
    public let path: String
    /// The options given at open.
    public let options: Options
    private let handle: OpaquePointer
    private var cache: [String: Statement] = [:]

    /// Opens (creating unless read-only) the database at `path`, or an in-memory one for `":memory:"`.
    public init(path: String, options: Options = Options()) throws(DatabaseError) {
        self.path = path
        self.options = options
        var db: OpaquePointer?
        let flags =
            (options.readOnly ? SQLITE_OPEN_READONLY : SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE)
            | SQLITE_OPEN_NOMUTEX
        let rc = sqlite3_open_v2(path, &db, flags, nil)
        guard rc == SQLITE_OK, let db else {
            let message = db.map { String(cString: sqlite3_errmsg($0)) } ?? "out of memory"
            if let db { sqlite3_close_v2(db) }
            throw DatabaseError(code: rc, message: "cannot open database '\(path)': \(message)")
        }
        handle = db
        sqlite3_extended_result_codes(db, 1)
        sqlite3_busy_timeout(db, options.busyTimeoutMilliseconds)
        if options.writeAheadLog, !options.readOnly, path != ":memory:" {
            try execute("PRAGMA journal_mode=WAL")
        }
        if !options.readOnly {
            try execute(options.fullSync ? "PRAGMA synchronous=FULL" : "PRAGMA synchronous=NORMAL")
        }
    }

    deinit {
        cache.removeAll()
        sqlite3_close_v2(handle)
    }

    private func error(_ rc: Int32, _ sql: String?) -> DatabaseError {
        DatabaseError(code: rc, message: String(cString: sqlite3_errmsg(handle)), sql: sql)
    }

    /// Runs one or more statements separated by `;`, discarding any rows.
    public func execute(_ sql: String) throws(DatabaseError) {
        var errorMessage: UnsafeMutablePointer<CChar>?
        let rc = sqlite3_exec(handle, sql, nil, nil, &errorMessage)
        if rc != SQLITE_OK {
            let message = errorMessage.map { String(cString: $0) } ?? String(cString: sqlite3_errmsg(handle))
            sqlite3_free(errorMessage)
            throw DatabaseError(code: rc, message: message, sql: sql)
        }
    }

    /// Compiles one statement. Prefer ``statement(_:)`` for SQL that runs repeatedly.
    public func prepare(_ sql: String) throws(DatabaseError) -> Statement {
        var stmt: OpaquePointer?
        let rc = sqlite3_prepare_v3(handle, sql, -1, UInt32(SQLITE_PREPARE_PERSISTENT), &stmt, nil)
        guard rc == SQLITE_OK, let stmt else {
            throw rc == SQLITE_OK
                ? DatabaseError(code: SQLITE_MISUSE, message: "no SQL statement in text", sql: sql)
                : error(rc, sql)
        }
        return Statement(stmt, sql: sql, db: handle)
    }

    /// A compiled statement from this connection's cache (compiled on first use), reset and unbound.
    public func statement(_ sql: String) throws(DatabaseError) -> Statement {
        if let cached = cache[sql] {
            cached.reset()
            return cached
        }
        let stmt = try prepare(sql)
        cache[sql] = stmt
        return stmt
    }

    /// Runs a statement with the given arguments, discarding rows; returns the number of rows changed.
    @discardableResult
    public func run(_ sql: String, _ arguments: [SQLValue] = []) throws(DatabaseError) -> Int {
        let stmt = try statement(sql)
        defer { stmt.reset() }
        try stmt.bind(arguments)
        while try stmt.step() {}
        return Int(sqlite3_changes64(handle))
    }

    /// Runs a query and maps every row.
    public func query<T>(
        _ sql: String, _ arguments: [SQLValue] = [], _ row: (Statement) throws(DatabaseError) -> T
    ) throws(DatabaseError) -> [T] {
        let stmt = try statement(sql)
        defer { stmt.reset() }
        try stmt.bind(arguments)
        var rows: [T] = []
        while try stmt.step() { rows.append(try row(stmt)) }
        return rows
    }

    /// Runs `body` inside `BEGIN IMMEDIATE … COMMIT`; rolls back if `body` throws. The commit is durable when
    /// this returns (with the default full sync).
    @discardableResult
    public func transaction<T>(_ body: () throws -> T) throws -> T {
        try execute("BEGIN IMMEDIATE")
        do {
            let result = try body()
            try execute("COMMIT")
            return result
        } catch {
            // The body's error is the one to report; SQLite rolls back by itself if this fails.
            try? execute("ROLLBACK")
            throw error
        }
    }

    /// The rowid of the last inserted row.
    public var lastInsertRowID: Int64 { sqlite3_last_insert_rowid(handle) }

    /// `PRAGMA user_version`, used as the schema version.
    public var userVersion: Int {
        get throws(DatabaseError) {
            try query("PRAGMA user_version") { $0.int(0) }.first ?? 0
        }
    }

    /// Sets `PRAGMA user_version`.
    public func setUserVersion(_ version: Int) throws(DatabaseError) {
        try execute("PRAGMA user_version = \(version)")
    }

    /// The journal mode SQLite reports (`wal`, `memory`, `delete`…).
    public func journalMode() throws(DatabaseError) -> String {
        try query("PRAGMA journal_mode") { $0.text(0) }.first ?? ""
    }
}

/// A compiled statement: bind arguments, step through rows, read typed columns (index from 0).
public final class Statement {
    private let stmt: OpaquePointer
    /// The SQL text.
    public let sql: String
    // The connection handle, for error messages only. `sqlite3_close_v2` keeps the connection alive until its
    // last statement is finalized, so a statement outliving its `Database` stays safe.
    private let db: OpaquePointer

    fileprivate init(_ stmt: OpaquePointer, sql: String, db: OpaquePointer) {
        self.stmt = stmt
        self.sql = sql
        self.db = db
    }

    private func raise(_ rc: Int32) -> DatabaseError {
        DatabaseError(code: rc, message: String(cString: sqlite3_errmsg(db)), sql: sql)
    }

    deinit { sqlite3_finalize(stmt) }

    /// Binds positional arguments (`?`) in order; clears earlier bindings.
    public func bind(_ values: [SQLValue]) throws(DatabaseError) {
        sqlite3_clear_bindings(stmt)
        let expected = Int(sqlite3_bind_parameter_count(stmt))
        guard values.count == expected else {
            throw DatabaseError(
                code: SQLITE_RANGE, message: "statement expects \(expected) arguments, got \(values.count)", sql: sql)
        }
        for (offset, value) in values.enumerated() {
            let index = Int32(offset + 1)
            let rc: Int32
            switch value {
            case .null: rc = sqlite3_bind_null(stmt, index)
            case .integer(let v): rc = sqlite3_bind_int64(stmt, index, v)
            case .real(let v): rc = sqlite3_bind_double(stmt, index, v)
            case .text(let v):
                rc = sqlite3_bind_text64(stmt, index, v, UInt64(v.utf8.count), csqlite_transient(), UInt8(SQLITE_UTF8))
            case .blob(let v):
                rc = v.withUnsafeBytes {
                    sqlite3_bind_blob64(stmt, index, $0.baseAddress, UInt64($0.count), csqlite_transient())
                }
            }
            guard rc == SQLITE_OK else { throw raise(rc) }
        }
    }

    /// Advances to the next row: true when a row is available, false when done.
    public func step() throws(DatabaseError) -> Bool {
        let rc = sqlite3_step(stmt)
        switch rc {
        case SQLITE_ROW: return true
        case SQLITE_DONE: return false
        default:
            sqlite3_reset(stmt)
            throw raise(rc)
        }
    }

    /// Resets the statement so it can run again (bindings are kept until the next ``bind(_:)``).
    public func reset() { sqlite3_reset(stmt) }

    /// The number of columns in a result row.
    public var columnCount: Int { Int(sqlite3_column_count(stmt)) }

    /// Whether the column is NULL.
    public func isNull(_ column: Int) -> Bool { sqlite3_column_type(stmt, Int32(column)) == SQLITE_NULL }

    /// The column as an integer (0 for NULL).
    public func int64(_ column: Int) -> Int64 { sqlite3_column_int64(stmt, Int32(column)) }

    /// The column as an Int (0 for NULL).
    public func int(_ column: Int) -> Int { Int(sqlite3_column_int64(stmt, Int32(column))) }

    /// The column as a Double (0 for NULL).
    public func double(_ column: Int) -> Double { sqlite3_column_double(stmt, Int32(column)) }

    /// The column as text ("" for NULL); invalid UTF-8 is repaired.
    public func text(_ column: Int) -> String {
        guard let p = sqlite3_column_text(stmt, Int32(column)) else { return "" }
        let n = Int(sqlite3_column_bytes(stmt, Int32(column)))
        return String(decoding: UnsafeBufferPointer(start: p, count: n), as: UTF8.self)
    }

    /// The column as bytes (empty for NULL).
    public func blob(_ column: Int) -> [UInt8] {
        let n = Int(sqlite3_column_bytes(stmt, Int32(column)))
        guard n > 0, let p = sqlite3_column_blob(stmt, Int32(column)) else { return [] }
        return Array(UnsafeRawBufferPointer(start: p, count: n))
    }

    /// The column as a tagged value.
    public func value(_ column: Int) -> SQLValue {
        switch sqlite3_column_type(stmt, Int32(column)) {
        case SQLITE_INTEGER: return .integer(int64(column))
        case SQLITE_FLOAT: return .real(double(column))
        case SQLITE_TEXT: return .text(text(column))
        case SQLITE_BLOB: return .blob(blob(column))
        default: return .null
        }
    }
}
