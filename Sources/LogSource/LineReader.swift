import Core

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// Reads one file in big chunks into a reusable buffer and splits it into lines on `0x0A`: the one line reader
/// of the daemon's tailer and of `portcullis regex`, so both see exactly the same lines.
///
/// A line (without its newline and a trailing `0x0D`) of at most `maxLineLength` bytes is delivered whole. A
/// longer line is never delivered, not even in part: matching a prefix would let an attacker choose where the
/// line ends (padding a user name so that the cut lands right after a forged `from ADDR port 22 ssh2`). It is
/// skipped up to its newline and counted in `skippedLines` (its length in `lastSkippedLength`). Each byte is
/// scanned for a newline once (`scanned` remembers how far a partial line was searched). Nothing here
/// allocates after `init`.
///
/// ```swift
/// let reader = LineReader()
/// try reader.forEachLine(fd: fd) { line in print(line.count); return true }
/// print(reader.skippedLines)
/// ```
public final class LineReader {
    /// The longest line delivered by default: `Bounds.maximumLineLength` (64 KiB), the limit every matcher
    /// applies (the journal source applies it to the formatted line).
    public static let defaultMaxLineLength = Bounds.maximumLineLength
    /// Default size of one `read(2)`.
    public static let defaultChunkSize = 64 * 1024

    /// The longest line delivered.
    public let maxLineLength: Int
    /// Bytes asked for per `read(2)`.
    public let chunkSize: Int
    private let capacity: Int
    private let storage: UnsafeMutablePointer<UInt8>
    private let rangeCapacity: Int
    private let ranges: UnsafeMutablePointer<LineRange>
    private var rangeCount = 0
    /// Over-long lines finished since the last batch was handed over.
    private var skippedInBatch = 0

    /// Lines longer than `maxLineLength` skipped so far (never delivered).
    public private(set) var skippedLines = 0
    /// Length of the last over-long line skipped (0 before the first).
    public private(set) var lastSkippedLength = 0
    /// Bytes read so far.
    public private(set) var bytesRead: UInt64 = 0

    /// Start of the pending (not yet complete) line in `storage`.
    private var start = 0
    /// End of valid bytes in `storage`.
    private var end = 0
    /// Bytes before this index (from `start`) are known to hold no newline.
    private var scanned = 0
    /// Inside an over-long line: skip to the next newline.
    private(set) var discarding = false
    /// Bytes of the over-long line being skipped, seen so far.
    private var discardedLength = 0
    /// File offset of `storage[0]`.
    private var baseOffset: UInt64 = 0

    /// A reader delivering lines of at most `maxLineLength` bytes (at least 16), reading `chunkSize` at a time.
    public init(maxLineLength: Int = LineReader.defaultMaxLineLength, chunkSize: Int = LineReader.defaultChunkSize) {
        self.maxLineLength = max(16, maxLineLength)
        self.chunkSize = max(512, chunkSize)
        // Room for a whole line of the maximum length, its `\r\n`, and a chunk after it.
        capacity = self.chunkSize + self.maxLineLength + 2
        storage = .allocate(capacity: capacity)
        rangeCapacity = 4096
        ranges = .allocate(capacity: rangeCapacity)
    }

    deinit {
        storage.deallocate()
        ranges.deallocate()
    }

    /// Offset just after the last byte consumed (complete lines, or skipped bytes of an over-long line).
    var consumedOffset: UInt64 { baseOffset + UInt64(start) }
    /// Offset of the next byte to read from the file.
    var readOffset: UInt64 { baseOffset + UInt64(end) }
    /// Bytes of an incomplete line held back.
    var pendingBytes: Int { end - start }

    /// Forgets buffered bytes and continues at `offset` (skipping to the next newline when `discarding`).
    func reset(at offset: UInt64, discarding: Bool) {
        baseOffset = offset
        start = 0
        end = 0
        scanned = 0
        rangeCount = 0
        skippedInBatch = 0
        self.discarding = discarding
        // Resuming inside a line: its head was already judged (skipped) before the restart.
        discardedLength = discarding ? maxLineLength + 1 : 0
    }

    /// Reads at most one chunk from `fd` at its current offset and delivers the complete lines it finished.
    /// Returns the number of bytes read (0 at end of file).
    func readChunk(fd: Int32, deliver: (LineBatchParts) -> Void) -> Result<Int, Errno> {
        compact()
        let n: Int
        switch Sys.read(fd, storage + end, capacity - end) {
        case .success(let count): n = count
        case .failure(let e): return .failure(e)
        }
        if n == 0 { return .success(0) }
        end += n
        bytesRead += UInt64(n)
        split(deliver: deliver)
        return .success(n)
    }

