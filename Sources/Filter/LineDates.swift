// Adapts the date detector to the engine.

extension DateDetector: LineDateFinder {
    func findDate(_ line: UnsafeBufferPointer<UInt8>) -> (range: Range<Int>, time: Double)? {
        guard let m = match(line) else { return nil }
        return (m.range, m.time)
    }
}

extension CompiledFilter {
    /// The date finder a processor uses when none is injected: a `DateDetector` for the pattern in force.
    static func defaultDateFinder(
        pattern: String?, options: FilterOptions
    ) -> @Sendable () throws(FilterError) -> LineDateFinder? {
        let timeZone = options.timeZone
        let now = options.now
        return { () throws(FilterError) -> LineDateFinder? in
            do {
                return try DateDetector(datePattern: pattern, timeZone: timeZone, now: now)
            } catch {
                throw FilterError(
                    code: .badDatePattern, message: "\(error); fix the datepattern or logtimezone")
            }
        }
    }
}

/// A date found in a line: the byte range of its text and its time (seconds since the Unix epoch).
public struct FoundDate: Sendable, Equatable {
    /// Where the date's text is in the line (empty for an optional date that matched nothing).
    public var range: Range<Int>
    /// The time it stands for.
    public var time: Double
}

/// One date finder for several processors whose filters have the same date settings and read the same lines
/// (jails on one log file): each line's date is looked for once, and each processor gets it with
/// `LineProcessor.process(_:date:)`. It must be given exactly the lines each of those processors would look at
/// (none longer than `FilterOptions.maxLineLength`), in order: the finder learns from them as each processor's
/// own would.
///
/// ```swift
/// let dates = try filter.makeSharedDateFinder()!      // filters with equal `dateSharingKey`
/// let date = dates.find(line)
/// for p in processors { p.process(line, date: date) }
/// ```
public final class SharedDateFinder {
    let finder: LineDateFinder

    init(_ finder: LineDateFinder) { self.finder = finder }

    /// The date in `line`, or nil.
    public func find(_ line: UnsafeBufferPointer<UInt8>) -> FoundDate? {
        finder.findDate(line).map { FoundDate(range: $0.range, time: $0.time) }
    }
}

extension CompiledFilter {
    /// Filters with equal keys find the same date in every line (same date pattern, time zone and line limit);
    /// nil when the filter's date finder is not the standard one.
    public var dateSharingKey: String? {
        guard usesDefaultDateFinder else { return nil }
        return "\(datePattern ?? "")\u{0}\(options.timeZone ?? "")\u{0}\(options.maxLineLength)"
    }

    /// A finder for this filter's date settings, shared by processors of filters with the same `dateSharingKey`.
    public func makeSharedDateFinder() throws(FilterError) -> SharedDateFinder? {
        try makeDateFinder().map(SharedDateFinder.init)
    }
}
