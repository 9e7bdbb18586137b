import Core
import Synchronization

#if canImport(Glibc)
import Glibc
#endif

/// Where the fleet thread finds the bans to send (the local store's outbox, written in the same transaction as
/// the bans themselves) and keeps how far it has read the shared table.
public protocol FleetOutbox: Sendable {
    /// The oldest unsent records, in order, with their local sequence numbers.
    func pending(limit: Int) throws -> [(seq: Int64, record: FleetRecord)]
    /// Records up to `seq` are in the shared table: forget them.
    func delivered(upTo seq: Int64) throws
    /// The highest shared-table id read so far.
    func cursor() throws -> Int64
    /// Stores the highest shared-table id read.
    func setCursor(_ id: Int64) throws
}

/// Shares bans through PostgreSQL, on one dedicated thread (libpq is blocking; the daemon's executors never wait
/// for it). Each ban and unban of the fleet's jails goes from the outbox to the table `portcullis_fleet` in one
/// statement per record that also announces it (`pg_notify('portcullis_fleet', 'v1 ID HOST')`), with a unique
/// (host, seq) so a record sent twice (a crash between the commit and the outbox's delete) is stored once. Writers
/// take a transaction advisory lock, so ids commit in order and a reader that resumes after its highest id misses
/// nothing. Peers wake on the notification and read every row after their cursor, in id order.
///
/// PostgreSQL down or unreachable: the outbox keeps growing in the local store (local banning is unaffected), the
/// thread retries (0.5 s doubling to 2 s) and, once connected, sends the outbox in order and catches up.
public final class FleetService: Sendable {
    /// The channel and the table.
    public static let channel = "portcullis_fleet"
    public static let table = "portcullis_fleet"

    let configuration: FleetConfiguration
    let outbox: FleetOutbox
    let onRecords: @Sendable ([FleetRecord]) -> Void
    let log: @Sendable (FleetLogLevel, String) -> Void
    private let wakePipe: (read: Int32, write: Int32)
    private let stopped = Atomic<Bool>(false)
    private let finished = Mutex<Bool>(false)

