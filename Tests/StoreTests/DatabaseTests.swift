import Foundation
import Store
import Testing

@Suite("Database wrapper")
struct DatabaseTests {
    @Test("typed binding and reading round-trip every SQLite type")
    func typedRoundTrip() throws {
        let db = try Database(path: ":memory:")
        try db.execute("CREATE TABLE t (i INTEGER, r REAL, s TEXT, b BLOB, n TEXT)")
        try db.run(
            "INSERT INTO t VALUES (?, ?, ?, ?, ?)",
            [.integer(-42), .real(2.5), .text("héllo\u{0}x"), .blob([0, 1, 255]), .null])
        let rows = try db.query("SELECT i, r, s, b, n FROM t") { row in
            (row.int(0), row.double(1), row.text(2), row.blob(3), row.isNull(4), row.value(4))
        }
        #expect(rows.count == 1)
        let row = try #require(rows.first)
        #expect(row.0 == -42)
        #expect(row.1 == 2.5)
        #expect(row.2 == "héllo\u{0}x")
        #expect(row.3 == [0, 1, 255])
        #expect(row.4)
        #expect(row.5 == .null)
    }

    @Test("errors carry the code, SQLite's message and the SQL")
    func errorsAreStructs() throws {
        let db = try Database(path: ":memory:")
        do {
            try db.execute("SELEC 1")
            Issue.record("expected a syntax error")
        } catch {
            #expect(error.code == 1)
            #expect(error.message.contains("SELEC"))
            #expect(error.sql == "SELEC 1")
        }
        try db.execute("CREATE TABLE u (a TEXT UNIQUE)")
        try db.run("INSERT INTO u VALUES (?)", [.text("x")])
        do {
            try db.run("INSERT INTO u VALUES (?)", [.text("x")])
            Issue.record("expected a constraint error")
        } catch {
            #expect(error.code & 0xFF == 19)  // SQLITE_CONSTRAINT
            #expect(error.sql == "INSERT INTO u VALUES (?)")
        }
        #expect(throws: DatabaseError.self) { try db.run("INSERT INTO u VALUES (?)", []) }
    }

    @Test("opening a directory that does not exist fails with a clear message")
    func openFailure() {
        do {
            _ = try Database(path: "/nonexistent-dir-pcl/x.sqlite3")
            Issue.record("expected open to fail")
        } catch {
            #expect(error.message.contains("/nonexistent-dir-pcl/x.sqlite3"))
            #expect(error.code == 14)  // SQLITE_CANTOPEN
        }
    }

    @Test("transactions commit, and roll back when the body throws")
    func transactions() throws {
        struct Boom: Error {}
        let db = try Database(path: ":memory:")
        try db.execute("CREATE TABLE t (a INTEGER)")
        try db.transaction { try db.run("INSERT INTO t VALUES (1)") }
        #expect(throws: Boom.self) {
            try db.transaction {
                try db.run("INSERT INTO t VALUES (2)")
                throw Boom()
            }
        }
        #expect(try db.query("SELECT a FROM t") { $0.int(0) } == [1])
    }

    @Test("file databases use WAL, and the schema version is readable")
    func walAndVersion() throws {
        let dir = try TemporaryDirectory()
        let db = try Database(path: dir.path + "/w.sqlite3")
        #expect(try db.journalMode() == "wal")
        #expect(try db.userVersion == 0)
        try db.setUserVersion(7)
        #expect(try db.userVersion == 7)
    }

    @Test("a busy writer makes a second writer wait, then fail with SQLITE_BUSY after the timeout")
    func busyTimeout() throws {
        let dir = try TemporaryDirectory()
        let path = dir.path + "/b.sqlite3"
        let a = try Database(path: path)
        let b = try Database(path: path, options: .init(busyTimeoutMilliseconds: 50))
        try a.execute("CREATE TABLE t (x INTEGER)")
        try a.execute("BEGIN IMMEDIATE")
        do {
            try b.execute("BEGIN IMMEDIATE")
            Issue.record("expected SQLITE_BUSY")
        } catch {
            #expect(error.isBusy)
        }
        try a.execute("COMMIT")
        try b.execute("BEGIN IMMEDIATE; COMMIT")
    }
}

/// A directory under /tmp removed when the value is released.
final class TemporaryDirectory {
    let path: String
    init() throws {
        var template = Array("/tmp/pcl-store-XXXXXX".utf8CString)
        guard let p = mkdtemp(&template) else { throw CocoaError(.fileWriteUnknown) }
        path = String(cString: p)
    }
    deinit { try? FileManager.default.removeItem(atPath: path) }
}
