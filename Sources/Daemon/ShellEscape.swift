/// Shell quoting for values substituted into action commands: every value becomes one single-quoted word, so log
/// text (user names, matched lines) can never run as shell code. fail2ban's CVE-2021-32749 was the lack of this.
///
/// ```swift
/// ShellEscape.quote("x'; rm -rf / #")   // 'x'\''; rm -rf / #'
/// ```
public enum ShellEscape {
    /// Returns `value` as one single-quoted shell word.
    public static func quote(_ value: String) -> String {
        if !value.isEmpty, value.utf8.allSatisfy(isSafe) { return value }
        return "'" + value.replacing("'", with: "'\\''") + "'"
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
}
