import Configuration
import Filter
import Foundation
import Jail
import LogSource
import Synchronization
import Testing

@testable import Daemon

/// Jails on one file with the same date settings find each line's date once between them (`BatchDates`): every
/// jail must still find exactly the failures, times and fields it finds with a date detector of its own. Checked
/// through the real file tailer on fail2ban's own sample logs of eight stock filters (read from the installed
/// fail2ban at test time), concatenated into one file: many date formats, multi-line filters, comment lines.
@Suite("Shared date detection for jails on one file", .serialized)
struct SharedDatesTests {
    static let filters = [
        "sshd", "dovecot", "postfix", "pam-generic", "courier-auth", "sendmail-auth", "proftpd", "dropbear",
    ]
    static let samples = "/usr/lib/python3/dist-packages/fail2ban/tests/files/logs"

    final class Collected: Sendable {
        let events = Mutex<[String: [FailureEvent]]>([:])
        func add(_ jail: String, _ e: [FailureEvent]) { events.withLock { $0[jail, default: []] += e } }
        var all: [String: [FailureEvent]] { events.withLock { $0 } }
    }

    @Test("each jail finds the same failures with the shared dates as with its own detector")
    func sameFailures() async throws {
        let tree = ConfigTree(root: "/etc/fail2ban")
        var text = ""
        for name in Self.filters {
            text += try String(contentsOfFile: "\(Self.samples)/\(name)", encoding: .utf8)
            if !text.hasSuffix("\n") { text += "\n" }
        }
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("pcl-shared-dates-\(getpid()).log")
            .path
        try Data(text.utf8).write(to: URL(fileURLWithPath: path))
        defer { try? FileManager.default.removeItem(atPath: path) }
        let lineCount = text.split(separator: "\n", omittingEmptySubsequences: false).count - 1

        let collected = Collected()
        var groups: [String: BatchDates] = [:]
        var readers: [JailReader] = []
        let tailer = FileTailer(events: { _ in })
        for name in Self.filters {
            let filter = try CompiledFilter(try tree.loadFilter(name), options: FilterOptions())
            let key = try #require(filter.dateSharingKey)
            if groups[key] == nil {
                let finder = try #require(try filter.makeSharedDateFinder())
                groups[key] = BatchDates(finder: finder, maxLineLength: filter.options.maxLineLength)
            }
            let dates = groups[key]
            let shared = JailReader(jail: "shared:" + name, processor: try filter.makeProcessor())
            let own = JailReader(jail: "own:" + name, processor: try filter.makeProcessor())
            readers += [shared, own]
            tailer.subscribe([path], startAt: .beginning) { batch in
                shared.consume(batch, dates: dates)
                collected.add(shared.jail, shared.take())
            }
            tailer.subscribe([path], startAt: .beginning) { batch in
                own.consume(batch)
                collected.add(own.jail, own.take())
            }
        }
        try tailer.start()
        let deadline = ContinuousClock.now + .seconds(60)
        while ContinuousClock.now < deadline, readers.contains(where: { $0.counters.counts.lines < lineCount }) {
            try await Task.sleep(for: .milliseconds(20))
        }
        await tailer.sync()
        tailer.stop()

        let all = collected.all
        var total = 0
        for name in Self.filters {
            let shared = all["shared:" + name] ?? []
            let own = all["own:" + name] ?? []
            #expect(shared == own, "\(name): \(shared.count) failures with shared dates, \(own.count) with its own")
            #expect(!own.isEmpty, "\(name): its own sample log gives failures")
            total += own.count
        }
        #expect(readers.allSatisfy { $0.counters.counts.lines == lineCount })
        // Sharing happened: most filters have the default date settings, and each group dated each batch once.
        let largest =
            Dictionary(grouping: Self.filters) { name in
                (try? CompiledFilter(try tree.loadFilter(name), options: FilterOptions()).dateSharingKey) ?? nil
            }.values.map(\.count).max() ?? 0
        #expect(largest >= 4)
        let batches = groups.values.map(\.batchesDated)
        #expect(batches.allSatisfy { $0 >= 1 && $0 <= lineCount })
        #expect(total > 100)
    }
}
