/// A failure's captured fields while it is being built: a handful of (name, value) pairs searched linearly,
/// which is cheaper than hashing for the few fields a regex has. Becomes a `[String: String]` in `Failure`.
struct FieldSet {
    private(set) var items: [(name: String, value: String)] = []

    init() { items.reserveCapacity(8) }

    subscript(name: String) -> String? {
        get {
            for item in items where item.name == name { return item.value }
            return nil
        }
        set {
            if let i = items.firstIndex(where: { $0.name == name }) {
                if let newValue { items[i].value = newValue } else { items.remove(at: i) }
            } else if let newValue {
                items.append((name, newValue))
            }
        }
    }

    /// Sets every field of `other`, replacing values of the same name.
    mutating func merge(_ other: FieldSet) {
        for (name, value) in other.items { self[name] = value }
    }

    /// The fields as a dictionary.
    var dictionary: [String: String] {
        var d = [String: String](minimumCapacity: items.count)
        for (name, value) in items { d[name] = value }
        return d
    }
}
