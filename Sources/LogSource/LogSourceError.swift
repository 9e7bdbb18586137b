/// An error from a log source: a file that cannot be opened or read, an inotify or journal failure, a bad match.
///
/// ```swift
/// do { try tailer.start() } catch let error as LogSourceError { print(error) }
/// ```
public struct LogSourceError: Error, Sendable, Hashable, CustomStringConvertible {
    /// What kind of failure this is.
    public enum Code: String, Sendable, Hashable {
        /// A log file could not be opened (permissions, not a regular file …).
        case openFailed
        /// Reading a log file failed.
        case readFailed
        /// A kernel wait primitive (inotify, poll, pipe, thread) failed.
        case waitFailed
        /// The systemd journal could not be opened or read.
        case journalFailed
        /// A `journalmatch` term is malformed.
        case invalidMatch
        /// A stored journal cursor is malformed or was rejected.
        case invalidCursor
        /// The source was already started or stopped.
        case invalidState
    }

    /// The kind of failure.
    public let code: Code
    /// A message for a person: what failed, on what, and what to do.
    public let message: String
    /// The errno of the failed system call, when there is one (for libsystemd, the negated return value).
    public let errno: Int32?

    /// Creates an error.
    public init(_ code: Code, _ message: String, errno: Int32? = nil) {
        self.code = code
        self.message = message
        self.errno = errno
    }

    /// `code: message (strerror)`.
    public var description: String {
        if let errno {
            return "\(code.rawValue): \(message) (\(Sys.describe(errno)))"
        }
        return "\(code.rawValue): \(message)"
    }
}
