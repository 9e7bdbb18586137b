import Prometheus
import Synchronization

/// One jail's numbers at a scrape, as the daemon keeps them (totals since the jail started).
public struct JailMetricsSnapshot: Sendable, Hashable {
    /// The jail.
    public var jail: String
    /// Log lines handed to the jail's filter.
    public var linesRead = 0
    /// Time its filter spent on them (nanoseconds).
    public var filterNanoseconds: UInt64 = 0
    /// Lines skipped whole for their length, and lines at PCRE2's match limit.
    public var linesTooLong = 0
    public var linesAtMatchLimit = 0
    /// Failures counted (`Total failed` of `status`).
    public var failures = 0
    /// Bans (`Total banned`), bans lifted (expired or unbanned) and bans put back from the store at start or reload.
    public var bans = 0
    public var unbans = 0
    public var restores = 0
    /// Addresses banned now, and addresses with failures below `maxretry` now.
    public var banned = 0
    public var failing = 0
    /// Command-action jobs refused because the jail's queue was full, or left unrun at stop.
    public var actionQueueDrops = 0

    /// Zero numbers for `jail`.
    public init(jail: String) { self.jail = jail }
}

/// The daemon's numbers at a scrape.
public struct MetricsSnapshot: Sendable, Hashable {
    /// Per jail, in the daemon's order.
    public var jails: [JailMetricsSnapshot] = []
    /// Store transactions that failed (each retry counts).
    public var storeErrors = 0
    /// Changes waiting to be written to the store.
    public var storeQueued = 0
    /// Times a log reader waited because the coordinator's queue was full (nothing is dropped there).
    public var readerWaits = 0

    /// An empty snapshot.
    public init() {}
}

/// Portcullis's Prometheus metrics (swift-prometheus registry, text exposition format). The daemon's totals are
/// read at each scrape (``exposition(_:)``) and carried into counters by their increase, so the line path pays
/// nothing for metrics; only the nftables transaction latency is recorded as it happens (``recordTransaction(_:)``).
///
/// ```swift
/// let metrics = PortcullisMetrics()
/// metrics.recordTransaction(.microseconds(420))
/// var snapshot = MetricsSnapshot()
/// snapshot.jails = [JailMetricsSnapshot(jail: "sshd")]
/// print(String(decoding: metrics.exposition(snapshot), as: UTF8.self))   // # TYPE portcullis_bans_total counter …
/// ```
public final class PortcullisMetrics: Sendable {
    private let registry = PrometheusCollectorRegistry()
    private let transactions: DurationHistogram
    private let storeErrors: Counter
    private let storeQueued: Gauge
    private let readerWaits: Counter
    private let state = Mutex(State())

    /// Bucket bounds of `portcullis_nftables_transaction_seconds` (100 µs … 2.5 s).
    public static let transactionBuckets: [Duration] = [
        .microseconds(100), .microseconds(250), .microseconds(500), .milliseconds(1), .microseconds(2500),
        .milliseconds(5), .milliseconds(10), .milliseconds(25), .milliseconds(50), .milliseconds(100),
        .milliseconds(250), .milliseconds(500), .seconds(1), .milliseconds(2500),
    ]

    private struct JailSeries {
        var counters: [String: Counter] = [:]
        var gauges: [String: Gauge] = [:]
        /// The totals last carried into the counters.
        var last: [String: UInt64] = [:]
    }

    private struct State {
        var jails: [String: JailSeries] = [:]
        var last: [String: UInt64] = [:]
    }

    /// The per-jail counters: name, help.
    static let jailCounters: [(String, String)] = [
        ("portcullis_lines_read_total", "Log lines handed to the jail's filter."),
        ("portcullis_filter_seconds_total", "Time the jail's filter spent on its lines."),
        ("portcullis_lines_too_long_total", "Lines skipped whole because they were longer than the limit."),
        ("portcullis_lines_match_limit_total", "Lines on which a regex hit the PCRE2 match limit."),
        ("portcullis_failures_total", "Failures counted (status: Total failed)."),
        ("portcullis_bans_total", "Bans (status: Total banned)."),
        ("portcullis_unbans_total", "Bans lifted: expired, or unbanned by a command."),
        ("portcullis_restored_bans_total", "Bans put back from the store at start or reload."),
        ("portcullis_action_queue_drops_total", "Command-action jobs dropped: the jail's queue was full, or at stop."),
    ]
    /// The per-jail gauges: name, help.
    static let jailGauges: [(String, String)] = [
        ("portcullis_banned", "Addresses banned now."),
        ("portcullis_failing", "Addresses with failures below maxretry now."),
        ("portcullis_filter_seconds_per_line", "Mean filter time per line since the jail started."),
    ]

