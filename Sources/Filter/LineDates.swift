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