    /// A service; `onRecords` gets the peers' records (every host but this one) in table order, on the fleet
    /// thread; `log` gets one line per event worth a line.
    public init(
        configuration: FleetConfiguration, outbox: FleetOutbox,
        onRecords: @escaping @Sendable ([FleetRecord]) -> Void,
        log: @escaping @Sendable (FleetLogLevel, String) -> Void
    ) {
        self.configuration = configuration
        self.outbox = outbox
        self.onRecords = onRecords
        self.log = log
        var fds: [Int32] = [-1, -1]
        if pipe(&fds) == 0 {
            for fd in fds {
                _ = fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK)
                _ = fcntl(fd, F_SETFD, FD_CLOEXEC)
            }
        } else {
            fds = [-1, -1]
        }
        wakePipe = (fds[0], fds[1])
    }

    deinit {
        if wakePipe.read >= 0 { close(wakePipe.read) }
        if wakePipe.write >= 0 { close(wakePipe.write) }
    }

    /// Why PostgreSQL's client library (libpq.so.5, loaded on first use) cannot be loaded, or nil when it can.
    public static var clientLibraryProblem: String? { PGConnection.libraryProblem }

    /// Starts the thread.
    public func start() throws {
        try DedicatedThread.detached { [self] in run() }
    }

    /// New outbox records are committed: send them now.
    public func wake() {
        var b: UInt8 = 1
        _ = write(wakePipe.write, &b, 1)
    }

    /// Stops the thread (returns at once; the thread ends within a poll interval).
    public func stop() {
        stopped.store(true, ordering: .relaxed)
        wake()
    }

    private func password() -> String? {
        guard let path = configuration.passwordFile else { return nil }
        guard let text = FleetFile.contents(path) else {
            log(.error, "fleet: cannot read the password file \(path); connecting without a password")
            return nil
        }
        return trim(text)
    }

    private func run() {
        var connection: PGConnection? = nil
        var backoff = 0.5
        var lastError = ""
        while !stopped.load(ordering: .relaxed) {
            if connection == nil {
                do {
                    let c = try PGConnection(conninfo: configuration.url, password: password())
                    try prepare(c)
                    connection = c
                    backoff = 0.5
                    lastError = ""
                    log(.info, "fleet: connected to PostgreSQL as host \(configuration.name)")
                } catch {
                    if error.message != lastError {
                        log(
                            .error,
                            "fleet: PostgreSQL unreachable or refused (\(error.message)); bans are kept in the local outbox and sent when it is back"
                        )
                        lastError = error.message
                    }
                    sleepOrWake(seconds: backoff)
                    backoff = min(backoff * 2, 2)
                    continue
                }
            }
            guard let c = connection else { continue }
            do {
                try flushOutbox(c)
                try catchUp(c)
                try waitForWork(c)
            } catch {
                log(.error, "fleet: lost PostgreSQL (\(error.message)); reconnecting")
                lastError = error.message
                connection = nil
            }
        }
        finished.withLock { $0 = true }
    }

    /// The table (created if missing) and LISTEN.
    private func prepare(_ c: PGConnection) throws(FleetError) {
        try c.query(
            """
            CREATE TABLE IF NOT EXISTS \(Self.table) (
                id bigserial PRIMARY KEY,
                host text NOT NULL,
                seq bigint NOT NULL,
                jail text NOT NULL,
                address text NOT NULL,
                kind text NOT NULL,
                at double precision NOT NULL,
                ends double precision,
                UNIQUE (host, seq)
            )
            """)
        try c.query("LISTEN \(Self.channel)")
    }

    /// Sends the outbox in order, a batch per transaction (one statement per record: insert and announce).
    private func flushOutbox(_ c: PGConnection) throws(FleetError) {
        while !stopped.load(ordering: .relaxed) {
            let rows: [(seq: Int64, record: FleetRecord)]
            do {
                rows = try outbox.pending(limit: 500)
            } catch {
                log(.error, "fleet: cannot read the outbox from the local store: \(error)")
                return
            }
            guard let last = rows.last?.seq else { return }
            try c.query("BEGIN")
            do {
                // Ids commit in order: a reader resuming after its highest id misses no row.
                try c.query("SELECT pg_advisory_xact_lock(7368324)")
                for (seq, r) in rows {
                    try c.query(
                        """
                        WITH ins AS (
                            INSERT INTO \(Self.table) (host, seq, jail, address, kind, at, ends)
                            VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT (host, seq) DO NOTHING RETURNING id)
                        SELECT pg_notify('\(Self.channel)', 'v1 ' || id || ' ' || $1) FROM ins
                        """,
                        [
                            configuration.name, String(seq), r.jail, r.address.description, r.kind.rawValue,
                            String(r.time), r.end.map { String($0) },
                        ])
                }
                try c.query("COMMIT")
            } catch {
                _ = try? c.query("ROLLBACK")
                throw error
            }
            do {
                try outbox.delivered(upTo: last)
            } catch {
                log(
                    .error,
                    "fleet: cannot mark the outbox as sent in the local store: \(error) (records may be sent again; the table keeps each once)"
                )
                return
            }
        }
    }

    /// Reads every row after the cursor, in id order, and hands the peers' records over.
    private func catchUp(_ c: PGConnection) throws(FleetError) {
        var cursor: Int64
        do {
            cursor = try outbox.cursor()
        } catch {
            log(.error, "fleet: cannot read the fleet cursor from the local store: \(error)")
            return
        }
        while !stopped.load(ordering: .relaxed) {
            let rows: [[String?]]
            do {
                rows = try c.query(
                    "SELECT id, host, jail, address, kind, at, ends FROM \(Self.table) WHERE id > $1 ORDER BY id LIMIT 2000",
                    [String(cursor)])
            } catch {
                if c.isOK {
                    log(
                        .error,
                        "fleet: cannot read \(Self.table) (\(error.message)); was the table altered by hand? Retrying")
                    sleepOrWake(seconds: 5)
                    return
                }
                throw error
            }
            guard !rows.isEmpty else { return }
            var records: [FleetRecord] = []
            for row in rows {
                guard let idText = row[0], let id = Int64(idText) else { continue }
                cursor = max(cursor, id)
                guard let r = Self.record(row, id: id) else {
                    log(
                        .warning,
                        "fleet: row \(id) of \(Self.table) is not a ban Portcullis wrote (altered by hand?); skipped")
                    continue
                }
                if r.host != configuration.name { records.append(r) }
            }
            if !records.isEmpty { onRecords(records) }
            do {
                try outbox.setCursor(cursor)
            } catch {
                log(.error, "fleet: cannot store the fleet cursor: \(error)")
            }
        }
    }

    /// A row as a record; nil when a field does not parse.
    static func record(_ row: [String?], id: Int64) -> FleetRecord? {
        guard row.count == 7, let host = row[1], let jail = row[2], let addressText = row[3],
            let address = IPAddress(addressText), let kindText = row[4],
            let kind = FleetRecord.Kind(rawValue: kindText),
            let atText = row[5], let at = Double(atText), at.isFinite, at >= 0, at <= Bounds.maximumSeconds,
            !host.isEmpty, host.utf8.count <= 64, !jail.isEmpty, jail.utf8.count <= 200
        else { return nil }
        var end: Double? = nil
        if let endText = row[6] {
            guard let e = Double(endText), e.isFinite, e >= 0 else { return nil }
            end = min(e, Bounds.maximumSeconds)
        }
        return FleetRecord(id: id, host: host, jail: jail, address: address, kind: kind, time: at, end: end)
    }

    /// Waits up to a second for a notification or a wake-up; notifications that are not ours are logged.
    private func waitForWork(_ c: PGConnection) throws(FleetError) {
        var fds = [
            pollfd(fd: c.socket, events: Int16(POLLIN), revents: 0),
            pollfd(fd: wakePipe.read, events: Int16(POLLIN), revents: 0),
        ]
        let n = poll(&fds, 2, 1000)
        if n < 0 { return }
        if fds[1].revents != 0 { drainWake() }
        // Also when nothing is readable: consumeInput notices a connection the server closed.
        for note in try c.notifications() {
            if !Self.isOurs(note.channel, note.payload) {
                log(
                    .warning,
                    "fleet: ignored a notification on \(note.channel) that is not Portcullis's: '\(String(note.payload.prefix(80)))'"
                )
            }
        }
        guard c.isOK else { throw FleetError("connection closed") }
    }

    /// `v1 ID HOST` on our channel.
    static func isOurs(_ channel: String, _ payload: String) -> Bool {
        let words = payload.split(separator: " ")
        return channel == Self.channel && words.count == 3 && words[0] == "v1" && Int64(words[1]) != nil
    }

    private func drainWake() {
        var buffer = [UInt8](repeating: 0, count: 64)
        while read(wakePipe.read, &buffer, buffer.count) > 0 {}
    }

    private func sleepOrWake(seconds: Double) {
        var fds = [pollfd(fd: wakePipe.read, events: Int16(POLLIN), revents: 0)]
        _ = poll(&fds, 1, Int32(seconds * 1000))
        drainWake()
    }
}

/// How much a fleet log line matters.
public enum FleetLogLevel: Sendable {
    case info, warning, error
}

enum FleetFile {
    static func contents(_ path: String) -> String? {
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { return nil }
        defer { close(fd) }
        var out: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: 4096)
        while out.count < 65536 {
            let n = Glibc.read(fd, &buffer, buffer.count)
            guard n > 0 else { break }
            out += buffer[0..<n]
        }
        return String(decoding: out, as: UTF8.self)
    }
}
