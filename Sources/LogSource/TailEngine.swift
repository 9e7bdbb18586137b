#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// The tailer thread's state and loop. Everything here runs on the dedicated thread only.
final class TailEngine: @unchecked Sendable {
    // SAFETY: created on the starting thread, then used exclusively by the dedicated thread it is handed to.

    private let tailer: TailerCore
    private var inotifyFD: Int32
    private let wakeFD: Int32
    private var files: [String: TailedFile] = [:]
    private var subscribers: [UInt64: TailerCore.Subscriber] = [:]
    /// Subscribers already attached to files that existed when they subscribed (new files then start at 0).
    private var initialized: Set<UInt64> = []
    private var watchedFiles: [Int32: Set<String>] = [:]
    private var directoryWatches: [String: Int32] = [:]
    private var watchedDirectories: [Int32: String] = [:]
    private let eventBuffer: UnsafeMutableRawBufferPointer
    private var running = true
    /// Files not read to their end yet (see `readAll(_:budget:)`).
    private var backlog: Set<String> = []
    private var readBudget: UInt64 { UInt64(max(1 << 20, tailer.options.readChunkSize * 64)) }

    private var graceMillis: Int64 { millis64(tailer.options.rotationGrace) }

    private func millis64(_ d: Duration) -> Int64 {
        let (s, a) = d.components
        return s * 1000 + a / 1_000_000_000_000_000
    }

    private var mask: UInt32 { UInt32(IN_MODIFY | IN_MOVE_SELF | IN_DELETE_SELF | IN_ATTRIB) }
    private var directoryMask: UInt32 { UInt32(IN_CREATE | IN_MOVED_TO | IN_MOVED_FROM | IN_DELETE) }

    init(core: TailerCore, inotifyFD: Int32) {
        tailer = core
        self.inotifyFD = inotifyFD
        wakeFD = core.wakeRead
        eventBuffer = .allocate(byteCount: 64 * 1024, alignment: MemoryLayout<inotify_event>.alignment)
    }

    deinit {
        eventBuffer.deallocate()
    }

    private func millis(_ d: Duration) -> Int32 {
        let (s, a) = d.components
        return Int32(clamping: s * 1000 + a / 1_000_000_000_000_000)
    }

    func run() {
        let usesInotify = inotifyFD >= 0
        let period = millis(usesInotify ? tailer.options.rescanInterval : tailer.options.pollInterval)
        var fds = [pollfd(fd: wakeFD, events: Int16(POLLIN), revents: 0)]
        if usesInotify { fds.append(pollfd(fd: inotifyFD, events: Int16(POLLIN), revents: 0)) }
        var lastPass = monotonicMillis()
        while running {
            let now = monotonicMillis()
            let timeout = backlog.isEmpty ? max(0, Int32(clamping: Int64(period) - (now - lastPass))) : 0
            for i in fds.indices { fds[i].revents = 0 }
            if case .failure(let e) = Sys.poll(&fds, timeoutMilliseconds: timeout) {
                report(.failed(LogSourceError(.waitFailed, "poll failed in the log tailer", errno: e.rawValue)))
                usleep(100_000)
            }
            if fds[0].revents != 0 {
                drainWakePipe()
                handleCommands()
                if !running { break }
            }
            if usesInotify && fds[1].revents != 0 {
                handleInotify()
            }
            if !backlog.isEmpty { serviceBacklog() }
            if monotonicMillis() - lastPass >= Int64(period) {
                fullPass()
                lastPass = monotonicMillis()
            }
        }
        shutdown()
    }

    private func monotonicMillis() -> Int64 {
        var ts = timespec()
        clock_gettime(CLOCK_MONOTONIC, &ts)
        return Int64(ts.tv_sec) * 1000 + Int64(ts.tv_nsec) / 1_000_000
    }