    /// An empty registry with the global series.
    public init() {
        transactions = registry.makeDurationHistogram(
            descriptor: MetricNameDescriptor(
                metricName: "portcullis_nftables_transaction", unitName: "seconds",
                helpText: "Time of one nftables transaction (bans, unbans, restores, rebuilds), in libnftables."),
            buckets: Self.transactionBuckets)
        storeErrors = registry.makeCounter(
            descriptor: MetricNameDescriptor(
                metricName: "portcullis_store_errors", unitName: "total",
                helpText: "Store transactions that failed (each retry counts)."))
        storeQueued = registry.makeGauge(
            descriptor: MetricNameDescriptor(
                metricName: "portcullis_store_queued_changes", unitName: "",
                helpText: "Changes waiting to be written to the store."))
        readerWaits = registry.makeCounter(
            descriptor: MetricNameDescriptor(
                metricName: "portcullis_reader_waits", unitName: "total",
                helpText: "Times a log reader waited for room in the coordinator's queue (nothing is dropped)."))
    }

    /// Records one nftables transaction's duration (called on the firewall's thread).
    public func recordTransaction(_ duration: Duration) {
        transactions.record(duration)
    }

    /// The exposition text after carrying `snapshot` into the series. Jails no longer in the snapshot (removed by
    /// a reload) lose their series.
    public func exposition(_ snapshot: MetricsSnapshot) -> [UInt8] {
        state.withLock { s in
            Self.carry(UInt64(max(0, snapshot.storeErrors)), key: "store_errors", into: storeErrors, last: &s.last)
            Self.carry(UInt64(max(0, snapshot.readerWaits)), key: "reader_waits", into: readerWaits, last: &s.last)
            storeQueued.set(Double(snapshot.storeQueued))

            let present = Set(snapshot.jails.map(\.jail))
            for (name, series) in s.jails where !present.contains(name) {
                for c in series.counters.values { registry.unregisterCounter(c) }
                for g in series.gauges.values { registry.unregisterGauge(g) }
                s.jails[name] = nil
            }
            for jail in snapshot.jails {
                var series = s.jails[jail.jail] ?? makeSeries(jail.jail)
                let totals: [String: UInt64] = [
                    "portcullis_lines_read_total": UInt64(max(0, jail.linesRead)),
                    "portcullis_lines_too_long_total": UInt64(max(0, jail.linesTooLong)),
                    "portcullis_lines_match_limit_total": UInt64(max(0, jail.linesAtMatchLimit)),
                    "portcullis_failures_total": UInt64(max(0, jail.failures)),
                    "portcullis_bans_total": UInt64(max(0, jail.bans)),
                    "portcullis_unbans_total": UInt64(max(0, jail.unbans)),
                    "portcullis_restored_bans_total": UInt64(max(0, jail.restores)),
                    "portcullis_action_queue_drops_total": UInt64(max(0, jail.actionQueueDrops)),
                ]
                for (name, value) in totals {
                    if let c = series.counters[name] { Self.carry(value, key: name, into: c, last: &series.last) }
                }
                if let c = series.counters["portcullis_filter_seconds_total"] {
                    let key = "portcullis_filter_seconds_total"
                    let before = series.last[key] ?? 0
                    let now = jail.filterNanoseconds
                    // A jail replaced by a reload starts again from 0: its whole total is the increase.
                    let increase = now >= before ? now - before : now
                    if increase > 0 { c.increment(by: Double(increase) / 1e9) }
                    series.last[key] = now
                }
                series.gauges["portcullis_banned"]?.set(Double(jail.banned))
                series.gauges["portcullis_failing"]?.set(Double(jail.failing))
                series.gauges["portcullis_filter_seconds_per_line"]?.set(
                    jail.linesRead > 0 ? Double(jail.filterNanoseconds) / 1e9 / Double(jail.linesRead) : 0)
                s.jails[jail.jail] = series
            }
        }
        return registry.emitToBuffer()
    }

    private func makeSeries(_ jail: String) -> JailSeries {
        var series = JailSeries()
        let labels = [("jail", jail)]
        for (name, help) in Self.jailCounters {
            series.counters[name] = registry.makeCounter(
                descriptor: MetricNameDescriptor(
                    metricName: String(name.dropLast(6)), unitName: "total", helpText: help),
                labels: labels)
        }
        for (name, help) in Self.jailGauges {
            series.gauges[name] = registry.makeGauge(
                descriptor: MetricNameDescriptor(metricName: name, unitName: "", helpText: help), labels: labels)
        }
        return series
    }

    /// Adds the increase of `total` since the last scrape to `counter` (a total that went down belongs to a jail
    /// that a reload started afresh: all of it is new).
    private static func carry(_ total: UInt64, key: String, into counter: Counter, last: inout [String: UInt64]) {
        let before = last[key] ?? 0
        let increase = total >= before ? total - before : total
        if increase > 0 { counter.increment(by: Int64(clamping: increase)) }
        last[key] = total
    }
}
