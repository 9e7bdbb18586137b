import Configuration
import Control
import Filter

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// Resolves `portcullis regex`'s FILTER argument the way fail2ban-regex does: a filter name in the config tree
/// (`sshd`, `sshd[mode=aggressive]`), a path to a filter file (`filter.d/sshd.conf`), or a raw failregex.
struct FilterSource {
    /// The resolved definition the engine compiles.
    var definition: FilterConfiguration
    /// fail2ban-regex's `Use …` line describing where the regexes came from.
    var useLines: [String]

    /// The config directory used when `--conf` is not given: `/etc/portcullis` when it has a `filter.d`,
    /// else `/etc/fail2ban`.
    static func defaultConfigDirectory() -> String {
        isDirectory("/etc/portcullis/filter.d") ? "/etc/portcullis" : "/etc/fail2ban"
    }

    /// Resolves `value` (a failregex argument) against `conf`.
    static func failregex(_ value: String, conf: String) throws(CLIError) -> FilterSource {
        if let (file, root, name, options) = try locate(value, conf: conf) {
            let config = try load(file: file, root: root, name: name, options: options)
            var use: [String] = []
            if root != nil {
                use.append("Use   failregex filter file : \(name), basedir: \(root!)")
            } else {
                use.append("Use   failregex file : \(file)")
            }
            if !options.isEmpty {
                use.append("Use   filter options : " + pythonDict(options))
            }
            return FilterSource(definition: config, useLines: use)
        }
        if looksLikeFilterName(value) {
            throw CLIError(
                .usage,
                "unknown filter '\(value)': no \(conf)/filter.d/\(baseName(of: value)).conf or .local "
                    + "(use --conf DIR for another config tree, or give a path or a regex)")
        }
        return FilterSource(
            definition: FilterConfiguration(name: "failregex", file: "", failregex: [ConfigValue(value)]),
            useLines: ["Use   failregex line : \(shortString(value))"])
    }

    /// Resolves the IGNOREREGEX argument: a filter file (its `ignoreregex` is used) or a raw regex.
    static func ignoreregex(_ value: String, conf: String) throws(CLIError) -> ([ConfigValue], String) {
        if isRegularFile(value) {
            let config = try load(file: absolutePath(value), root: nil, name: value, options: [])
            return (config.ignoreregex, "Use ignoreregex file : \(value)")
        }
        return ([ConfigValue(value)], "Use ignoreregex line : \(shortString(value))")
    }

    /// Finds the file behind a name or path; nil when `value` is not a filter reference (a raw regex).
    private static func locate(
        _ value: String, conf: String
    ) throws(CLIError) -> (file: String, root: String?, name: String, options: [(String, String)])? {
        guard isFilterReference(value) else { return nil }
        let (name, options) = try splitOptions(value)
        let last5 = name.suffix(6)
        let candidates = last5.contains(".") ? [name] : [name, name + ".conf", name + ".local"]
        for candidate in candidates {
            var path = candidate
            if !candidate.contains("/") {
                path = (conf.hasSuffix("/filter.d") ? conf : conf + "/filter.d") + "/" + candidate
            }
            guard isRegularFile(path) else { continue }
            let absolute = absolutePath(path)
            let dir = dirName(absolute)
            var stem = baseName(of: absolute)
            for ext in [".conf", ".local"] where stem.hasSuffix(ext) { stem.removeLast(ext.count) }
            if baseName(of: dir) == "filter.d" {
                return (absolute, dirName(dir), stem, options)
            }
            return (absolute, nil, stem, options)
        }
        return nil
    }

    private static func load(
        file: String, root: String?, name: String, options: [(String, String)]
    ) throws(CLIError) -> FilterConfiguration {
        let spec =
            (root != nil ? name : file)
            + (options.isEmpty
                ? ""
                : "["
                    + options.map { "\($0)=\(quoted($1))" }
                    .joined(separator: ", ") + "]")
        let tree = ConfigTree(root: root ?? dirName(file))
        do {
            return try tree.loadFilter(spec)
        } catch {
            throw CLIError(.config, "cannot load filter '\(name)': \(error)")
        }
    }

