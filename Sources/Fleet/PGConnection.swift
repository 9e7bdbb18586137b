internal import CLibPQ

#if canImport(Glibc)
import Glibc
#endif

/// A PostgreSQL or `[fleet]` configuration error: what failed and libpq's message, or the value's place.
public struct FleetError: Error, Sendable, CustomStringConvertible {
    /// What is wrong, without the place.
    public let detail: String
    /// Where the offending configuration value was written (`FILE:LINE`), nil for other errors.
    public let place: String?
    /// An error.
    public init(_ detail: String, at place: String? = nil) {
        self.detail = detail
        self.place = place
    }
    /// One line for the log: `FILE:LINE: detail`, or the detail alone.
    public var message: String { place.map { "\($0): \(detail)" } ?? detail }
    public var description: String { message }
}

/// One libpq connection (the only libpq user), used by one thread only (the fleet thread), so not `Sendable`.
///
/// ```swift
/// let pg = try PGConnection(conninfo: "postgresql://portcullis@/portcullis?host=/run/postgresql")
/// let rows = try pg.query("SELECT $1::int + 1", ["41"])   // [["42"]]
/// try pg.execute("LISTEN portcullis_fleet")
/// ```
final class PGConnection {
    private let handle: OpaquePointer

    /// Connects (blocking, libpq's `connect_timeout` applies); throws with libpq's message.
    /// Why libpq cannot be loaded (the message says what to install), nil when it is loaded.
    static var libraryProblem: String? {
        guard let failure = portcullis_pq_load() else { return nil }
        return "cannot load PostgreSQL's client library for [fleet] (\(String(cString: failure))): "
            + "install the libpq5 package"
    }

    init(conninfo: String, password: String?) throws(FleetError) {
        if let problem = Self.libraryProblem { throw FleetError(problem) }
        var keys: [String] = ["dbname", "connect_timeout", "application_name"]
        var values: [String] = [conninfo, "5", "portcullis"]
        if let password {
            keys.append("password")
            values.append(password)
        }
        // expand_dbname = 1: `dbname` may be a URI or a conninfo string; the other keys complete it.
        let cKeys = keys.map { strdup($0) } + [nil]
        let cValues = values.map { strdup($0) } + [nil]
        defer {
            for p in cKeys { free(p) }
            for p in cValues { free(p) }
        }
        let conn = cKeys.map { UnsafePointer($0) }.withUnsafeBufferPointer { k in
            cValues.map { UnsafePointer($0) }.withUnsafeBufferPointer { v in
                portcullis_PQconnectdbParams(k.baseAddress, v.baseAddress, 1)
            }
        }
        guard let conn else { throw FleetError("out of memory for a PostgreSQL connection") }
        guard portcullis_PQstatus(conn) == CONNECTION_OK else {
            let message = Self.text(portcullis_PQerrorMessage(conn))
            portcullis_PQfinish(conn)
            throw FleetError(message)
        }
        handle = conn
    }

    deinit { portcullis_PQfinish(handle) }

    static func text(_ p: UnsafePointer<CChar>?) -> String {
        guard let p else { return "" }
        return String(cString: p).trimmingTrailingNewlines()
    }

    /// The connection's descriptor, for `poll`.
    var socket: Int32 { portcullis_PQsocket(handle) }

    /// True while the connection is usable.
    var isOK: Bool { portcullis_PQstatus(handle) == CONNECTION_OK }

    /// Runs one statement with text parameters (`$1`…; nil = NULL) and returns its rows as text (NULL = nil).
    @discardableResult
    func query(_ sql: String, _ parameters: [String?] = []) throws(FleetError) -> [[String?]] {
        let copies = parameters.map { $0.map { strdup($0) } ?? nil }
        defer { for p in copies { free(p) } }
        let result = copies.map { UnsafePointer($0) }.withUnsafeBufferPointer { params in
            portcullis_PQexecParams(handle, sql, Int32(parameters.count), nil, params.baseAddress, nil, nil, 0)
        }
        guard let result else { throw FleetError(Self.text(portcullis_PQerrorMessage(handle))) }
        defer { portcullis_PQclear(result) }
        let status = portcullis_PQresultStatus(result)
        guard status == PGRES_COMMAND_OK || status == PGRES_TUPLES_OK else {
            throw FleetError(Self.text(portcullis_PQresultErrorMessage(result)))
        }
        var rows: [[String?]] = []
        let n = portcullis_PQntuples(result)
        let m = portcullis_PQnfields(result)
        rows.reserveCapacity(Int(n))
        for r in 0..<n {
            var row: [String?] = []
            for c in 0..<m {
                row.append(
                    portcullis_PQgetisnull(result, r, c) == 1
                        ? nil : String(cString: portcullis_PQgetvalue(result, r, c)))
            }
            rows.append(row)
        }
        return rows
    }

    /// Reads what the server sent (after `poll` said readable) and returns the notifications received, as
    /// (channel, payload). Throws when the connection broke.
    func notifications() throws(FleetError) -> [(channel: String, payload: String)] {
        guard portcullis_PQconsumeInput(handle) == 1 else {
            throw FleetError(Self.text(portcullis_PQerrorMessage(handle)))
        }
        var out: [(channel: String, payload: String)] = []
        while let n = portcullis_PQnotifies(handle) {
            out.append((String(cString: n.pointee.relname), String(cString: n.pointee.extra)))
            portcullis_PQfreemem(n)
        }
        return out
    }
}

extension String {
    func trimmingTrailingNewlines() -> String {
        var s = Substring(self)
        while let last = s.last, last == "\n" || last == " " { s = s.dropLast() }
        return String(s)
    }
}
