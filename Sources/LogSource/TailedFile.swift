#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// One log file as the tailer thread holds it: descriptor, identity, reader and the subscribers to feed.
/// Owned by the tailer thread only.
final class TailedFile {
    let path: String
    private(set) var reader: LineReader
    /// Files the path named before a rotation, still read while their writer may not have reopened its log.
    var retired: [RetiredFile] = []
    var fd: Int32 = -1
    var identity: Sys.FileStat?
    var firstLineHash: UInt64?
    var watch: Int32?
    /// Subscribers, in subscription order.
    var subscribers: [(id: UInt64, handler: @Sendable (LineBatch) -> Void)] = []
    /// True when some subscription names this path literally (not only through a glob).
    var literal = false
    /// Last condition reported through events, to report each change once.
    var reportedMissing = false
    /// Length of the first over-long line skipped, until the tailer has reported it (once per file).
    var unreportedTooLong: Int?
    /// Whether an over-long line of this file was reported already.
    var reportedTooLong = false
    /// Over-long lines skipped in this file since it was first opened (all its incarnations).
    private(set) var skippedLines = 0
    var reportedError: Errno?

    /// Fingerprint of the file's first bytes (up to `headCapacity`): a changed head means the file was
    /// truncated and rewritten, even when it has grown past our offset again before we looked.
    private var headCount = 0
    private var headHash: UInt64 = 0
    private let headScratch = UnsafeMutableRawBufferPointer.allocate(byteCount: 128, alignment: 8)

    /// Called after every subscriber received a batch (see `FileTailer.init`'s `batchEnd`).
    let batchEnd: (@Sendable (FilePosition) -> Void)?

    init(path: String, maxLineLength: Int, chunkSize: Int, batchEnd: (@Sendable (FilePosition) -> Void)? = nil) {
        self.path = path
        self.batchEnd = batchEnd
        reader = LineReader(maxLineLength: maxLineLength, chunkSize: chunkSize)
    }

    deinit {
        if fd >= 0 { Sys.close(fd) }
        for old in retired { old.close() }
        headScratch.deallocate()
    }

    /// Records the current head fingerprint (when it can still grow).
    func captureHead() {
        guard fd >= 0, headCount < headScratch.count else { return }
        guard case .success(let n) = Sys.pread(fd, headScratch.baseAddress!, headScratch.count, at: 0) else { return }
        headCount = n
        headHash = FNV1a.hash(UnsafeRawBufferPointer(rebasing: headScratch[0..<n]))
    }

    /// True when the first bytes we saw are no longer the file's first bytes (one small `pread`).
    func headChanged() -> Bool {
        guard fd >= 0, headCount > 0 else { return false }
        guard case .success(let n) = Sys.pread(fd, headScratch.baseAddress!, headCount, at: 0) else { return false }
        if n < headCount { return true }
        return FNV1a.hash(UnsafeRawBufferPointer(rebasing: headScratch[0..<n])) != headHash
    }

    /// Forgets the head fingerprint (after a truncation) and takes the current one.
    func resetHead() {
        headCount = 0
        captureHead()
    }

    var isOpen: Bool { fd >= 0 }

    /// The position to persist for this file now.
    var position: FilePosition {
        FilePosition(
            path: path,
            inode: identity?.inode ?? 0,
            device: identity?.device ?? 0,
            offset: reader.consumedOffset,
            firstLineHash: firstLineHash
        )
    }

