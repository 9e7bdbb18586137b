import Configuration
import Control
import Core
import Filter

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// The values of a jail that fail2ban-client's `get JAIL …` shows and `set JAIL …` changes at run time, in
/// fail2ban-server's reply types (an int or a float for times, `False` for an unset `ignorecommand`, …). They hold
/// until the next reload, which reads the configuration again.
public struct JailSettings: Sendable {
    /// `maxretry` as set: fail2ban accepts 0 and negative numbers (the ban policy counts at least 1).
    public var maxRetry: Int
    /// `findtime` as fail2ban evaluates it: an int, or a float for `1.5m`.
    public var findTime: ControlValue
    /// `usedns`: yes, warn, no or raw (anything else is `no`, as in fail2ban).
    public var useDNS: String
    /// `ignoreself`.
    public var ignoreSelf: Bool
    /// `ignorecommand`: `False` when none (fail2ban's value), else the command. Portcullis does not run it (a
    /// command per failure would sit on the counting path); the jail logs a warning when one is set.
    public var ignoreCommand: ControlValue
    /// `ignorecache`: `None`, or `[key, max-count, max-time]`.
    public var ignoreCache: ControlValue
    /// `logencoding`: the encoding name (`auto` reads as the locale's, like fail2ban).
    public var logEncoding: String
    /// `logtimezone`: `None` or the zone.
    public var logTimeZone: ControlValue
    /// `bantime.*` options in force (fail2ban answers `None` for the others), in the order they were set.
    public var banTimeExtra: [(key: String, value: ControlValue)]
    /// `backend` as configured (`polling`, `systemd`, …).
    public var backend: String

    /// fail2ban's `maxmatches` when the configuration does not set it.
    public static let defaultMaxMatches = 5

    /// The settings of a jail added at run time (`add JAIL BACKEND`), fail2ban's defaults.
    public init(backend: String) {
        maxRetry = 3
        findTime = .int(600)
        useDNS = "warn"
        ignoreSelf = true
        ignoreCommand = .bool(false)
        ignoreCache = .null
        logEncoding = Self.preferredEncoding
        logTimeZone = .null
        banTimeExtra = []
        self.backend = backend
    }

    /// The settings of a configured jail.
    init(_ jail: JailConfiguration, useDNS: String) {
        maxRetry = jail.maxretry
        let findText = jail.values["findtime"] ?? "600"
        findTime = (try? PythonValues.seconds(findText).get().value) ?? .int(Int(saturating: jail.findtime.seconds))
        self.useDNS = useDNS
        ignoreSelf = jail.ignoreself
        ignoreCommand = jail.ignorecommand.allSatisfy(\.isWhitespace) ? .bool(false) : .string(jail.ignorecommand)
        ignoreCache = .null
        if let text = jail.values["ignorecache"], !text.allSatisfy(\.isWhitespace) {
            ignoreCache = (try? Self.ignoreCache(text).get()) ?? .null
        }
        logEncoding = Self.encodingName(jail.logencoding)
        logTimeZone = jail.logtimezone.map { .string($0) } ?? .null
        banTimeExtra = []
        for key in Self.banTimeKeys {
            guard let text = jail.values["bantime." + key], !text.isEmpty else { continue }
            if let value = try? Self.banTimeValue(key, text).get() { banTimeExtra.append((key, value)) }
        }
        backend = jail.backend
    }

    /// The `bantime.*` keys fail2ban's configuration reader passes to the server, in its order.
    static let banTimeKeys = ["increment", "maxtime", "rndtime", "factor", "formula", "multipliers", "overalljails"]

    /// The value fail2ban keeps for `bantime.KEY = text`: a bool for `increment`, seconds for `maxtime` and
    /// `rndtime`, the text for the others.
    static func banTimeValue(_ key: String, _ text: String) -> Result<ControlValue, ControlError> {
        switch key {
        case "increment": return .success(.bool(PythonValues.bool(text)))
        case "maxtime", "rndtime": return PythonValues.seconds(text).map(\.value)
        default: return .success(.string(text))
        }
    }

    /// The value of `bantime.KEY` (`None` when not set).
    func banTimeExtra(_ key: String) -> ControlValue {
        banTimeExtra.first { $0.key == key }?.value ?? .null
    }

    /// `usedns` as fail2ban keeps it: yes, warn, no or raw (any case); anything else is no.
    static func useDNS(_ text: String) -> String {
        let t = text.lowercased()
        return ["yes", "warn", "no", "raw"].contains(t) ? t : "no"
    }

    /// fail2ban's `ignorecache` value for `key="<ip>", max-count=100, max-time=5m`: `[key, count, seconds]`.
    static func ignoreCache(_ text: String) -> Result<ControlValue, ControlError> {
        var options: [String: String] = [:]
        for part in text.split(separator: ",") {
            let kv = part.split(separator: "=", maxSplits: 1).map { PythonValues.trim(String($0)) }
            guard kv.count == 2 else { continue }
            var value = kv[1]
            if value.count >= 2, let q = value.first, q == "\"" || q == "'", value.last == q {
                value = String(value.dropFirst().dropLast())
            }
            options[kv[0]] = value
        }
        guard let key = options["key"] else { return .failure(ControlError(.keyError, "key")) }
        let count: Int
        switch PythonValues.int(options["max-count"] ?? "100") {
        case .success(let n): count = n
        case .failure(let e): return .failure(e)
        }
        let time: ControlValue
        switch PythonValues.seconds(options["max-time"] ?? "300") {
        case .success(let t): time = t.value
        case .failure(let e): return .failure(e)
        }
        return .success([.string(key), .int(count), time])
    }

