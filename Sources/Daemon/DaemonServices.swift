internal import CNetlink
import Control
import Logging
import MetricsExport
import ServiceLifecycle
import UnixSignals

// The running daemon's parts, each a `Service` in one `ServiceGroup` (`PortcullisDaemon.run()`). The group shuts
// them down in the reverse of their order there, each finished before the next is told, and that order is the
// daemon's stop sequence: the metrics endpoint (when configured), the control socket and the reload trigger go
// first (no command and no reload after the stop began), then the housekeeping tick, then the log sources (readers
// stopped, the channel finished), and last the consumer, which records what the readers had already handed over and
// ends when the channel is empty.

/// Moves everything the log sources read into the coordinator. It does not stop on graceful shutdown: it ends when
/// ``SourcesService`` has finished the channel and the queue is empty, so no failure already read is lost, and the
/// group has asked it to stop (its turn comes right after the sources').
struct ConsumerService: Service {
    let channel: SourceChannel
    let coordinator: BanCoordinator

    func run() async {
        while let batches = await channel.next() { await coordinator.process(batches) }
        // The channel ends when the sources stopped, one step before the group asks this service to stop: returning
        // now would be a service ending out of turn, which the group reports as an error ("a part of the daemon ended
        // unexpectedly", one stop in three). Wait for this service's own turn.
        try? await gracefulShutdown()
    }
}

/// The file tailer and journal readers (threads of their own, see ``SourceSet``): started with the jails, stopped
/// on graceful shutdown, after which the channel is finished so that ``ConsumerService`` drains it and ends.
struct SourcesService: Service {
    let sources: SourceSet
    let channel: SourceChannel
    /// Runs before the readers stop: closes the door to reloads, which would start them again.
    let beforeStop: @Sendable () async -> Void

    func run() async {
        // The readers were started with the jails, before the group ran (a reload may restart them with new jails
        // any time after that).
        try? await gracefulShutdown()
        await beforeStop()
        // Readers first (a reader blocked on the full channel is released by the consumer, still running), then
        // the channel: the consumer processes what is left and ends; the positions are stored with that work.
        sources.stop()
        channel.finish()
    }
}

/// Once a second: ban expiry, kernel-set checks and store retries (`BanCoordinator.housekeeping`); once an hour,
/// purging the store of bans older than `dbpurgeage`.
struct HousekeepingService: Service {
    let coordinator: BanCoordinator
    /// `dbpurgeage` in seconds, read at each purge (`set dbpurgeage` changes it at run time).
    let purgeAge: @Sendable () -> Double

    func run() async {
        var tick = 0
        while !Task.isCancelled, !Task.isShuttingDownGracefully {
            do {
                try await cancelWhenGracefulShutdown { try await Task.sleep(for: .seconds(1)) }
            } catch {
                return
            }
            await coordinator.housekeeping()
            tick += 1
            if tick % 3600 == 0 { await coordinator.purgeStore(purgeAge: purgeAge()) }
            // glibc keeps what a burst freed in its per-thread arenas (~30 MB after 10,000 bans, 12 MB of it in
            // use: bench/speed-table.md); every 30 s it is given back to the system (a few ms at most).
            if tick % 30 == 0 { _ = portcullis_malloc_trim() }
        }
    }
}

/// SIGHUP reloads the configuration (as `reload` does) and reopens the log file (logrotate).
struct HangupService: Service {
    /// SIGHUP and SIGUSR1, trapped when the daemon began (``PortcullisDaemon/run()``): one that arrived during the
    /// start waits here and is handled now.
    let signals: UnixSignalsSequence
    let reload: @Sendable () async -> Void
    /// SIGUSR1: reopen the log file only (fail2ban's flush of its logs).
    let flushLogs: @Sendable () -> Void

    func run() async {
        for await signal in signals.cancelOnGracefulShutdown() {
            if signal == .sighup { await reload() }
            flushLogs()
        }
    }
}

/// The control socket (fail2ban-client's protocol and JSON lines); closed on graceful shutdown, first of all.
struct ControlService: Service {
    let server: ControlServer

    func run() async {
        await cancelWhenGracefulShutdown { await server.run() }
    }
}

/// The Prometheus endpoint (`metrics = ADDR:PORT`); closed on graceful shutdown, first of all.
struct MetricsService: Service {
    let server: MetricsServer

    func run() async {
        await cancelWhenGracefulShutdown { await server.run() }
    }
}