    /// Opens the file and positions the reader. Returns the offset reading starts at.
    func open(start: OpenStart) -> Result<UInt64, Errno> {
        let fd: Int32
        switch Sys.open(path) {
        case .success(let d): fd = d
        case .failure(let e): return .failure(e)
        }
        let st: Sys.FileStat
        switch Sys.fstat(fd) {
        case .success(let s): st = s
        case .failure(let e):
            Sys.close(fd)
            return .failure(e)
        }
        guard st.isRegular else {
            Sys.close(fd)
            return .failure(Errno(EINVAL))  // a directory, FIFO or device: not a log file we can follow
        }
        self.fd = fd
        identity = st
        firstLineHash = computeFirstLineHash()
        var offset: UInt64 = 0
        var discarding = false
        switch start {
        case .beginning:
            break
        case .end:
            (offset, discarding) = lineBoundary(before: st.size)
        case .resume(let saved):
            let sameContent: Bool
            if let savedHash = saved.firstLineHash {
                sameContent = savedHash == firstLineHash
            } else {
                sameContent = saved.inode == st.inode && (saved.device == 0 || saved.device == st.device)
            }
            if sameContent && saved.offset <= st.size {
                offset = saved.offset
                // Resume only at a line start: mid-line means we were skipping an over-long line.
                if offset > 0 {
                    var byte: UInt8 = 0
                    if case .success(1) = Sys.pread(fd, &byte, 1, at: offset - 1), byte != 0x0A {
                        discarding = true
                    }
                }
            }
        }
        if lseek(fd, off_t(offset), SEEK_SET) < 0 {
            let e = Errno(errno)
            close()
            return .failure(e)
        }
        reader.reset(at: offset, discarding: discarding)
        headCount = 0
        captureHead()
        return .success(offset)
    }

    func close() {
        if fd >= 0 { Sys.close(fd) }
        fd = -1
        identity = nil
    }

    /// Moves the open file aside (rotation): it keeps being read, with its partial line, until it is idle.
    /// Its lines are reported with this path's current position. The path then has no open file.
    func retire(nowMillis: Int64) {
        guard fd >= 0 else { return }
        retired.append(RetiredFile(fd: fd, reader: reader, watch: watch, lastGrowth: nowMillis))
        fd = -1
        identity = nil
        watch = nil
        reader = LineReader(maxLineLength: reader.maxLineLength, chunkSize: reader.chunkSize)
    }

    /// Reads every retired file to its end; returns the ones idle for `graceMillis` or deleted, which the
    /// caller finishes with `finish(_:)`.
    func drainRetired(nowMillis: Int64, graceMillis: Int64) -> [RetiredFile] {
        guard !retired.isEmpty else { return [] }
        var done: [RetiredFile] = []
        retired.removeAll { old in
            var grew = false
            while case .success(let n) = old.reader.readChunk(fd: old.fd, deliver: deliverRetired), n > 0 {
                grew = true
            }
            if grew { old.lastGrowth = nowMillis }
            let deleted: Bool
            if case .success(let st) = Sys.fstat(old.fd) { deleted = st.links == 0 } else { deleted = true }
            if deleted || nowMillis - old.lastGrowth >= graceMillis {
                done.append(old)
                return true
            }
            return false
        }
        return done
    }

    /// Delivers a retired file's last partial line and closes it.
    func finish(_ old: RetiredFile) {
        old.reader.flushPartial(deliver: deliverRetired)
        old.close()
    }

    private func noteSkipped(_ parts: LineBatchParts) {
        guard parts.skipped > 0 else { return }
        skippedLines += parts.skipped
        if !reportedTooLong {
            reportedTooLong = true
            unreportedTooLong = parts.skippedLength
        }
    }

    private func deliverRetired(_ parts: LineBatchParts) {
        noteSkipped(parts)
        let batch = LineBatch(
            path: path,
            position: position,
            skippedLines: parts.skipped,
            skippedLength: parts.skipped > 0 ? parts.skippedLength : 0,
            base: parts.base,
            ranges: parts.ranges
        )
        for s in subscribers { s.handler(batch) }
        batchEnd?(batch.position)
    }

