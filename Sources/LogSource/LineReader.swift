#if canImport(Glibc)
    import Glibc
#elseif canImport(Musl)
    import Musl
#endif

/// Reads one file in big chunks into a reusable buffer and splits it into lines on `0x0A`.
///
/// Each byte is scanned for a newline once (`scanned` remembers how far a partial line was searched). A partial
/// line longer than `maxLineLength` is cut: its first `maxLineLength` bytes are delivered as one line and the
/// rest up to the next newline is skipped (`discarding`). Nothing here allocates after `init`.
final class LineReader {
    let maxLineLength: Int
    let chunkSize: Int
    private let capacity: Int
    private let storage: UnsafeMutablePointer<UInt8>
    private let rangeCapacity: Int
    private let ranges: UnsafeMutablePointer<LineRange>
    private var rangeCount = 0
    private var truncatedCount = 0

    /// Start of the pending (not yet complete) line in `storage`.
    private var start = 0
    /// End of valid bytes in `storage`.
    private var end = 0
    /// Bytes before this index (from `start`) are known to hold no newline.
    private var scanned = 0
    /// Inside an over-long line whose head was already delivered: skip to the next newline.
    private(set) var discarding = false
    /// File offset of `storage[0]`.
    private var baseOffset: UInt64 = 0

    init(maxLineLength: Int, chunkSize: Int) {
        self.maxLineLength = max(16, maxLineLength)
        self.chunkSize = max(512, chunkSize)
        capacity = self.chunkSize + self.maxLineLength
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
        truncatedCount = 0
        self.discarding = discarding
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
        split(deliver: deliver)
        return .success(n)
    }

    /// Delivers the pending partial line as a line of its own (the file will not grow any more: rotation).
    func flushPartial(deliver: (LineBatchParts) -> Void) {
        if !discarding && end > start {
            var length = end - start
            if storage[start + length - 1] == 0x0D { length -= 1 }
            appendRange(start, min(length, maxLineLength), truncated: length > maxLineLength, deliver: deliver)
        }
        start = end
        scanned = end
        discarding = false
        emit(deliver)
    }

    private func split(deliver: (LineBatchParts) -> Void) {
        var p = scanned
        while p < end {
            guard let hit = memchr(storage + p, 0x0A, end - p) else { break }
            let newline = UnsafeMutablePointer<UInt8>(hit.assumingMemoryBound(to: UInt8.self)) - storage
            if discarding {
                discarding = false
            } else {
                var length = newline - start
                if length > 0 && storage[newline - 1] == 0x0D { length -= 1 }
                if length > maxLineLength {
                    appendRange(start, maxLineLength, truncated: true, deliver: deliver)
                } else {
                    appendRange(start, length, truncated: false, deliver: deliver)
                }
            }
            start = newline + 1
            p = start
        }
        scanned = end
        if discarding {
            start = end  // drop the skipped bytes
        } else if end - start >= maxLineLength {
            appendRange(start, maxLineLength, truncated: true, deliver: deliver)
            discarding = true
            start = end
        }
        emit(deliver)
    }

    private func appendRange(_ from: Int, _ length: Int, truncated: Bool, deliver: (LineBatchParts) -> Void) {
        if rangeCount == rangeCapacity {
            // The batch is full: hand it over now; `start` still points at this line, so the position
            // reported for the full batch is that of the line being added (conservative).
            emit(deliver)
        }
        ranges[rangeCount] = LineRange(start: Int32(from), count: Int32(length))
        rangeCount += 1
        if truncated { truncatedCount += 1 }
    }

    private func emit(_ deliver: (LineBatchParts) -> Void) {
        guard rangeCount > 0 else { return }
        let offset = consumedOffset
        let parts = LineBatchParts(
            base: UnsafePointer(storage),
            ranges: UnsafeBufferPointer(start: ranges, count: rangeCount),
            truncated: truncatedCount,
            consumedOffset: offset
        )
        rangeCount = 0
        truncatedCount = 0
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
    var truncated: Int
    var consumedOffset: UInt64
}
