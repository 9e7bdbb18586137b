#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// Reads a file descriptor in big chunks into one reusable buffer and hands out each line's bytes.
///
/// Lines are split on `0x0A` on bytes; trailing `0x0D` bytes are stripped. NUL bytes and invalid UTF-8 are passed
/// through untouched. A line longer than `maxLineLength` is cut to that length (the rest up to the next newline is
/// skipped and counted in `truncatedLines`), so an attacker-controlled giant line never grows memory without bound
/// and never swallows its neighbours. Nothing is allocated per line: the buffer is allocated once (and grown only
/// while a single line is longer than it, up to the cap).
///
/// ```swift
/// var reader = LineReader(fd: fd)
/// try reader.forEachLine { line in print(line.count) }
/// ```
struct LineReader: ~Copyable {
    /// Default size of one `read(2)`.
    static let defaultChunk = 1 << 22
    /// Default longest line handed out whole (2 MiB).
    static let defaultMaxLine = 2 << 20

    private let fd: Int32
    private var storage: UnsafeMutablePointer<UInt8>
    private var capacity: Int
    private let chunk: Int
    private let maxLineLength: Int
    /// Lines that were longer than `maxLineLength` and were cut.
    private(set) var truncatedLines = 0
    /// Bytes read so far.
    private(set) var bytesRead = 0
    /// True when the input ended with a line that has no newline and `testsUnterminatedLastLine` is false.
    private(set) var skippedUnterminatedLine = false
    /// Whether a last line without a newline is handed out. fail2ban-regex reads files as a tail (a line
    /// still being written is not complete) and so never tests it; `portcullis regex` does the same.
    var testsUnterminatedLastLine = false

    /// Creates a reader over `fd` (not closed by the reader).
    init(fd: Int32, chunk: Int = LineReader.defaultChunk, maxLineLength: Int = LineReader.defaultMaxLine) {
        self.fd = fd
        self.chunk = max(chunk, 16)
        self.maxLineLength = max(maxLineLength, 1)
        self.capacity = self.chunk
        self.storage = .allocate(capacity: self.capacity)
    }

    deinit { storage.deallocate() }

    /// Calls `body` with every line, in order. `body` returns false to stop early.
    /// Throws `CLIError` when `read(2)` fails.
    mutating func forEachLine(_ body: (UnsafeBufferPointer<UInt8>) -> Bool) throws(CLIError) {
        var start = 0  // first byte of the current (incomplete) line
        var end = 0  // end of valid data
        var scan = 0  // where the newline search resumes (never rescans a partial line)
        var skipping = false  // discarding the tail of an over-long line
        while true {
            // Make room: move the partial line to the front, or grow while one line is longer than the buffer.
            if end == capacity {
                if start > 0 {
                    let n = end - start
                    if n > 0 { memmove(storage, storage + start, n) }
                    scan -= start
                    end = n
                    start = 0
                } else if capacity < maxLineLength + chunk {
                    let newCapacity = min(capacity * 2, maxLineLength + chunk)
                    let grown = UnsafeMutablePointer<UInt8>.allocate(capacity: newCapacity)
                    grown.update(from: storage, count: end)
                    storage.deallocate()
                    storage = grown
                    capacity = newCapacity
                }
            }
            let want = capacity - end
            let n = read(fd, storage + end, want)
            if n < 0 {
                if errno == EINTR { continue }
                throw CLIError(.io, "cannot read log: \(String(cString: strerror(errno)))")
            }
            if n == 0 { break }
            bytesRead += n
            end += n
            // Hand out every complete line in [start, end).
            while scan < end {
                let rest = end - scan
                guard let hit = memchr(storage + scan, 0x0A, rest) else {
                    scan = end
                    break
                }
                let nl = UnsafeMutableRawPointer(hit).assumingMemoryBound(to: UInt8.self) - storage
                if skipping {
                    skipping = false
                } else if !emit(start, nl, body) {
                    return
                }
                start = nl + 1
                scan = start
            }
            // A line that reached the cap without a newline: hand out its head, skip the rest.
            if end - start >= maxLineLength && !skipping {
                truncatedLines += 1
                if !emit(start, start + maxLineLength, body) { return }
                skipping = true
            }
            if skipping {
                start = end
                scan = end
            }
        }
        if end > start && !skipping {
            if testsUnterminatedLastLine {
                _ = emit(start, end, body)
            } else {
                skippedUnterminatedLine = true
            }
        }
    }

    private func emit(_ from: Int, _ to: Int, _ body: (UnsafeBufferPointer<UInt8>) -> Bool) -> Bool {
        var e = to
        while e > from && storage[e - 1] == 0x0D { e -= 1 }
        return body(UnsafeBufferPointer(start: storage + from, count: e - from))
    }
}
