/// Which values may be written into an action's script as they are.
///
/// Only trusted values (addresses, numbers, names from the configuration) are ever written into a script, and
/// only when every byte is plain — letters, digits and `. : / - _ , @ + =`, none of which means anything to the
/// shell in any context. Everything else is passed as a parameter (see `ActionScript`).
///
/// ```swift
/// ShellEscape.isPlain("192.0.2.1")   // true
/// ShellEscape.isPlain("a b")         // false
/// ```
public enum ShellEscape {
    /// True when `value` is non-empty and made of plain bytes only.
    public static func isPlain(_ value: String) -> Bool {
        !value.isEmpty && value.utf8.allSatisfy(isSafe)
    }

    static func isSafe(_ c: UInt8) -> Bool {
        switch c {
        case UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "A")...UInt8(ascii: "Z"),
            UInt8(ascii: "0")...UInt8(ascii: "9"):
            return true
        case UInt8(ascii: "."), UInt8(ascii: ":"), UInt8(ascii: "/"), UInt8(ascii: "-"), UInt8(ascii: "_"),
            UInt8(ascii: ","), UInt8(ascii: "@"), UInt8(ascii: "+"), UInt8(ascii: "="):
            return true
        default:
            return false
        }
    }

    /// A byte of an `<F-NAME>` tag's name (fail2ban's `[A-Z0-9_\-]`).
    static func isCaptureNameByte(_ c: UInt8) -> Bool {
        (c >= UInt8(ascii: "A") && c <= UInt8(ascii: "Z")) || (c >= UInt8(ascii: "0") && c <= UInt8(ascii: "9"))
            || c == UInt8(ascii: "_") || c == UInt8(ascii: "-")
    }
}
