/// One option's raw (uninterpolated) value as written: one entry per physical line, with its line number.
///
/// Multi-line values are an option line followed by more-indented continuation lines; empty lines inside a
/// value are kept, trailing empty lines are dropped, comment lines are skipped.
struct RawValue: Sendable, Hashable {
    /// The value's lines (each stripped of surrounding white space) and their 1-based line numbers.
    var lines: [(text: String, line: Int)]
    /// The file the value was written in.
    var file: String

    static func == (a: RawValue, b: RawValue) -> Bool {
        a.file == b.file && a.lines.map(\.text) == b.lines.map(\.text) && a.lines.map(\.line) == b.lines.map(\.line)
    }

    func hash(into hasher: inout Hasher) {
        hasher.combine(file)
        for l in lines {
            hasher.combine(l.text)
            hasher.combine(l.line)
        }
    }

    /// The value as one string, lines joined with `\n`.
    var text: String { lines.map(\.text).joined(separator: "\n") }

    /// Where the option line is.
    var location: SourceLocation { SourceLocation(file: file, line: lines.first?.line ?? 0) }

    /// A value that came from code or an argument rather than a file.
    static func synthetic(_ text: String, file: String = "<argument>") -> RawValue {
        RawValue(
            lines: text.split(separator: "\n", omittingEmptySubsequences: false).map { (String($0), 0) }, file: file)
    }
}

/// One parsed INI file, as Python's `configparser` reads it for fail2ban: `[section]` headers, `key = value`
/// or `key: value`, option names lower-cased, `#`/`;` comment lines, `;` inline comments after white space,
/// indented continuation lines.
struct IniFile: Sendable {
    /// A section as it appears in the file (a name may appear more than once; later options win).
    struct Section: Sendable {
        var name: String
        var line: Int
        var options: [(name: String, value: RawValue)]
    }

    /// The file's path.
    var path: String
    /// Sections in file order.
    var sections: [Section]

