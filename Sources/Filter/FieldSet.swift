/// A failure's captured fields while it is being built: a handful of (name, value) pairs searched linearly,
/// which is cheaper than hashing for the few fields a regex has. Becomes a `[String: String]` in `Failure`.
struct FieldSet {
    /// One field. A struct rather than a tuple: arrays of it are copied and destroyed by specialised code, not by
    /// the runtime's generic tuple witnesses.
    struct Field {
        var name: String
        var value: String
    }

    private(set) var items: [Field] = []

    init() { items.reserveCapacity(8) }

    /// Names are short and mostly of different lengths: comparing the lengths first skips most string compares.
    @inline(__always)
    private static func same(_ a: String, _ b: String) -> Bool { a.utf8.count == b.utf8.count && a == b }

    subscript(name: String) -> String? {
        get {
            for item in items where Self.same(item.name, name) { return item.value }
            return nil
        }
        set {
            if let i = items.firstIndex(where: { Self.same($0.name, name) }) {
                if let newValue { items[i].value = newValue } else { items.remove(at: i) }
            } else if let newValue {
                items.append(Field(name: name, value: newValue))
            }
        }
    }

    /// Sets every field of `other`, replacing values of the same name.
    mutating func merge(_ other: FieldSet) {
        for field in other.items { self[field.name] = field.value }
    }

    /// The fields as a dictionary.
    var dictionary: [String: String] {
        var d = [String: String](minimumCapacity: items.count)
        for field in items { d[field.name] = field.value }
        return d
    }
}
