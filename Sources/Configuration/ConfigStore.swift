/// Several INI files read in fail2ban's order and merged into one set of sections.
///
/// For a name `dir/X` the files are `X.conf`, `X.d/*.conf`, `X.local`, `X.d/*.local` (each directory sorted),
/// and each file is preceded by its `[INCLUDES] before = …` files and followed by its `after = …` files
/// (recursively, relative to the including file's directory). Later files override earlier ones option by
/// option; every earlier value is kept so that `%(known/name)s` can reach it.
struct ConfigStore: Sendable {
    /// The name of the defaults section.
    static let defaultSection = "DEFAULT"

    /// section → option → every value it was given, oldest first.
    private(set) var history: [String: [String: [RawValue]]] = [:]
    /// Section names (except DEFAULT and INCLUDES) in the order first seen.
    private(set) var sectionOrder: [String] = []
    /// option names per section in the order first seen.
    private(set) var optionOrder: [String: [String]] = [:]
    /// Every file read, in order.
    private(set) var files: [String] = []
    /// section → option → for each value in `history`, the index in `files` of the file that set it.
    private(set) var layers: [String: [String: [Int]]] = [:]
    /// section → indices in `files` of the files that contain the section.
    private(set) var touches: [String: [Int]] = [:]

    /// An empty store.
    init() {}

    /// Reads `base.conf`, `base.d/*.conf`, `base.local`, `base.d/*.local` (those that exist).
    ///
    /// Throws `.notFound` when none of them exists, naming `what` (e.g. "filter 'sshd'").
    static func read(base: String, what: String) throws(ConfigError) -> ConfigStore {
        var store = ConfigStore()
        let dotD = base + ".d"
        let dItems = FileSystem.list(dotD)
        var candidates = [base + ".conf"]
        candidates += dItems.filter { $0.hasSuffix(".conf") }.map { Path.join(dotD, $0) }
        candidates.append(base + ".local")
        candidates += dItems.filter { $0.hasSuffix(".local") }.map { Path.join(dotD, $0) }
        let existing = candidates.filter { FileSystem.isFile($0) }
        guard !existing.isEmpty else {
            throw ConfigError(
                .notFound, "\(what) not found: neither \(base).conf nor \(base).local exists",
                hint: "check the name, or create \(base).conf")
        }
        for file in existing { try store.add(file: file) }
        return store
    }

    /// Reads one explicit file and its `.local` sibling (for a filter or action given as a path).
    static func read(file: String, what: String) throws(ConfigError) -> ConfigStore {
        guard FileSystem.isFile(file) else {
            throw ConfigError(.notFound, "\(what) not found: \(file) does not exist", hint: "check the path")
        }
        var base = file
        if base.hasSuffix(".conf") { base.removeLast(5) }
        var store = ConfigStore()
        try store.add(file: file)
        for extra in [base + ".d"].flatMap({ d in
            FileSystem.list(d).filter { $0.hasSuffix(".conf") }.map { Path.join(d, $0) }
        })
        where FileSystem.isFile(extra) {
            try store.add(file: extra)
        }
        if FileSystem.isFile(base + ".local") { try store.add(file: base + ".local") }
        for extra in FileSystem.list(base + ".d").filter({ $0.hasSuffix(".local") }).map({ Path.join(base + ".d", $0) })
        where FileSystem.isFile(extra) {
            try store.add(file: extra)
        }
        return store
    }

    /// Reads `file` with its includes and merges it on top of what was read so far.
    mutating func add(file: String) throws(ConfigError) {
        var ordered: [IniFile] = []
        var stack: [String] = []
        try Self.expand(file, into: &ordered, stack: &stack)
        for ini in ordered { merge(ini) }
    }

    /// Merges an already parsed file (used by tests and for synthetic layers).
    mutating func merge(_ ini: IniFile) {
        files.append(ini.path)
        let layer = files.count - 1
        for section in ini.sections where section.name != "INCLUDES" {
            if touches[section.name]?.last != layer { touches[section.name, default: []].append(layer) }
            for (name, _) in section.options { layers[section.name, default: [:]][name, default: []].append(layer) }
            if section.name != Self.defaultSection, history[section.name] == nil {
                sectionOrder.append(section.name)
            }
            if history[section.name] == nil { history[section.name] = [:] }
            for (name, value) in section.options {
                if history[section.name]![name] == nil {
                    optionOrder[section.name, default: []].append(name)
                    history[section.name]![name] = [value]
                } else {
                    history[section.name]![name]!.append(value)
                }
            }
        }
    }

