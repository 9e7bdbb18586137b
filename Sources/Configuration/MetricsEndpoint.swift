import Core

/// Where the daemon serves Prometheus metrics: `metrics = 127.0.0.1:9191` in `[Definition]` of the main
/// configuration. Off unless given.
///
/// ```swift
/// try MetricsEndpoint(parsing: "127.0.0.1:9191")   // 127.0.0.1:9191
/// try MetricsEndpoint(parsing: "[::1]:9191")       // [::1]:9191
/// try MetricsEndpoint(parsing: "9191")             // 127.0.0.1:9191 (loopback when no address is given)
/// try MetricsEndpoint(parsing: "off")              // nil
/// ```
public struct MetricsEndpoint: Sendable, Hashable, CustomStringConvertible {
    /// The address to listen on (numeric; `0.0.0.0` / `::` for every interface).
    public var address: IPAddress
    /// The TCP port (1–65535).
    public var port: UInt16

    /// An endpoint.
    public init(address: IPAddress, port: UInt16) {
        self.address = address
        self.port = port
    }

    /// True when only this host can connect (127.0.0.0/8, ::1).
    public var isLoopback: Bool {
        address.family == .v4 ? (address.low >> 24) & 0xFF == 127 : address.high == 0 && address.low == 1
    }

    /// `ADDR:PORT`, IPv6 in brackets.
    public var description: String {
        address.family == .v6 ? "[\(address)]:\(port)" : "\(address):\(port)"
    }

    /// Parses `ADDR:PORT`, `[ADDR6]:PORT`, `localhost:PORT` or a bare `PORT` (loopback); nil for an empty value or
    /// `off`/`no`/`none`/`false`.
    /// - Throws: `ConfigError` `.badValue` at `location`, saying what to write.
    public init?(parsing raw: String, location: SourceLocation? = nil) throws(ConfigError) {
        let text = raw.trimmedWhitespace()
        if text.isEmpty || ["off", "no", "none", "false", "0"].contains(text.lowercased()) { return nil }
        func bad(_ why: String) -> ConfigError {
            ConfigError(
                .badValue, "metrics = \(text): \(why)", at: location,
                hint: "write e.g. metrics = 127.0.0.1:9191, or leave it out to serve no metrics")
        }
        var host = "127.0.0.1"
        var portText = Substring(text)
        if text.hasPrefix("[") {
            guard let close = text.firstIndex(of: "]"), text[text.index(after: close)...].hasPrefix(":") else {
                throw bad("an IPv6 address is written [ADDR]:PORT")
            }
            host = String(text[text.index(after: text.startIndex)..<close])
            portText = text[text.index(close, offsetBy: 2)...]
        } else if let colon = text.lastIndex(of: ":") {
            guard text.firstIndex(of: ":") == colon else { throw bad("an IPv6 address is written [ADDR]:PORT") }
            host = String(text[..<colon])
            portText = text[text.index(after: colon)...]
        }
        if host.lowercased() == "localhost" { host = "127.0.0.1" }
        guard let address = IPAddress(host) else { throw bad("'\(host)' is not an IPv4 or IPv6 address") }
        guard let port = UInt16(portText), port > 0 else { throw bad("'\(portText)' is not a port (1-65535)") }
        self.init(address: address, port: port)
    }
}
