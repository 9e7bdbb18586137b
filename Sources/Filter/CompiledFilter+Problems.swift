import Configuration

extension CompiledFilter {
    /// Every problem that stops `definition` from compiling, not only the first: each regex (prefregex, every
    /// failregex, every ignoreregex) and the date pattern are compiled on their own by the same initialiser the
    /// daemon uses, so `portcullis check` lists all of them with their file and line. Empty when the filter
    /// compiles.
    ///
    /// ```swift
    /// let problems = CompiledFilter.problems(try tree.loadFilter("sshd"), options: FilterOptions())
    /// for p in problems { print(p) }   // /etc/fail2ban/filter.d/sshd.local:4: unable to compile …
    /// ```
    public static func problems(_ definition: FilterConfiguration, options: FilterOptions = .init()) -> [FilterError] {
        func attempt(_ d: FilterConfiguration) -> FilterError? {
            do throws(FilterError) {
                _ = try CompiledFilter(d, options: options)
                return nil
            } catch {
                return error
            }
        }
        guard let whole = attempt(definition) else { return [] }
        var bare = definition
        bare.failregex = []
        bare.ignoreregex = []
        bare.prefregex = nil
        var found: [FilterError] = []
        func note(_ e: FilterError?) {
            guard let e, !found.contains(where: { $0.message == e.message && $0.location == e.location }) else {
                return
            }
            found.append(e)
        }
        // Options and the date pattern alone.
        let base = attempt(bare)
        note(base)
        guard base == nil else { return found }
        var prefOK = true
        if definition.prefregex != nil {
            var d = bare
            d.prefregex = definition.prefregex
            let e = attempt(d)
            note(e)
            prefOK = e == nil
        }
        for regex in definition.failregex {
            var d = bare
            d.prefregex = prefOK ? definition.prefregex : nil
            d.failregex = [regex]
            let e = attempt(d)
            // Without its (broken) prefregex a failregex may lack the address group the prefregex has.
            if prefOK || e?.code != .noFailureID { note(e) }
        }
        for regex in definition.ignoreregex {
            var d = bare
            d.ignoreregex = [regex]
            note(attempt(d))
        }
        // Whatever made the whole fail is reported even if no part fails alone.
        if found.isEmpty { found.append(whole) }
        return found
    }
}
