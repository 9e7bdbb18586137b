/// A jail's `backend` setting, parsed: follow files (with which wakeup) or read the systemd journal.
///
/// ```swift
/// try LogBackend(parsing: "auto")                                   // .files(.auto)
/// try LogBackend(parsing: "polling")                                // .files(.polling)
/// try LogBackend(parsing: "systemd[journalpath=/run/log/journal/m]") // .journal(.directory("/run/log/journal/m"))
/// try LogBackend(parsing: #"systemd[journalfiles="/a.journal, /b.journal"]"#)
/// ```
public enum LogBackend: Sendable, Hashable {
    /// Tail the jail's `logpath` files.
    case files(FileTailer.Backend)
    /// Read the systemd journal (`logpath` does not apply; `journalmatch` does).
    case journal(JournalSource.Location)

    /// Parses fail2ban's `backend` value: `auto`, `pyinotify`, `gamin`, `polling` or `systemd`, the latter with
    /// optional `[journalpath=DIR]`, `[journalfiles="F1, F2"]` or `[journalflags=N]`.
    /// - Throws: `LogSourceError` `.invalidMatch` naming the unknown backend or option.
    public init(parsing text: String) throws(LogSourceError) {
        var name = Substring(text.trimmingSpaces())
        var options: [String: String] = [:]
        if let open = name.firstIndex(of: "[") {
            guard name.hasSuffix("]") else {
                throw LogSourceError(.invalidMatch, "backend '\(text)': missing ']' after the options")
            }
            let inner = name[name.index(after: open)..<name.index(before: name.endIndex)]
            options = try Self.options(String(inner), in: text)
            name = name[..<open]
        }
        switch name.lowercased() {
        case "auto", "gamin":
            self = .files(.auto)
        case "pyinotify", "inotify":
            self = .files(.inotify)
        case "polling":
            self = .files(.polling)
        case "systemd":
            if let files = options["journalfiles"] {
                let list = files.split(whereSeparator: { $0 == "," || $0 == " " }).map(String.init)
                guard !list.isEmpty else {
                    throw LogSourceError(.invalidMatch, "backend '\(text)': journalfiles lists no file")
                }
                self = .journal(.files(list))
            } else if let dir = options["journalpath"] {
                self = .journal(.directory(dir))
            } else if let flags = options["journalflags"] {
                guard let value = Int32(flags) else {
                    throw LogSourceError(.invalidMatch, "backend '\(text)': journalflags must be a number")
                }
                self = .journal(value == 4 ? .system : .flags(value))
            } else {
                self = .journal(.system)
            }
        default:
            throw LogSourceError(
                .invalidMatch,
                "backend '\(text)' is unknown; use auto, polling, pyinotify, gamin or systemd"
            )
        }
    }

    /// `key=value` pairs separated by commas; values may be quoted (and then contain commas).
    private static func options(_ inner: String, in text: String) throws(LogSourceError) -> [String: String] {
        var out: [String: String] = [:]
        var parts: [String] = []
        var current = ""
        var quote: Character?
        for ch in inner {
            if let q = quote {
                if ch == q { quote = nil } else { current.append(ch) }
            } else if ch == "\"" || ch == "'" {
                quote = ch
            } else if ch == "," {
                parts.append(current)
                current = ""
            } else {
                current.append(ch)
            }
        }
        if quote != nil { throw LogSourceError(.invalidMatch, "backend '\(text)': unclosed quote") }
        parts.append(current)
        for part in parts where !part.trimmingSpaces().isEmpty {
            guard let eq = part.firstIndex(of: "=") else {
                throw LogSourceError(.invalidMatch, "backend '\(text)': option '\(part)' is not key=value")
            }
            let key = String(part[..<eq]).trimmingSpaces()
            guard ["journalpath", "journalfiles", "journalflags"].contains(key) else {
                throw LogSourceError(
                    .invalidMatch,
                    "backend '\(text)': unknown option '\(key)' (journalpath, journalfiles, journalflags)"
                )
            }
            out[key] = String(part[part.index(after: eq)...]).trimmingSpaces()
        }
        return out
    }
}

extension StringProtocol {
    func trimmingSpaces() -> String {
        var s = Substring(self)
        while let f = s.first, f.isWhitespace { s.removeFirst() }
        while let l = s.last, l.isWhitespace { s.removeLast() }
        return String(s)
    }
}