    private func drainWakePipe() {
        var scratch = (UInt64(0), UInt64(0), UInt64(0), UInt64(0))
        while case .success(let n) = withUnsafeMutableBytes(of: &scratch, { Sys.read(wakeFD, $0.baseAddress!, 32) }),
            n > 0
        {}
    }

    private func handleCommands() {
        var syncs: [CheckedContinuation<Void, Never>] = []
        var changed = false
        for command in tailer.takeCommands() {
            switch command {
            case .subscribe(let id, let sub):
                subscribers[id] = sub
                changed = true
            case .unsubscribe(let id):
                subscribers[id] = nil
                initialized.remove(id)
                changed = true
            case .sync(let c):
                syncs.append(c)
            case .stop:
                running = false
            }
        }
        if changed && running { reconcile() }
        if !syncs.isEmpty && running {
            fullPass()
            while !backlog.isEmpty { serviceBacklog() }
        }
        for c in syncs { c.resume() }
    }

    // MARK: - Subscriptions to files

    /// Opens files newly named by the subscriptions and closes those nobody names any more.
    private func reconcile() {
        var wanted: [String: [(UInt64, TailerCore.Subscriber, literal: Bool)]] = [:]
        for (id, sub) in subscribers.sorted(by: { $0.key < $1.key }) {
            for pattern in sub.patterns {
                watchDirectory(Sys.directory(of: pattern))
                if Sys.isGlob(pattern) {
                    for path in Sys.glob(pattern) { wanted[path, default: []].append((id, sub, false)) }
                } else {
                    wanted[pattern, default: []].append((id, sub, true))
                }
            }
        }
        for (path, file) in files where wanted[path] == nil {
            closeFile(file)
            files[path] = nil
            tailer.forget(path)
        }
        for (path, subs) in wanted.sorted(by: { $0.key < $1.key }) {
            let file: TailedFile
            let isNew: Bool
            if let existing = files[path] {
                file = existing
                isNew = false
            } else {
                file = TailedFile(
                    path: path,
                    maxLineLength: tailer.options.maxLineLength,
                    chunkSize: tailer.options.readChunkSize,
                    batchEnd: tailer.batchEnd
                )
                files[path] = file
                isNew = true
            }
            var seen = Set<UInt64>()
            file.subscribers = subs.compactMap { entry in
                seen.insert(entry.0).inserted ? (id: entry.0, handler: entry.1.handler) : nil
            }
            file.literal = subs.contains { $0.literal }
            if isNew {
                // First subscriber decides where a file that existed at subscription time starts.
                let first = subs[0]
                let start: OpenStart
                if let saved = subs.lazy.compactMap({ $0.1.resume[path] }).first {
                    start = .resume(saved)
                } else if !initialized.contains(first.0) {
                    start = first.1.startAt == .beginning ? .beginning : .end
                } else {
                    start = .beginning  // appeared after subscription: all of it is new
                }
                openFile(file, start: start)
                if file.isOpen { service(file) }
            }
        }
        for id in subscribers.keys { initialized.insert(id) }
    }

    private func openFile(_ file: TailedFile, start: OpenStart) {
        switch file.open(start: start) {
        case .success(let offset):
            file.reportedMissing = false
            file.reportedError = nil
            addWatch(file)
            tailer.publish(file.position)
            tailer.batchEnd?(file.position)
            report(.opened(path: file.path, offset: offset))
        case .failure(let e) where e.rawValue == ENOENT:
            if !file.reportedMissing {
                file.reportedMissing = true
                report(.missing(path: file.path))
            }
        case .failure(let e):
            if file.reportedError != e {
                file.reportedError = e
                let error =
                    e.rawValue == EINVAL
                    ? LogSourceError(
                        .openFailed,
                        "log path \(file.path) is not a regular file (directory, FIFO or device); point logpath at a file"
                    )
                    : LogSourceError(
                        .openFailed,
                        "cannot open log file \(file.path); check it exists and is readable",
                        errno: e.rawValue
                    )
                report(.failed(error))
            }
        }
    }

