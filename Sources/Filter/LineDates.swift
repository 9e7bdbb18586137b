// Adapts the date detector to the engine.

extension CompiledFilter {
    /// The date finder a processor uses when none is injected.
    static func defaultDateFinder(
        pattern: String?, options: FilterOptions
    ) -> @Sendable () throws(FilterError) -> LineDateFinder? {
        // The DateDetector is not on main yet; until it is, lines carry no date.
        return { () throws(FilterError) -> LineDateFinder? in nil }
    }
}
