import Core

/// The harness's JSON values are ``Core/JSON`` (objects keep their key order, which names filter variants).
typealias JSONValue = JSON

extension JSON {
    /// Truthiness as Python sees it (`if faildata.get('match')`).
    var isTruthy: Bool {
        switch self {
        case .null: return false
        case .bool(let b): return b
        case .int(let n): return n != 0
        case .double(let n): return n != 0
        case .string(let s): return !s.isEmpty
        case .array(let a): return !a.isEmpty
        case .object(let o): return !o.isEmpty
        }
    }
}