    /// Delivers the pending partial line as a line of its own (the file will not grow any more: rotation).
    func flushPartial(deliver: (LineBatchParts) -> Void) {
        if discarding {
            finishSkipped(extra: end - start)
        } else if end > start {
            var length = end - start
            if storage[start + length - 1] == 0x0D { length -= 1 }
            if length > maxLineLength {
                discardedLength = 0
                finishSkipped(extra: length)
            } else {
                appendRange(start, length, deliver: deliver)
            }
        }
        start = end
        scanned = end
        discarding = false
        emit(deliver)
    }

    /// Calls `body` with every complete line of `fd` up to its end, in order (`body` returns false to stop).
    /// A last line without a newline is handed out only when `includeUnterminated` is true; `unterminated` in
    /// the result says whether there was one. Throws when `read(2)` fails.
    @discardableResult
    public func forEachLine(
        fd: Int32, includeUnterminated: Bool = false, _ body: (UnsafeBufferPointer<UInt8>) -> Bool
    ) throws(LogSourceError) -> (stopped: Bool, unterminated: Bool) {
        var stopped = false
        let deliver: (LineBatchParts) -> Void = { parts in
            guard !stopped else { return }
            for r in parts.ranges {
                if !body(UnsafeBufferPointer(start: parts.base + Int(r.start), count: Int(r.count))) {
                    stopped = true
                    return
                }
            }
        }
        while !stopped {
            switch readChunk(fd: fd, deliver: deliver) {
            case .success(0):
                let unterminated = end > start || discarding
                if includeUnterminated || discarding {
                    // An over-long unterminated tail is counted as skipped either way.
                    if includeUnterminated { flushPartial(deliver: deliver) } else { finishSkipped(extra: end - start) }
                }
                return (stopped, unterminated)
            case .success: continue
            case .failure(let e):
                throw LogSourceError(.readFailed, "cannot read the log", errno: e.rawValue)
            }
        }
        return (true, false)
    }

    private func split(deliver: (LineBatchParts) -> Void) {
        var p = scanned
        while p < end {
            guard let hit = memchr(storage + p, 0x0A, end - p) else { break }
            let newline = UnsafeMutablePointer<UInt8>(hit.assumingMemoryBound(to: UInt8.self)) - storage
            var length = newline - start
            if length > 0 && storage[newline - 1] == 0x0D { length -= 1 }
            if discarding {
                finishSkipped(extra: length)
            } else if length > maxLineLength {
                discardedLength = 0
                finishSkipped(extra: length)
            } else {
                appendRange(start, length, deliver: deliver)
            }
            start = newline + 1
            p = start
        }
        scanned = end
        if discarding {
            // Drop the skipped bytes, but keep a trailing `\r`: it may belong to the `\r\n` ending this line.
            let keep = end > start && storage[end - 1] == 0x0D ? 1 : 0
            discardedLength += end - start - keep
            start = end - keep
            scanned = start
        } else if end - start > maxLineLength + 1 {
            // Longer than any line we deliver, even without its `\r`: skip it.
            discarding = true
            discardedLength = end - start - 1
            start = end - 1
            scanned = start
        }
        emit(deliver)
    }

    /// Ends an over-long line whose last `extra` bytes are the ones not counted yet.
    private func finishSkipped(extra: Int) {
        discarding = false
        lastSkippedLength = discardedLength + extra
        discardedLength = 0
        skippedLines += 1
        skippedInBatch += 1
    }

    private func appendRange(_ from: Int, _ length: Int, deliver: (LineBatchParts) -> Void) {
        if rangeCount == rangeCapacity {
            // The batch is full: hand it over now; `start` still points at this line, so the position
            // reported for the full batch is that of the line being added (conservative).
            emit(deliver)
        }
        ranges[rangeCount] = LineRange(start: Int32(from), count: Int32(length))
        rangeCount += 1
    }

    private func emit(_ deliver: (LineBatchParts) -> Void) {
        guard rangeCount > 0 || skippedInBatch > 0 else { return }
        let offset = consumedOffset
        let parts = LineBatchParts(
            base: UnsafePointer(storage),
            ranges: UnsafeBufferPointer(start: ranges, count: rangeCount),
            skipped: skippedInBatch,
            skippedLength: lastSkippedLength,
            consumedOffset: offset
        )
        rangeCount = 0
        skippedInBatch = 0
        deliver(parts)
    }

    /// Moves the pending partial line to the front so a whole chunk fits after it.
    private func compact() {
        guard start > 0 else { return }
        let pending = end - start
        if pending > 0 { memmove(storage, storage + start, pending) }
        baseOffset += UInt64(start)
        scanned -= start
        end = pending
        start = 0
    }
}

/// What `LineReader` hands over for one batch; the tailer adds the path and position.
struct LineBatchParts {
    var base: UnsafePointer<UInt8>
    var ranges: UnsafeBufferPointer<LineRange>
    /// Over-long lines skipped in this batch, and the length of the last one.
    var skipped: Int
    var skippedLength: Int
    var consumedOffset: UInt64
}