    private func closeFile(_ file: TailedFile) {
        for old in file.retired {
            file.finish(old)
            if let wd = old.watch, wd != file.watch { unwatch(wd, file.path) }
        }
        file.retired.removeAll()
        backlog.remove(file.path)
        removeWatch(file)
        if file.isOpen { report(.closed(path: file.path)) }
        file.close()
    }

    // MARK: - Reading and rotation

    /// Reads a file to its end, then checks whether its path still names it (rotation, truncation, deletion).
    private func service(_ file: TailedFile) {
        if !file.retired.isEmpty {
            let done = file.drainRetired(nowMillis: monotonicMillis(), graceMillis: graceMillis)
            for old in done {
                file.finish(old)
                if let wd = old.watch { unwatch(wd, file.path) }
            }
        }
        if file.isOpen {
            if file.headChanged() {
                // Truncated and rewritten (copytruncate) before we looked: what it holds is all new.
                restartTruncated(file)
            } else {
                readAll(file, budget: readBudget)
                file.captureHead()
            }
        }
        checkIdentity(file)
        reportSkipped(file)
    }

    /// Reports the file's first over-long line, once per file.
    private func reportSkipped(_ file: TailedFile) {
        guard let length = file.unreportedTooLong else { return }
        file.unreportedTooLong = nil
        report(.lineTooLong(path: file.path, length: length, limit: file.reader.maxLineLength))
    }

    private func restartTruncated(_ file: TailedFile) {
        report(.truncated(path: file.path))
        lseek(file.fd, 0, SEEK_SET)
        file.reader.reset(at: 0, discarding: false)
        file.firstLineHash = file.computeFirstLineHash()
        file.resetHead()
        readAll(file)
        tailer.publish(file.position)
    }

    /// Reads a file to its end; with a budget, stops after about that many bytes and remembers the file as
    /// having a backlog, served between wakeups so one huge file neither starves others nor delays `stop()`.
    private func readAll(_ file: TailedFile, budget: UInt64 = .max) {
        switch file.drain(budget: budget) {
        case .success(let (n, atEnd)):
            if n > 0 { tailer.publish(file.position) }
            if atEnd { backlog.remove(file.path) } else { backlog.insert(file.path) }
            reportSkipped(file)
        case .failure(let e):
            if file.reportedError != e {
                file.reportedError = e
                report(
                    .failed(LogSourceError(.readFailed, "cannot read log file \(file.path)", errno: e.rawValue))
                )
            }
        }
    }

    private func checkIdentity(_ file: TailedFile) {
        switch Sys.statPath(file.path) {
        case .success(let st):
            guard file.isOpen, let current = file.identity else {
                openFile(file, start: .beginning)  // appeared (again)
                if file.isOpen { readAll(file) }
                return
            }
            if !st.isSameFile(as: current) {
                // Rename + create: read the old file to its end, keep reading it for a grace period (its
                // writer may not have reopened the log yet), and start the new one from its beginning.
                readAll(file)
                file.retire(nowMillis: monotonicMillis())
                report(.rotated(path: file.path))
                openFile(file, start: .beginning)
                if file.isOpen { readAll(file) }
                return
            }
            if case .success(let now) = Sys.fstat(file.fd), now.size < file.reader.readOffset {
                // Copytruncate: the file shrank; what it holds now was written after the truncation.
                restartTruncated(file)
            }
        case .failure(let e) where e.rawValue == ENOENT || e.rawValue == ENOTDIR:
            guard file.isOpen else {
                if !file.reportedMissing {
                    file.reportedMissing = true
                    report(.missing(path: file.path))
                }
                return
            }
            if case .success(let now) = Sys.fstat(file.fd), now.links > 0 {
                return  // renamed away, not yet replaced: keep following the old file
            }
            // Deleted: finish it and wait for the path to appear again.
            readAll(file)
            file.flushPartial()
            closeFile(file)
            if file.literal {
                file.reportedMissing = true
                report(.missing(path: file.path))
            } else {
                files[file.path] = nil
                tailer.forget(file.path)
            }
        case .failure(let e):
            if file.reportedError != e {
                file.reportedError = e
                report(.failed(LogSourceError(.openFailed, "cannot stat log file \(file.path)", errno: e.rawValue)))
            }
        }
    }