    /// `name[key=value, …]` → name and ordered options.
    static func splitOptions(_ value: String) throws(CLIError) -> (String, [(String, String)]) {
        guard let open = value.firstIndex(of: "["), value.hasSuffix("]") else { return (value, []) }
        let name = String(value[..<open])
        let inner = value[value.index(after: open)..<value.index(before: value.endIndex)]
        var options: [(String, String)] = []
        var current = ""
        var quote: Character? = nil
        var parts: [String] = []
        for c in inner {
            if let q = quote {
                current.append(c)
                if c == q { quote = nil }
            } else if c == "\"" || c == "'" {
                quote = c
                current.append(c)
            } else if c == "," {
                parts.append(current)
                current = ""
            } else {
                current.append(c)
            }
        }
        parts.append(current)
        for part in parts where !part.allSatisfy(\.isWhitespace) {
            guard let eq = part.firstIndex(of: "=") else {
                throw CLIError(.usage, "bad filter option '\(part)' in '\(value)': expected key=value")
            }
            let key = part[..<eq].trimmingSpaces()
            var v = part[part.index(after: eq)...].trimmingSpaces()
            if v.count >= 2, let f = v.first, f == "\"" || f == "'", v.last == f {
                v = String(v.dropFirst().dropLast())
            }
            options.append((key, v))
        }
        return (name, options)
    }

    private static func quoted(_ v: String) -> String {
        v.contains(",") || v.contains("]") || v.contains("\"") ? "'" + v + "'" : v
    }

    /// fail2ban-regex's test: `^/{0,3}[\w/_\-.]+(?:\[.*\])?$`.
    static func isFilterReference(_ value: String) -> Bool {
        var body = Substring(value)
        if let open = body.firstIndex(of: "["), body.hasSuffix("]") { body = body[..<open] }
        guard !body.isEmpty else { return false }
        return body.allSatisfy { $0.isLetter || $0.isNumber || "_/-.".contains($0) }
    }

    /// A bare word (no path, no regex syntax): meant as a filter name, so "not found" is an error, not a regex.
    static func looksLikeFilterName(_ value: String) -> Bool {
        guard isFilterReference(value) else { return false }
        let name = value.split(separator: "[", maxSplits: 1).first.map(String.init) ?? value
        return !name.contains("/") && !name.contains(".")
    }

    /// fail2ban-regex's `shortstr`: at most 53 characters.
    static func shortString(_ s: String, limit: Int = 53) -> String {
        s.count > limit ? String(s.prefix(limit - 3)) + "..." : s
    }

    /// Python's repr of a dict of strings, as fail2ban-regex prints filter options.
    static func pythonDict(_ options: [(String, String)]) -> String {
        "{" + options.map { "\(pythonString($0)): \(pythonString($1))" }.joined(separator: ", ") + "}"
    }

    /// Python's repr of a str (Control's PythonRepr, shared with the control protocol's output).
    static func pythonString(_ s: String) -> String { PythonRepr.quote(s) }
}

extension StringProtocol {
    /// The text without leading and trailing spaces and tabs.
    func trimmingSpaces() -> String {
        var s = Substring(self)
        while let f = s.first, f == " " || f == "\t" { s = s.dropFirst() }
        while let l = s.last, l == " " || l == "\t" { s = s.dropLast() }
        return String(s)
    }
}

/// True when `path` is a regular file (following links).
func isRegularFile(_ path: String) -> Bool {
    var st = stat()
    return stat(path, &st) == 0 && (st.st_mode & S_IFMT) == S_IFREG
}

/// True when `path` is a directory.
func isDirectory(_ path: String) -> Bool {
    var st = stat()
    return stat(path, &st) == 0 && (st.st_mode & S_IFMT) == S_IFDIR
}

/// The last path component.
func baseName(of path: String) -> String {
    var p = Substring(path)
    while p.count > 1, p.hasSuffix("/") { p = p.dropLast() }
    if let slash = p.lastIndex(of: "/") { return String(p[p.index(after: slash)...]) }
    return String(p)
}

/// The path without its last component (`.` for a bare name).
func dirName(_ path: String) -> String {
    guard let slash = path.lastIndex(of: "/") else { return "." }
    if slash == path.startIndex { return "/" }
    return String(path[..<slash])
}

/// `path` made absolute against the working directory and with symlinks resolved when possible.
func absolutePath(_ path: String) -> String {
    if let r = realpath(path, nil) {
        defer { free(r) }
        return String(cString: r)
    }
    return path
}
