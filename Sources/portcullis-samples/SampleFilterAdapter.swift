import Configuration
import Filter

/// Connects the harness to the engine: loads a filter variant from a config tree and reports failures in the
/// shape annotations compare against.
final class SampleFilterAdapter: SampleFilter {
    private let processor: LineProcessor

    private init(processor: LineProcessor) {
        self.processor = processor
    }

    /// Loads `name[options]` from `confDir` with the sample suite's settings: every failregex tried, raw hosts,
    /// "now" = 2005-08-14T10:00:00Z.
    static func load(confDir: String, name: String, options: [(String, String)]) throws -> SampleFilter {
        let spec =
            name + (options.isEmpty ? "" : "[" + options.map { "\($0)=\(quote($1))" }.joined(separator: ", ") + "]")
        let config = try ConfigTree(root: confDir).loadFilter(spec)
        let now = SampleRunner.testNow
        let filter = try CompiledFilter(
            config, options: FilterOptions(now: { now }, dnsMode: .raw, checkAllRegex: true))
        return SampleFilterAdapter(processor: try filter.makeProcessor())
    }

    private static func quote(_ v: String) -> String {
        v.contains(",") || v.contains("]") || v.contains("\"") ? "'" + v + "'" : v
    }

    func process(_ line: String, journalTime: Double?) -> [ObservedFailure] {
        var text = line
        _ = text.withUTF8 { bytes in
            if let journalTime { processor.process(bytes, time: journalTime) } else { processor.process(bytes) }
        }
        return processor.failures.map { f in
            var fields: [String: ObservedValue] = [:]
            for (k, v) in f.fields { fields[k] = .string(v) }
            if !f.users.isEmpty { fields["users"] = .set(f.users) }
            return ObservedFailure(
                regexIndex: f.regexIndex, id: f.host ?? f.id, time: f.time, fields: fields, attempts: f.attempts,
                isNoFail: f.isNoFail)
        }
    }
}
