/// The daemon's own settings: `[Definition]` of `portcullis.conf` (when present) or `fail2ban.conf`, with their
/// `.local` and `.d/` files.
public struct MainConfiguration: Sendable {
    /// The file read first (`…/portcullis.conf` or `…/fail2ban.conf`).
    public var file: String
    /// `loglevel`: CRITICAL, ERROR, WARNING, NOTICE, INFO, DEBUG, TRACEDEBUG, HEAVYDEBUG or a number.
    public var loglevel: String
    /// `logtarget`: STDOUT, STDERR, SYSLOG, SYSTEMD-JOURNAL or a file path.
    public var logtarget: String
    /// `syslogsocket`: `auto` or a socket path.
    public var syslogsocket: String
    /// `logformat` (Portcullis): `text`, fail2ban's layout (default), or `json`, one JSON object per line.
    public var logformat: String = "text"
    /// `socket`: the control socket path.
    public var socket: String
    /// `pidfile`.
    public var pidfile: String
    /// `allowipv6`: auto, yes or no.
    public var allowipv6: String
    /// `dbfile`: the database path, or `:memory:` / `None`.
    public var dbfile: String
    /// `dbmaxmatches`: how many matches are stored per ticket.
    public var dbmaxmatches: Int
    /// `dbpurgeage`: how long bans are kept in the database.
    public var dbpurgeage: TimeSpan
    /// `dbpurgeage` as written.
    public var dbpurgeageText: String
    /// Every resolved option of `[Definition]` (and DEFAULT), and `[Thread]` options as `thread.name`.
    public var values: [String: String]
    /// `metrics`: where Prometheus metrics are served (`127.0.0.1:9191`); nil (the default) serves none.
    public var metrics: MetricsEndpoint? = nil
    /// Where each option of `[Definition]` was written.
    public var locations: [String: SourceLocation] = [:]

    /// fail2ban's defaults for options the file does not set.
    public static let defaults: [String: String] = [
        "loglevel": "INFO", "logtarget": "STDERR", "syslogsocket": "auto",
        "socket": "/var/run/fail2ban/fail2ban.sock", "pidfile": "/var/run/fail2ban/fail2ban.pid", "allowipv6": "auto",
        "dbfile": "/var/lib/fail2ban/fail2ban.sqlite3", "dbmaxmatches": "10", "dbpurgeage": "1d",
    ]
}

extension ConfigTree {
    /// Reads `portcullis.conf` (if it or its `.local` exists) or `fail2ban.conf`, with `.local` and `.d/` files.
    public func loadMain() throws(ConfigError) -> MainConfiguration {
        let own = Path.join(root, "portcullis")
        let base =
            FileSystem.isFile(own + ".conf") || FileSystem.isFile(own + ".local") ? own : Path.join(root, "fail2ban")
        let store = try ConfigStore.read(base: base, what: "main configuration")
        var interp = Interpolator(store: store)
        interp.fallback = builtinDefaults
        let section = "Definition"
        var values: [String: String] = [:]
        var names = store.options(in: ConfigStore.defaultSection)
        for option in store.options(in: section) where !names.contains(option) { names.append(option) }
        for option in names {
            values[option] = try interp.get(section, option)
        }
        for option in store.options(in: "Thread") {
            values["thread." + option] = try interp.get("Thread", option)
        }
        // Fleet sharing (`[fleet]`, read by Fleet.FleetConfiguration): kept as `fleet.KEY`, with each key's place.
        for option in store.options(in: "fleet") {
            values["fleet." + option] = try interp.get("fleet", option)
            if let place = interp.find(option, in: "fleet")?.0.location {
                values["fleet.@" + option] = "\(place)"
            }
        }
        func value(_ option: String) -> String {
            values[option]?.trimmedWhitespace() ?? MainConfiguration.defaults[option]!
        }
        func location(_ option: String) -> SourceLocation? { interp.find(option, in: section)?.0.location }
        guard let dbmaxmatches = Int(value("dbmaxmatches")), dbmaxmatches >= 0 else {
            throw ConfigError(
                .badValue, "dbmaxmatches must be a whole number, 0 or more, not '\(value("dbmaxmatches"))'",
                at: location("dbmaxmatches"), hint: "write e.g. dbmaxmatches = 10")
        }
        let purge = value("dbpurgeage")
        let format = (values["logformat"]?.trimmedWhitespace() ?? "text").lowercased()
        guard format == "text" || format == "json" else {
            throw ConfigError(
                .badValue, "logformat must be text or json, not '\(values["logformat"] ?? "")'",
                at: location("logformat"),
                hint: "write logformat = text (fail2ban's layout) or logformat = json")
        }
        var main = MainConfiguration(
            file: store.files.first ?? base + ".conf", loglevel: value("loglevel"), logtarget: value("logtarget"),
            syslogsocket: value("syslogsocket"), socket: value("socket"), pidfile: value("pidfile"),
            allowipv6: value("allowipv6"), dbfile: value("dbfile"), dbmaxmatches: dbmaxmatches,
            dbpurgeage: try Self.time(purge, "dbpurgeage", location("dbpurgeage")), dbpurgeageText: purge,
            values: values)
        for option in names { main.locations[option] = location(option) }
        if let text = values["metrics"] {
            main.metrics = try MetricsEndpoint(parsing: text, location: location("metrics"))
        }
        main.logformat = format
        return main
    }

    /// A time option, its error naming the option.
    private static func time(
        _ text: String, _ option: String, _ location: SourceLocation?
    ) throws(ConfigError)
        -> TimeSpan
    {
        do {
            return try TimeSpan.parse(text, location: location)
        } catch {
            var e = error
            e.message = "\(option): " + e.message
            throw e
        }
    }
}
