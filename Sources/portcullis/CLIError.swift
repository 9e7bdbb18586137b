/// An error the CLI reports as one line on stderr, followed by a non-zero exit.
///
/// ```swift
/// throw CLIError(.usage, "unknown filter 'sshdd' in /etc/fail2ban/filter.d")
/// ```
struct CLIError: Error, CustomStringConvertible {
    /// What went wrong, which also decides the exit code.
    enum Code: Int32 {
        /// Bad command-line input (unknown filter, bad regex, bad option value).
        case usage = 2
        /// A configuration file could not be loaded.
        case config = 3
        /// A file could not be opened or read.
        case io = 4
    }

    /// The kind of failure.
    var code: Code
    /// One line for a person: what, where, what to do.
    var message: String

    /// Creates an error.
    init(_ code: Code, _ message: String) {
        self.code = code
        self.message = message
    }

    var description: String { message }
}
