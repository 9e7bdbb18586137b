/// The complete lines one read produced from one file, as views into the tailer's reusable buffer.
///
/// Valid only during the delivery call: copy what you keep. Lines have no trailing `\n` nor `\r`; bytes are
/// passed through unchanged (invalid UTF-8 and NUL included). A line longer than the tailer's
/// `maxLineLength` is delivered once, truncated to `maxLineLength` bytes, and the rest of it up to the next
/// newline is discarded (never delivered as a separate line, so the tail of an over-long line cannot pose as
/// a log line of its own).
///
/// ```swift
/// tailer.subscribe(["/var/log/auth.log"]) { batch in
///     for line in batch { matcher.match(line) }   // line: UnsafeBufferPointer<UInt8>
/// }
/// ```
public struct LineBatch: RandomAccessCollection {
    /// The file the lines come from (the path as opened, i.e. a glob's match).
    public let path: String
    /// Where reading stands after this batch: persist it to resume after it.
    public let position: FilePosition
    /// Number of lines in `self` that were cut at `maxLineLength`.
    public let truncatedLines: Int
    let base: UnsafePointer<UInt8>
    /// (start, length) pairs, relative to `base`.
    let ranges: UnsafeBufferPointer<LineRange>

    init(
        path: String,
        position: FilePosition,
        truncatedLines: Int,
        base: UnsafePointer<UInt8>,
        ranges: UnsafeBufferPointer<LineRange>
    ) {
        self.path = path
        self.position = position
        self.truncatedLines = truncatedLines
        self.base = base
        self.ranges = ranges
    }

    /// Index of the first line.
    public var startIndex: Int { 0 }
    /// One past the last line.
    public var endIndex: Int { ranges.count }

    /// The bytes of line `i`.
    public subscript(i: Int) -> UnsafeBufferPointer<UInt8> {
        let r = ranges[i]
        return UnsafeBufferPointer(start: base + Int(r.start), count: Int(r.count))
    }
}

/// A line's place in the read buffer.
struct LineRange {
    var start: Int32
    var count: Int32
}