    private func serviceBacklog() {
        for path in backlog.sorted() {
            guard let file = files[path], file.isOpen else {
                backlog.remove(path)
                continue
            }
            readAll(file, budget: readBudget)
        }
    }

    /// Safety pass: re-expand globs, read and check every file.
    private func fullPass() {
        if subscribers.contains(where: { $0.value.patterns.contains(where: Sys.isGlob) }) { reconcile() }
        for path in files.keys.sorted() {
            if let file = files[path] { service(file) }
        }
    }

    // MARK: - inotify

    private func handleInotify() {
        var touchedFiles = Set<String>()
        var touchedDirectories = Set<String>()
        var overflow = false
        while true {
            guard case .success(let n) = Sys.read(inotifyFD, eventBuffer.baseAddress!, eventBuffer.count), n > 0
            else { break }
            var offset = 0
            while offset + MemoryLayout<inotify_event>.size <= n {
                let event = eventBuffer.load(fromByteOffset: offset, as: inotify_event.self)
                if event.mask & UInt32(IN_Q_OVERFLOW) != 0 { overflow = true }
                if let paths = watchedFiles[event.wd] { touchedFiles.formUnion(paths) }
                if let dir = watchedDirectories[event.wd] { touchedDirectories.insert(dir) }
                offset += MemoryLayout<inotify_event>.size + Int(event.len)
            }
        }
        if overflow {
            fullPass()
            return
        }
        if !touchedDirectories.isEmpty {
            if subscribers.contains(where: { $0.value.patterns.contains(where: Sys.isGlob) }) { reconcile() }
            for (path, _) in files where touchedDirectories.contains(Sys.directory(of: path)) {
                touchedFiles.insert(path)
            }
        }
        for path in touchedFiles.sorted() {
            if let file = files[path] { service(file) }
        }
    }

    private func addWatch(_ file: TailedFile) {
        guard inotifyFD >= 0 else { return }
        if case .success(let wd) = Sys.inotifyAddWatch(inotifyFD, file.path, mask) {
            if let old = file.retired.firstIndex(where: { $0.watch == wd }) {
                // Same inode as a retired file (it was renamed back): let the retired one go now.
                let gone = file.retired.remove(at: old)
                file.finish(gone)
            }
            file.watch = wd
            watchedFiles[wd, default: []].insert(file.path)
        }
    }

    private func removeWatch(_ file: TailedFile) {
        guard let wd = file.watch else { return }
        file.watch = nil
        if !file.retired.contains(where: { $0.watch == wd }) { unwatch(wd, file.path) }
    }

    private func unwatch(_ wd: Int32, _ path: String) {
        watchedFiles[wd]?.remove(path)
        if watchedFiles[wd]?.isEmpty ?? false {
            watchedFiles[wd] = nil
            Sys.inotifyRemoveWatch(inotifyFD, wd)
        }
    }

    private func watchDirectory(_ dir: String) {
        guard inotifyFD >= 0, directoryWatches[dir] == nil, !Sys.isGlob(dir) else { return }
        if case .success(let wd) = Sys.inotifyAddWatch(inotifyFD, dir, directoryMask) {
            directoryWatches[dir] = wd
            watchedDirectories[wd] = dir
        }
        // A missing directory is retried by the next reconcile (safety pass).
    }

    private func report(_ event: FileTailer.Event) {
        tailer.events?(event)
    }

    private func shutdown() {
        for file in files.values { file.close() }
        files.removeAll()
        if inotifyFD >= 0 { Sys.close(inotifyFD) }
        inotifyFD = -1
    }
}
