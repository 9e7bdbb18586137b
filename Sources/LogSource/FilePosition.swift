/// Where reading of one log file stopped, to persist and hand back on restart so reading resumes exactly there.
///
/// `offset` is always just after the last complete line delivered (a partial line at the end of the file is
/// read again after a restart). `firstLineHash` identifies the file's content: if the file at `path` has a
/// different first line on resume, it was rotated and is read from its beginning.
///
/// ```swift
/// let saved = tailer.positions()            // persist these (Store)
/// // … restart …
/// try tailer.subscribe(["/var/log/auth.log"], resume: saved) { batch in … }
/// ```
public struct FilePosition: Sendable, Hashable, Codable, CustomStringConvertible {
    /// The file's path as it was opened (a glob is stored per matching file).
    public var path: String
    /// The file's inode number.
    public var inode: UInt64
    /// The file's device number.
    public var device: UInt64
    /// Bytes consumed: the offset just after the last delivered complete line.
    public var offset: UInt64
    /// FNV-1a 64-bit hash of the file's first line (without its newline, at most `maxLineLength` bytes);
    /// `nil` while the file has no complete first line.
    public var firstLineHash: UInt64?

    /// Creates a position.
    public init(path: String, inode: UInt64, device: UInt64 = 0, offset: UInt64, firstLineHash: UInt64?) {
        self.path = path
        self.inode = inode
        self.device = device
        self.offset = offset
        self.firstLineHash = firstLineHash
    }

    /// `firstLineHash` as 16 lowercase hex digits, or "" when there is none (for text columns in a store).
    public var firstLineHashText: String {
        guard let h = firstLineHash else { return "" }
        let hex = String(h, radix: 16)
        return String(repeating: "0", count: 16 - hex.count) + hex
    }

    /// A position read back from storage: `firstLineHashText` as written by `firstLineHashText` ("" for none;
    /// anything not hex also reads as none, which makes resume fall back to comparing the inode).
    public init(path: String, inode: UInt64, device: UInt64 = 0, offset: UInt64, firstLineHashText: String) {
        self.init(
            path: path,
            inode: inode,
            device: device,
            offset: offset,
            firstLineHash: firstLineHashText.isEmpty ? nil : UInt64(firstLineHashText, radix: 16)
        )
    }

    /// `path@offset (inode N, hash H)`.
    public var description: String {
        let hash = firstLineHash.map { String($0, radix: 16) } ?? "none"
        return "\(path)@\(offset) (inode \(inode), first line \(hash))"
    }
}

/// Where to start reading a file the tailer has no stored position for.
public enum StartPosition: Sendable, Hashable {
    /// Skip existing content; deliver only lines appended from now on (default, like fail2ban's `tail`).
    case end
    /// Deliver the file's existing content, then follow it.
    case beginning
}

/// FNV-1a, 64 bit: a small, allocation-free content fingerprint (not a security hash).
enum FNV1a {
    static let offsetBasis: UInt64 = 0xcbf2_9ce4_8422_2325
    static let prime: UInt64 = 0x0000_0100_0000_01b3

    static func hash(_ bytes: UnsafeRawBufferPointer) -> UInt64 {
        var h = offsetBasis
        for b in bytes {
            h ^= UInt64(b)
            h &*= prime
        }
        return h
    }
}