    /// The encoding fail2ban reports for `logencoding`: `auto` is the locale's preferred encoding.
    static func encodingName(_ text: String) -> String {
        text.lowercased() == "auto" ? preferredEncoding : text
    }

    /// The locale's character set as Python names it (`UTF-8`); Python 3.7+ reads the C locale as UTF-8 too.
    static let preferredEncoding: String = {
        guard let name = getenv("LC_ALL") ?? getenv("LC_CTYPE") ?? getenv("LANG") else { return "UTF-8" }
        let text = String(cString: name)
        guard let dot = text.firstIndex(of: ".") else { return "UTF-8" }
        let charset = text[text.index(after: dot)...].prefix { $0 != "@" }
        switch charset.lowercased() {
        case "utf-8", "utf8", "": return "UTF-8"
        default: return String(charset)
        }
    }()

    /// Encodings a log may be declared in (`set JAIL logencoding`): Python's names for the usual ones. Portcullis
    /// matches a log's bytes as UTF-8 whatever the declaration (the stock filters are ASCII); an unknown name is
    /// refused as fail2ban refuses it.
    static func isKnownEncoding(_ name: String) -> Bool {
        let n = String(name.lowercased().map { $0 == "_" ? "-" : $0 })
        let known: Set<String> = [
            "auto", "utf-8", "utf8", "u8", "utf", "utf-8-sig", "utf-16", "utf-32", "ascii", "us-ascii", "646",
            "latin-1",
            "latin1", "latin", "l1", "iso-8859-1", "iso8859-1", "8859", "cp819", "iso-8859-15", "iso8859-15", "latin-9",
            "cp1252", "windows-1252", "koi8-r", "cp1251", "windows-1251", "euc-jp", "shift-jis", "gbk", "gb2312",
            "big5",
        ]
        return known.contains(n)
    }
}

/// One action of a jail as `get JAIL actions`, `get JAIL actionproperties ACT` and `get JAIL action ACT PROP`
/// show it: its name and its properties (commands, `[Init]` values, `timeout`, `actname`, …).
public struct ActionProperties: Sendable {
    /// The action's name in the jail (`actname`).
    public var name: String
    /// Properties by name: commands and tags as text, flags as bools, `timeout` as seconds.
    public var properties: [String: ControlValue]

    /// An action added at run time (`set JAIL addaction ACT`): fail2ban's empty command action.
    public init(name: String) {
        self.name = name
        properties = Self.emptyCommandAction
    }

    /// The properties of a configured action.
    init(_ action: ActionConfiguration) {
        name = action.name
        var p = Self.emptyCommandAction
        for (k, v) in action.commands { p[k] = .string(v.value) }
        for (k, v) in action.flags { p[k] = .bool(v) }
        for (k, v) in action.tags where k != "timeout" { p[k] = .string(v) }
        for (k, v) in action.arguments where k != "timeout" { p[k] = .string(v) }
        for (condition, tags) in action.conditionalTags {
            for (k, v) in tags { p["\(k)?\(condition)"] = .string(v) }
        }
        p["actname"] = .string(action.name)
        if let t = action.values["timeout"] ?? action.arguments["timeout"],
            let seconds = try? PythonValues.seconds(t).get()
        {
            p["timeout"] = seconds.value
        }
        properties = p
    }

    /// What every fail2ban command action has: its commands (empty), `timeout` 60 and the attributes Python
    /// lists among its properties.
    static let emptyCommandAction: [String: ControlValue] = {
        var p: [String: ControlValue] = ["timeout": .int(60), "banEpoch": .int(0)]
        for k in [
            "actionban", "actioncheck", "actionflush", "actionreban", "actionreload", "actionrepair", "actionstart",
            "actionstop", "actionunban",
        ] {
            p[k] = .string("")
        }
        return p
    }()

    /// Attributes of a fail2ban command action that are not settable values (class constants).
    static let constantProperties = ["ESCAPE_CRE", "ESCAPE_VN_CRE"]

    /// The methods of a fail2ban command action (`get JAIL actionmethods ACT`).
    static let methods = [
        "ban", "clearAllParams", "consistencyCheck", "escapeTag", "executeCmd", "flush", "invalidateBanEpoch",
        "prolong",
        "reban", "reload", "replaceDynamicTags", "replaceTag", "start", "stop", "unban",
    ]

    /// The property names in Python's `dir()` order (code points).
    var propertyNames: [String] {
        (Self.constantProperties + properties.keys).sorted { Array($0.utf8).lexicographicallyPrecedes(Array($1.utf8)) }
    }
}

extension FilterOptions {
    /// Applies `usedns`: names are resolved with yes and warn, kept as written with raw, not matched with no.
    mutating func setDNS(_ usedns: String) {
        dnsMode = DNSMode(rawValue: usedns) ?? .no
        resolver = dnsMode == .yes || dnsMode == .warn ? { @Sendable name in HostAddresses.resolve(name) } : nil
    }
}