    /// Parses `text`, read from `path`. Throws `.syntax` at the first malformed line.
    static func parse(_ text: String, path: String) throws(ConfigError) -> IniFile {
        var sections: [Section] = []
        // Index of the section receiving options, and of the option receiving continuation lines.
        var current: Int? = nil
        var currentOption: Int? = nil
        var indentLevel = 0
        var lineNumber = 0
        // Python's configparser (strict, as fail2ban uses it) refuses, within one file, a section header seen
        // before and an option given twice in a section (names compared lower-cased); [DEFAULT] may repeat, its
        // options not. Where each was first given, for the error.
        var sectionLines: [String: Int] = [:]
        var optionLines: [String: Int] = [:]

        // Python splits on universal newlines; \r\n and \r are line ends too.
        let normalized = text.utf8.contains(13) ? text.replacingCRLF() : text
        for rawLine in normalized.split(separator: "\n", omittingEmptySubsequences: false) {
            lineNumber += 1
            let line = String(rawLine)
            let trimmed = line.trimmedWhitespace()
            // Full-line comment: first non-blank character is # or ;.
            let isComment = trimmed.hasPrefix("#") || trimmed.hasPrefix(";")
            var content = isComment ? "" : line
            if !isComment, let cut = inlineCommentStart(line) {
                content = String(line[..<cut])
            }
            let value = content.trimmedWhitespace()
            if value.isEmpty {
                // An empty line inside a multi-line value is kept; a comment line is skipped.
                if !isComment, inlineCommentStart(line) == nil, let s = current, let o = currentOption {
                    sections[s].options[o].value.lines.append(("", lineNumber))
                }
                continue
            }
            let indent = line.prefix(while: { $0 == " " || $0 == "\t" || $0 == "\u{0B}" || $0 == "\u{0C}" }).count
            if let s = current, let o = currentOption, indent > indentLevel {
                sections[s].options[o].value.lines.append((value, lineNumber))
                continue
            }
            indentLevel = indent
            if value.hasPrefix("["), let close = value.lastIndex(of: "]"), value.index(after: value.startIndex) < close
            {
                let name = String(value[value.index(after: value.startIndex)..<close])
                if name != "DEFAULT", let first = sectionLines[name] {
                    throw ConfigError(
                        .syntax, "section [\(name)] already appears at line \(first) of this file",
                        at: SourceLocation(file: path, line: lineNumber),
                        hint: "merge the two [\(name)] sections into one; fail2ban refuses such a file too")
                }
                sectionLines[name] = sectionLines[name] ?? lineNumber
                sections.append(Section(name: name, line: lineNumber, options: []))
                current = sections.count - 1
                currentOption = nil
                continue
            }
            if value.hasPrefix("["), !value.contains("]"), !value.contains("="), !value.contains(":") {
                throw ConfigError(
                    .syntax, "section header without its closing ']': \(value)",
                    at: SourceLocation(file: path, line: lineNumber), hint: "write \(value)]")
            }
            guard let s = current else {
                throw ConfigError(
                    .syntax, "option line before any [section] header: \(value)",
                    at: SourceLocation(file: path, line: lineNumber),
                    hint: "add a section header such as [Definition] above it")
            }
            guard let delimiter = value.firstIndex(where: { $0 == "=" || $0 == ":" }) else {
                throw ConfigError(
                    .syntax, "line is neither 'name = value' nor a [section] header: \(value)",
                    at: SourceLocation(file: path, line: lineNumber),
                    hint: "write 'name = value', or indent it to continue the previous value")
            }
            let name = value[..<delimiter].trimmedWhitespace().lowercased()
            guard !name.isEmpty else {
                throw ConfigError(
                    .syntax, "option without a name: \(value)", at: SourceLocation(file: path, line: lineNumber),
                    hint: "write 'name = value'")
            }
            let key = sections[s].name + "\u{0}" + name
            if let first = optionLines[key] {
                throw ConfigError(
                    .syntax,
                    "option '\(name)' in section [\(sections[s].name)] already set at line \(first) of this file",
                    at: SourceLocation(file: path, line: lineNumber),
                    hint: "keep one of the two lines; fail2ban refuses such a file too")
            }
            optionLines[key] = lineNumber
            let optionValue = value[value.index(after: delimiter)...].trimmedWhitespace()
            let raw = RawValue(lines: [(optionValue, lineNumber)], file: path)
            if let existing = sections[s].options.firstIndex(where: { $0.name == name }) {
                sections[s].options[existing].value = raw
                currentOption = existing
            } else {
                sections[s].options.append((name, raw))
                currentOption = sections[s].options.count - 1
            }
        }
        // Trailing empty lines are not part of a value.
        for s in sections.indices {
            for o in sections[s].options.indices {
                while let last = sections[s].options[o].value.lines.last, last.text.isEmpty,
                    sections[s].options[o].value.lines.count > 1
                {
                    sections[s].options[o].value.lines.removeLast()
                }
            }
        }
        return IniFile(path: path, sections: sections)
    }

    /// Position of a `;` inline comment: a `;` preceded by white space.
    private static func inlineCommentStart(_ line: String) -> String.Index? {
        var previous: Character? = nil
        for index in line.indices {
            let c = line[index]
            if c == ";", let p = previous, p.isWhitespace { return index }
            previous = c
        }
        return nil
    }
}

extension StringProtocol {
    /// The text without leading and trailing spaces, tabs and line ends.
    func trimmedWhitespace() -> String {
        guard let first = firstIndex(where: { !$0.isWhitespace }) else { return "" }
        let last = lastIndex(where: { !$0.isWhitespace })!
        return String(self[first...last])
    }
}

extension String {
    /// `\r\n` and lone `\r` turned into `\n`.
    fileprivate func replacingCRLF() -> String {
        var out = ""
        out.reserveCapacity(utf8.count)
        var previousCR = false
        for scalar in unicodeScalars {
            if scalar == "\r" {
                out.unicodeScalars.append("\n")
                previousCR = true
            } else {
                if !(scalar == "\n" && previousCR) { out.unicodeScalars.append(scalar) }
                previousCR = false
            }
        }
        return out
    }
}