    /// Reads to end of file (or until `budget` bytes were read), delivering every complete line.
    func drain(budget: UInt64 = .max) -> Result<(bytes: UInt64, atEnd: Bool), Errno> {
        var total: UInt64 = 0
        while fd >= 0 {
            if total >= budget { return .success((total, false)) }
            switch reader.readChunk(fd: fd, deliver: deliver) {
            case .success(0): return .success((total, true))
            case .success(let n): total += UInt64(n)
            case .failure(let e): return .failure(e)
            }
        }
        return .success((total, true))
    }

    /// Delivers a final incomplete line (the file is being left behind).
    func flushPartial() {
        reader.flushPartial(deliver: deliver)
    }

    private func deliver(_ parts: LineBatchParts) {
        noteSkipped(parts)
        if firstLineHash == nil { firstLineHash = computeFirstLineHash() }
        let batch = LineBatch(
            path: path,
            position: FilePosition(
                path: path,
                inode: identity?.inode ?? 0,
                device: identity?.device ?? 0,
                offset: parts.consumedOffset,
                firstLineHash: firstLineHash
            ),
            skippedLines: parts.skipped,
            skippedLength: parts.skipped > 0 ? parts.skippedLength : 0,
            base: parts.base,
            ranges: parts.ranges
        )
        for s in subscribers { s.handler(batch) }
        batchEnd?(batch.position)
    }

    /// Hash of the first complete line, or nil when the file has none yet.
    func computeFirstLineHash() -> UInt64? {
        guard fd >= 0 else { return nil }
        let limit = reader.maxLineLength + 2
        let scratch = UnsafeMutableRawBufferPointer.allocate(byteCount: limit, alignment: 1)
        defer { scratch.deallocate() }
        guard case .success(let n) = Sys.pread(fd, scratch.baseAddress!, limit, at: 0), n > 0 else { return nil }
        let bytes = UnsafeRawBufferPointer(rebasing: scratch[0..<n])
        if let nl = bytes.firstIndex(of: 0x0A) {
            var length = nl
            if length > 0 && bytes[length - 1] == 0x0D { length -= 1 }
            return FNV1a.hash(UnsafeRawBufferPointer(rebasing: bytes[0..<min(length, reader.maxLineLength)]))
        }
        // No newline: a first line longer than the cap still identifies the file.
        if n >= reader.maxLineLength {
            return FNV1a.hash(UnsafeRawBufferPointer(rebasing: bytes[0..<reader.maxLineLength]))
        }
        return nil
    }

    /// The offset just after the last newline before `size`, searching back at most one line length.
    /// If there is none in range, reading starts at `size` skipping to the next newline.
    private func lineBoundary(before size: UInt64) -> (UInt64, Bool) {
        guard size > 0 else { return (0, false) }
        let window = UInt64(reader.maxLineLength + 1)
        let from = size > window ? size - window : 0
        let count = Int(size - from)
        let scratch = UnsafeMutableRawBufferPointer.allocate(byteCount: count, alignment: 1)
        defer { scratch.deallocate() }
        guard case .success(let n) = Sys.pread(fd, scratch.baseAddress!, count, at: from), n > 0 else {
            return (size, false)
        }
        if let nl = scratch[0..<n].lastIndex(of: 0x0A) {
            return (from + UInt64(nl) + 1, false)
        }
        return from == 0 ? (0, false) : (size, true)
    }
}

/// A rotated-away file still being read (see `TailedFile.retire`).
final class RetiredFile {
    private(set) var fd: Int32
    let reader: LineReader
    let watch: Int32?
    var lastGrowth: Int64

    init(fd: Int32, reader: LineReader, watch: Int32?, lastGrowth: Int64) {
        self.fd = fd
        self.reader = reader
        self.watch = watch
        self.lastGrowth = lastGrowth
    }

    func close() {
        if fd >= 0 { Sys.close(fd) }
        fd = -1
    }

    deinit { close() }
}

/// How `TailedFile.open` positions a newly opened file.
enum OpenStart {
    case beginning
    case end
    case resume(FilePosition)
}
