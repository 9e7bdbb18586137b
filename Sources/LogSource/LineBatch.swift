/// The complete lines one read produced from one file, as views into the tailer's reusable buffer.
///
/// Valid only during the delivery call: copy what you keep. Lines have no trailing `\n` nor `\r`; bytes are
/// passed through unchanged (invalid UTF-8 and NUL included). A line longer than the tailer's
/// `maxLineLength` is never delivered, neither whole nor in part (a cut line would let an attacker choose
/// where it ends); it is counted in `skippedLines`.
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
    /// Lines longer than `maxLineLength` skipped since the previous batch of this file (not in `self`).
    public let skippedLines: Int
    /// Length in bytes of the last line skipped (0 when `skippedLines` is 0).
    public let skippedLength: Int
    let base: UnsafePointer<UInt8>
    /// (start, length) pairs, relative to `base`.
    let ranges: UnsafeBufferPointer<LineRange>

    init(
        path: String,
        position: FilePosition,
        skippedLines: Int,
        skippedLength: Int,
        base: UnsafePointer<UInt8>,
        ranges: UnsafeBufferPointer<LineRange>
    ) {
        self.path = path
        self.position = position
        self.skippedLines = skippedLines
        self.skippedLength = skippedLength
        self.base = base
        self.ranges = ranges
    }

    /// Equal for two values only when they are the same delivery of the same lines (one batch handed to several
    /// jails): the file, where it ends, how many lines, and the reader's buffers they lie in.
    public var identity: Identity {
        Identity(
            device: position.device, inode: position.inode, end: position.offset, count: ranges.count,
            base: UInt(bitPattern: base), ranges: UInt(bitPattern: ranges.baseAddress))
    }

    /// See ``identity``.
    public struct Identity: Hashable, Sendable {
        let device: UInt64
        let inode: UInt64
        let end: UInt64
        let count: Int
        let base: UInt
        let ranges: UInt
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