    /// Adds a value on top (as a later file would), e.g. an option forced by code.
    mutating func set(section: String, option: String, value: RawValue) {
        layers[section, default: [:]][option, default: []].append(files.count)
        if section != Self.defaultSection, history[section] == nil { sectionOrder.append(section) }
        if history[section] == nil { history[section] = [:] }
        if history[section]![option] == nil { optionOrder[section, default: []].append(option) }
        history[section]![option, default: []].append(value)
    }

    /// Files `before`, then `file`, then `after`, recursively; a file already on the stack is not re-entered.
    private static func expand(_ file: String, into out: inout [IniFile], stack: inout [String]) throws(ConfigError) {
        if stack.contains(file) { return }
        stack.append(file)
        defer { stack.removeLast() }
        let ini = try IniFile.parse(FileSystem.readText(file), path: file)
        var before: [(String, SourceLocation)] = []
        var after: [(String, SourceLocation)] = []
        for section in ini.sections where section.name == "INCLUDES" {
            for (name, value) in section.options where name == "before" || name == "after" {
                var list: [(String, SourceLocation)] = []
                for (text, line) in value.lines {
                    for part in text.split(whereSeparator: { $0 == " " || $0 == "\t" }) {
                        list.append((String(part), SourceLocation(file: file, line: line)))
                    }
                }
                if name == "before" { before = list } else { after = list }
            }
        }
        let dir = Path.directory(of: file)
        for (name, location) in before {
            try include(name, from: dir, at: location, into: &out, stack: &stack)
        }
        out.append(ini)
        for (name, location) in after {
            try include(name, from: dir, at: location, into: &out, stack: &stack)
        }
    }

    private static func include(
        _ name: String, from dir: String, at location: SourceLocation, into out: inout [IniFile], stack: inout [String]
    ) throws(ConfigError) {
        let path = Path.join(dir, name)
        guard FileSystem.isFile(path) else {
            // A missing optional override (`after = common.local`) is normal; a missing base file is not.
            if name.hasSuffix(".local") { return }
            throw ConfigError(
                .missingInclude, "included file \(path) does not exist", at: location,
                hint: "create it or remove it from [INCLUDES]")
        }
        try expand(path, into: &out, stack: &stack)
    }

    // MARK: Queries

    /// Whether `section` exists (DEFAULT always does).
    func hasSection(_ section: String) -> Bool {
        section == Self.defaultSection || history[section] != nil
    }

    /// Option names defined directly in `section` (without DEFAULT), in first-seen order.
    func options(in section: String) -> [String] { optionOrder[section] ?? [] }

    /// The values `option` was given in `section`, oldest first (empty when never set there).
    func values(section: String, option: String) -> [RawValue] { history[section]?[option] ?? [] }

    /// fail2ban's `known/` snapshot of `section`: the value `option` had before the last file that contains the
    /// section was read; nil when only one file contains the section or the option was not set before it.
    func knownSnapshot(section: String, option: String) -> (value: RawValue, index: Int)? {
        guard let sectionTouches = touches[section], sectionTouches.count >= 2, let last = sectionTouches.last,
            let optionLayers = layers[section]?[option], let values = history[section]?[option]
        else { return nil }
        guard let index = optionLayers.lastIndex(where: { $0 < last }) else { return nil }
        return (values[index], index)
    }

    /// Whether more than one file contains `section` (fail2ban then keeps a `known/` snapshot of it).
    func hasKnownSnapshot(_ section: String) -> Bool { (touches[section]?.count ?? 0) >= 2 }

    /// The current raw value of `option` in `section` only.
    func raw(section: String, option: String) -> RawValue? { history[section]?[option]?.last }

    /// The section whose name matches `name` exactly, or ignoring case, or DEFAULT for "default".
    func findSection(_ name: String) -> String? {
        if hasSection(name) { return name }
        if name.lowercased() == "default" { return Self.defaultSection }
        let lower = name.lowercased()
        return sectionOrder.first { $0.lowercased() == lower }
    }
}
