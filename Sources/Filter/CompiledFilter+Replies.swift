/// What fail2ban-server reports about a jail's filter (`get JAIL failregex`, `ignoreregex`, `datepattern`), so
/// fail2ban-client prints the same for Portcullis.
extension CompiledFilter {
    /// The failregexes with their tags expanded (`<HOST>` → its groups), as fail2ban-server lists them.
    public var failregexExpanded: [String] {
        failregex.map { FailTags.expand($0.source, useDNS: options.dnsMode != .no) }
    }

    /// The ignoreregexes with their tags expanded.
    public var ignoreregexExpanded: [String] {
        ignoreregex.map { FailTags.expand($0.source, useDNS: options.dnsMode != .no) }
    }

    /// fail2ban's `get JAIL datepattern`: the default detectors (or any set of more than two templates) read as
    /// `(nil, "Default Detectors")`; a single pattern as `(pattern, name)`, without the pattern for the special
    /// ones (`Epoch`, `TAI64N`).
    public var datePatternDescription: (pattern: String?, name: String) {
        Self.datePatternDescription(datePattern)
    }

    /// ``datePatternDescription`` for a datepattern value.
    public static func datePatternDescription(_ datePattern: String?) -> (pattern: String?, name: String) {
        let defaults: (String?, String) = (nil, "Default Detectors")
        var now = time_t(0)
        time(&now)
        var parts = tm()
        localtime_r(&now, &parts)
        guard let datePattern,
            let specs = try? DatePatternCompiler(currentYear: Int(parts.tm_year) + 1900).templates(for: datePattern),
            (1...2).contains(specs.count)
        else { return defaults }
        let first = specs[0]
        switch first.kind {
        case .epoch, .longEpoch, .tai64n: return (nil, first.name)
        default:
            let line = datePattern.split(whereSeparator: { $0 == "\n" || $0 == "\r" })
                .map { $0.trimmingASCIIWhitespace() }.first { !$0.isEmpty }
            return (line, first.name)
        }
    }
}

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif
