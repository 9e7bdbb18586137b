/// Renders control values the way Python's `str()` prints them, which is what fail2ban-client shows for replies
/// it has no special format for (`banned`, numbers, `None`).
///
/// ```swift
/// PythonRepr.str([["sshd": ["192.0.2.1"]]])   // "[{'sshd': ['192.0.2.1']}]"
/// PythonRepr.str(.null)                       // "None"
/// ```
public enum PythonRepr {
    /// Python `str(value)`: strings unquoted, everything else as `repr`.
    public static func str(_ value: ControlValue) -> String {
        if case .string(let s) = value { return s }
        return render(value)
    }

    /// Python `repr(value)`.
    public static func render(_ value: ControlValue) -> String {
        switch value {
        case .string(let s): return quote(s)
        case .int(let i): return String(i)
        case .double(let d): return float(d)
        case .bool(let b): return b ? "True" : "False"
        case .null: return "None"
        case .list(let items): return "[" + items.map(render).joined(separator: ", ") + "]"
        case .tuple(let items):
            if items.count == 1 { return "(" + render(items[0]) + ",)" }
            return "(" + items.map(render).joined(separator: ", ") + ")"
        case .dict(let pairs):
            return "{" + pairs.map { render($0.key) + ": " + render($0.value) }.joined(separator: ", ") + "}"
        }
    }

    /// Python's repr of a float (`1.0`, `0.5`, `1e-05`, `inf`, `nan`).
    public static func float(_ d: Double) -> String {
        if d.isNaN { return "nan" }
        if d.isInfinite { return d < 0 ? "-inf" : "inf" }
        return d.description
    }

    /// Python's repr of a string: single quotes unless the text has a single quote and no double quote.
    public static func quote(_ s: String) -> String {
        let q: Character = s.contains("'") && !s.contains("\"") ? "\"" : "'"
        var out = String(q)
        for scalar in s.unicodeScalars {
            switch scalar {
            case "\\": out += "\\\\"
            case "\n": out += "\\n"
            case "\r": out += "\\r"
            case "\t": out += "\\t"
            default:
                if Character(scalar) == q {
                    out += "\\" + String(q)
                } else if scalar.value < 0x20 || (0x7F...0xA0).contains(scalar.value) || scalar.value == 0xAD {
                    out += "\\x" + hex(scalar.value, width: 2)
                } else if isNonPrintable(scalar) {
                    out +=
                        scalar.value > 0xFFFF
                        ? "\\U" + hex(scalar.value, width: 8) : "\\u" + hex(scalar.value, width: 4)
                } else {
                    out.unicodeScalars.append(scalar)
                }
            }
        }
        out.append(q)
        return out
    }

    private static func isNonPrintable(_ scalar: Unicode.Scalar) -> Bool {
        switch scalar.properties.generalCategory {
        case .control, .format, .surrogate, .privateUse, .unassigned, .lineSeparator, .paragraphSeparator:
            return true
        case .spaceSeparator:
            return scalar != " "
        default:
            return false
        }
    }

    private static func hex(_ v: UInt32, width: Int) -> String {
        let digits = String(v, radix: 16)
        return String(repeating: "0", count: max(0, width - digits.count)) + digits
    }
}
