import Core

/// Renders replies as text exactly as `fail2ban-client` prints them, so `portcullis status sshd` and
/// `fail2ban-client status sshd` show the same bytes.
///
/// ```swift
/// StatusFormatter.format(.success([.tuple(["Number of jail", 1]), .tuple(["Jail list", "sshd"])]), for: ["status"])
/// // "Status\n|- Number of jail:\t1\n`- Jail list:\tsshd"
/// ```
public enum StatusFormatter {
    /// The text fail2ban-client prints for a response (without the final newline) and its exit status
    /// (0 on success, 255 on error).
    public static func render(_ response: ControlResponse, for command: [String]) -> (text: String, exitCode: Int32) {
        switch response {
        case .success(let value): return (format(value, for: command), 0)
        case .failure(let error): return (error.description, 255)
        }
    }

    /// The text for a successful reply to `command`.
    public static func format(_ value: ControlValue, for command: [String]) -> String {
        formatted(value, command) ?? PythonRepr.str(value)
    }

    private static func formatted(_ value: ControlValue, _ c: [String]) -> String? {
        guard let verb = c.first else { return nil }
        switch verb {
        case "ping": return "Server replied: " + PythonRepr.str(value)
        case "version": return nil
        case "start": return "Jail started"
        case "stop":
            guard value == .null else { return nil }
            return c.count == 1 ? "Shutdown successful" : "Jail stopped"
        case "add": return value.stringValue.map { "Added jail " + $0 }
        case "flushlogs": return value.stringValue.map { "logs: " + $0 }
        case "echo": return value.elements.map { $0.map(PythonRepr.str).joined(separator: " ") }
        case "status": return c.count > 1 ? jailStatus(value, jail: c[1]) : serverStatus(value)
        default: break
        }
        guard c.count >= 2 else { return nil }
        switch c[1] {
        case "syslogsocket": return value.stringValue.map { "Current syslog socket is:\n`- " + $0 }
        case "logtarget": return value.stringValue.map { "Current logging target is:\n`- " + $0 }
        case "loglevel":
            let name: ControlValue = value.intValue.map { .string(levelName($0)) } ?? value
            return "Current logging level is " + PythonRepr.render(name)
        case "dbfile":
            if value == .null { return "Database currently disabled" }
            return value.stringValue.map { "Current database file is:\n`- " + $0 }
        case "dbpurgeage":
            if value == .null { return "Database currently disabled" }
            let seconds: Int? = {
                if case .double(let d) = value, d.isFinite { return Int(saturating: d) }
                return value.intValue
            }()
            return seconds.map { "Current database purge age is:\n`- \($0)seconds" }
        default: break
        }
        guard c.count >= 3 else { return nil }
        switch c[2] {
        case "logpath", "addlogpath", "dellogpath":
            return tree(value, empty: "No file is currently monitored", title: "Current monitored log file(s):")
        case "logencoding": return value.stringValue.map { "Current log encoding is set to:\n" + $0 }
        case "journalmatch", "addjournalmatch", "deljournalmatch":
            guard let groups = value.elements else { return nil }
            if groups.isEmpty { return "No journal match filter set" }
            var parts: [String] = []
            for group in groups {
                guard let words = group.elements?.compactMap(\.stringValue), words.count == group.elements?.count
                else { return nil }
                parts.append(words.joined(separator: " "))
            }
            return "Current match filter:\n" + parts.joined(separator: " + ")
        case "datepattern":
            if value == .null { return "Current date pattern set to: Not set/required" }
            guard let pair = value.elements, pair.count == 2 else { return nil }
            if pair[0] == .null { return "Current date pattern set to: " + PythonRepr.str(pair[1]) }
            return "Current date pattern set to: \(PythonRepr.str(pair[0])) (\(PythonRepr.str(pair[1])))"
        case "ignoreip", "addignoreip", "delignoreip":
            return tree(
                value, empty: "No IP address/network is ignored", title: "These IP addresses/networks are ignored:")
        case "failregex", "addfailregex", "delfailregex", "ignoreregex", "addignoreregex", "delignoreregex":
            guard let items = strings(value) else { return nil }
            if items.isEmpty { return "No regular expression is defined" }
            var lines = ["The following regular expression are defined:"]
            for (n, regex) in items.enumerated() {
                lines.append("\(n == items.count - 1 ? "`-" : "|-") [\(n)]: \(regex)")
            }
            return lines.joined(separator: "\n")
        case "actions":
            guard let items = strings(value) else { return nil }
            if items.isEmpty { return "No actions for jail \(c[1])" }
            return "The jail \(c[1]) has the following actions:\n" + items.joined(separator: ", ")
        case "actionproperties", "actionmethods":
            guard let items = strings(value), c.count >= 4 else { return nil }
            let noun = c[2] == "actionproperties" ? "properties" : "methods"
            if items.isEmpty { return "No \(noun) for jail \(c[1]) action \(c[3])" }
            return "The jail \(c[1]) action \(c[3]) has the following \(noun):\n" + items.joined(separator: ", ")
        case "banip" where verb == "get":
            guard case .list = value, let items = strings(value) else { return nil }
            var separator = c.count <= 3 ? " " : c[3]
            if separator == "--with-time" { separator = "\n" }
            return items.joined(separator: separator)
        default:
            return nil
        }
    }

    private static func strings(_ value: ControlValue) -> [String]? {
        guard let items = value.elements else { return nil }
        let texts = items.compactMap(\.stringValue)
        return texts.count == items.count ? texts : nil
    }

    private static func tree(_ value: ControlValue, empty: String, title: String) -> String? {
        guard let items = strings(value) else { return nil }
        if items.isEmpty { return empty }
        var lines = [title]
        for (n, item) in items.enumerated() { lines.append((n == items.count - 1 ? "`- " : "|- ") + item) }
        return lines.joined(separator: "\n")
    }

    /// A status field value: lists are joined with spaces, anything else is Python `str()`.
    private static func field(_ value: ControlValue) -> String {
        if case .list(let items) = value { return items.map(PythonRepr.str).joined(separator: " ") }
        return PythonRepr.str(value)
    }

    private static func serverStatus(_ value: ControlValue) -> String? {
        guard let entries = value.elements else { return nil }
        var lines = ["Status"]
        for (n, entry) in entries.enumerated() {
            guard let pair = entry.elements, pair.count >= 2 else { return nil }
            let prefix = n == entries.count - 1 ? "`-" : "|-"
            lines.append("\(prefix) \(PythonRepr.str(pair[0])):\t\(field(pair[1]))")
        }
        return lines.joined(separator: "\n")
    }

    private static func jailStatus(_ value: ControlValue, jail: String) -> String? {
        guard let sections = value.elements else { return nil }
        var lines = ["Status for the jail: \(jail)"]
        for (n, section) in sections.enumerated() {
            guard let pair = section.elements, pair.count >= 2, let entries = pair[1].elements else { return nil }
            let last = n == sections.count - 1
            lines.append("\(last ? "`-" : "|-") \(PythonRepr.str(pair[0]))")
            let indent = last ? "   " : "|  "
            for (m, entry) in entries.enumerated() {
                guard let kv = entry.elements, kv.count >= 2 else { return nil }
                let prefix = indent + (m == entries.count - 1 ? "`-" : "|-")
                lines.append("\(prefix) \(PythonRepr.str(kv[0])):\t\(field(kv[1]))")
            }
        }
        return lines.joined(separator: "\n")
    }

    private static func levelName(_ level: Int) -> String {
        switch level {
        case 50: return "CRITICAL"
        case 40: return "ERROR"
        case 30: return "WARNING"
        case 20: return "INFO"
        case 10: return "DEBUG"
        case 0: return "NOTSET"
        default: return "Level \(level)"
        }
    }
}
