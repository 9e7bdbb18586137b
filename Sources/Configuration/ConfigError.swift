/// Where a configuration value or error came from: a file and a 1-based line number.
///
/// ```swift
/// SourceLocation(file: "/etc/fail2ban/jail.local", line: 12).description   // "/etc/fail2ban/jail.local:12"
/// ```
public struct SourceLocation: Sendable, Hashable, CustomStringConvertible {
    /// The path of the file, as it was opened.
    public var file: String
    /// The 1-based line number (0 when the whole file is meant).
    public var line: Int

    /// A location in `file` at `line`.
    public init(file: String, line: Int) {
        self.file = file
        self.line = line
    }

    /// `FILE:LINE`, or just `FILE` when the line is unknown (0).
    public var description: String { line > 0 ? "\(file):\(line)" : file }
}

/// A configuration value together with the place it was written.
public struct ConfigValue: Sendable, Hashable {
    /// The value's text (for a resolved value: after interpolation and tag substitution).
    public var value: String
    /// Where the value (or the line that produced it) was written; `nil` for values that came from code or
    /// from a command-line argument.
    public var location: SourceLocation?

    /// A value with an optional location.
    public init(_ value: String, location: SourceLocation? = nil) {
        self.value = value
        self.location = location
    }
}

/// An error found while reading or resolving configuration; carries the file and line when known.
///
/// Its description is one line for a person: `FILE:LINE: what is wrong (what to do)`.
public struct ConfigError: Error, Sendable, CustomStringConvertible {
    /// What kind of problem this is.
    public enum Code: String, Sendable, Hashable {
        /// A file could not be read (permissions, not a regular file).
        case unreadableFile
        /// A named filter, action, jail or configuration file does not exist.
        case notFound
        /// A line is not valid INI (no section header, no `=`/`:`, …).
        case syntax
        /// An `[INCLUDES]` entry names a file that does not exist.
        case missingInclude
        /// `%(name)s` or `%(section/name)s` names an option that is not defined.
        case missingOption
        /// `%(…)s` references form a loop or nest too deeply; or `<tag>` substitution does.
        case interpolationLoop
        /// A `%` that does not start `%%` or `%(name)s`.
        case badInterpolation
        /// A value has the wrong form (a bad time span, a non-integer count, an unparsable spec).
        case badValue
    }

    /// What kind of problem this is.
    public var code: Code
    /// What is wrong, for a person.
    public var message: String
    /// Where the offending value or line was written, when known.
    public var location: SourceLocation?
    /// What to do about it, for a person (may be empty).
    public var hint: String

    /// An error with a code, a message, an optional location and an optional hint.
    public init(_ code: Code, _ message: String, at location: SourceLocation? = nil, hint: String = "") {
        self.code = code
        self.message = message
        self.location = location
        self.hint = hint
    }

    /// True for a mistake in the text of a file the configuration reads — a line that is not INI, an include that
    /// does not exist, an unreadable file, an interpolation loop or a reference to an undefined option. fail2ban
    /// refuses to start (or reload) on these, wherever they are; Portcullis does too. The other codes (a filter
    /// or action that does not exist, a bad value) concern one jail, which is skipped while the others run.
    public var stopsStart: Bool {
        switch code {
        case .syntax, .missingInclude, .unreadableFile, .interpolationLoop, .missingOption, .badInterpolation: true
        case .notFound, .badValue: false
        }
    }

    /// `FILE:LINE: message (hint)`.
    public var description: String {
        var text = ""
        if let location { text = "\(location): " }
        text += message
        if !hint.isEmpty { text += " (\(hint))" }
        return text
    }
}
