import Fleet
import Logging
import Store

/// The fleet thread's view of the local store: the outbox and the cursor.
struct StoreFleetOutbox: FleetOutbox {
    let store: BanStore

    func pending(limit: Int) throws -> [(seq: Int64, record: FleetRecord)] {
        try store.fleetOutbox(limit: limit).compactMap { row in
            guard let kind = FleetRecord.Kind(rawValue: row.kind) else { return nil }
            return (
                row.seq,
                FleetRecord(host: "", jail: row.jail, address: row.address, kind: kind, time: row.time, end: row.end)
            )
        }
    }

    func delivered(upTo seq: Int64) throws { try store.deleteFleetOutbox(upTo: seq) }
    func cursor() throws -> Int64 { try store.fleetCursor() }
    func setCursor(_ id: Int64) throws { try store.setFleetCursor(id) }
}

extension PortcullisDaemon {
    /// Starts fleet sharing when the main configuration has `[fleet]`: the service's thread, and one task that
    /// hands the peers' records to the coordinator in order. Returns the service (to stop) or nil.
    static func startFleet(
        values: [String: String], store: BanStore?, coordinator: BanCoordinator, logger: Logger
    ) async throws -> FleetService? {
        let configuration: FleetConfiguration?
        do {
            configuration = try FleetConfiguration.parse(values)
        } catch {
            throw DaemonError("\(error)")
        }
        guard let configuration else { return nil }
        guard let store else {
            throw DaemonError("[fleet] needs the database (dbfile) for its outbox; set dbfile or remove [fleet]")
        }
        let (records, sink) = AsyncStream<[FleetRecord]>.makeStream()
        let service = FleetService(
            configuration: configuration, outbox: StoreFleetOutbox(store: store),
            onRecords: { sink.yield($0) },
            log: { level, line in
                switch level {
                case .info: logger.info("\(line)")
                case .warning: logger.warning("\(line)")
                case .error: logger.error("\(line)")
                }
            })
        await coordinator.setFleet(FleetLink(configuration: configuration, wake: { service.wake() }))
        Task {
            for await batch in records { await coordinator.applyFleet(batch) }
        }
        logger.info(
            "fleet: sharing jails \(configuration.jails.joined(separator: ", ")) as \(configuration.name); trusting \(configuration.trust.joined(separator: ", "))"
        )
        return service
    }
}
