/// A configuration family read as plain sections, without fail2ban's jail semantics: `NAME.conf`,
/// `NAME.d/*.conf`, `NAME.local`, `NAME.d/*.local` merged option by option (later files win), `[INCLUDES]` and
/// `%(name)s` interpolation as everywhere else. Used for Portcullis's own files such as `firewall.conf`.
///
/// ```swift
/// let firewall = try ConfigTree(root: "/etc/portcullis").loadSections("firewall")
/// for section in firewall.sections { print(section.name, section.options.map(\.name)) }
/// firewall.section("services")?.value("ssh")?.location   // /etc/portcullis/firewall.conf:31
/// ```
public struct SectionedConfiguration: Sendable {
    /// One section after merging: its options in the order first seen, each with its final value and place.
    public struct Section: Sendable {
        /// The section name as written (case kept).
        public var name: String
        /// Options (names lower-cased) with their interpolated values and where the winning value was written.
        public var options: [(name: String, value: ConfigValue)]

        /// The value of `option`, nil when the section does not set it.
        public func value(_ option: String) -> ConfigValue? {
            options.first { $0.name == option.lowercased() }?.value
        }
    }

    /// Every file read, in order.
    public var files: [String]
    /// Sections except `[DEFAULT]` and `[INCLUDES]`, in the order first seen.
    public var sections: [Section]

    /// The section named `name` (exactly, else ignoring case).
    public func section(_ name: String) -> Section? {
        sections.first { $0.name == name } ?? sections.first { $0.name.lowercased() == name.lowercased() }
    }
}

extension ConfigTree {
    /// Reads `ROOT/base.conf`, `base.d/*.conf`, `base.local`, `base.d/*.local` as plain sections.
    ///
    /// - Throws: ``ConfigError`` with file and line for a malformed line or reference; `.notFound` when none of
    ///   the files exists.
    public func loadSections(_ base: String) throws(ConfigError) -> SectionedConfiguration {
        let path = base.hasPrefix("/") ? base : Path.join(root, base)
        let store = try ConfigStore.read(base: path, what: "\(Path.base(of: base)) configuration")
        var interp = Interpolator(store: store)
        interp.fallback = builtinDefaults
        var sections: [SectionedConfiguration.Section] = []
        for name in store.sectionOrder {
            var options: [(name: String, value: ConfigValue)] = []
            for option in store.options(in: name) {
                guard let (raw, ctx) = interp.find(option, in: name) else { continue }
                let text = try interp.interpolate(raw, ctx: ctx)
                options.append((option, ConfigValue(text, location: raw.location)))
            }
            sections.append(.init(name: name, options: options))
        }
        return SectionedConfiguration(files: store.files, sections: sections)
    }
}
