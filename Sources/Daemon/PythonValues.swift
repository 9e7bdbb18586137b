import Configuration
import Control
import Core

/// Reads control-socket arguments the way fail2ban-server does, so replies (and refusals) are fail2ban's:
/// `int()` for counts, `MyTime.str2seconds` for times, `_as_bool` for switches. Numbers are range-checked here,
/// where they come in (``Core/Bounds``).
enum PythonValues {
    /// Python's `int(text)`: optional sign, digits (underscores between them), surrounding white space.
    /// Refused like Python (`invalid literal for int() with base 10: 'abc'`), or when beyond ±`Bounds.maximumCount`.
    static func int(_ text: String) -> Result<Int, ControlError> {
        let trimmed = trim(text)
        var digits = Substring(trimmed)
        var negative = false
        if let sign = digits.first, sign == "+" || sign == "-" {
            negative = sign == "-"
            digits = digits.dropFirst()
        }
        let valid =
            !digits.isEmpty && digits.first != "_" && digits.last != "_" && !digits.contains("__")
            && digits.allSatisfy { ($0.isASCII && $0.isNumber) || $0 == "_" }
        guard valid else {
            return .failure(
                ControlError(.invalidArgument, "invalid literal for int() with base 10: \(PythonRepr.quote(text))"))
        }
        let plain = digits.filter { $0 != "_" }.drop { $0 == "0" }
        guard plain.count <= 10, let magnitude = Int(plain.isEmpty ? "0" : String(plain)),
            magnitude <= Bounds.maximumCount
        else {
            return .failure(
                ControlError(.invalidArgument, "\(text) is out of range: at most \(Bounds.maximumCount) in magnitude"))
        }
        return .success(negative ? -magnitude : magnitude)
    }

    /// fail2ban's `str2seconds`: `600`, `10m`, `1h30m`, `1.5h`, `1mo`, `-1`. The value is an int unless the text
    /// has a fraction or a month/year unit (Python computes those in floats). Text fail2ban could not evaluate
    /// gets the error Python's `eval` gives it for the common cases (`name 'abc' is not defined`).
    static func seconds(_ text: String) -> Result<(seconds: Double, value: ControlValue), ControlError> {
        let span: TimeSpan
        do {
            span = try TimeSpan.parse(text)
        } catch {
            let word = trim(text)
            if let first = word.unicodeScalars.first, first == "_" || first.properties.isAlphabetic,
                word.unicodeScalars.allSatisfy({ $0 == "_" || $0.properties.isAlphabetic || ("0"..."9").contains($0) })
            {
                return .failure(ControlError(.nameError, "name \(PythonRepr.quote(word)) is not defined"))
            }
            if error.message.contains("10^12") || error.message.lowercased().contains("longer") {
                return .failure(ControlError(.invalidArgument, error.message))
            }
            return .failure(ControlError(.syntaxError, "invalid syntax (<string>, line 1)"))
        }
        let seconds = span.seconds
        return .success((seconds, isFloat(text) ? .double(seconds) : .int(Int(saturating: seconds))))
    }

    /// A time value as fail2ban replies with it for `bantime` (always an int).
    static func wholeSeconds(_ text: String) -> Result<(seconds: Double, value: ControlValue), ControlError> {
        seconds(text).map { (Double(Int(saturating: $0.seconds)), .int(Int(saturating: $0.seconds))) }
    }

    /// True when Python's evaluation of the time text gives a float: a fraction, or months and years
    /// (fail2ban multiplies those by float constants).
    static func isFloat(_ text: String) -> Bool {
        if text.contains(".") { return true }
        let floatUnits: Set<String> = ["mo", "mon", "month", "months", "y", "ye", "yea", "year", "years"]
        var word = ""
        for c in text.lowercased() + " " {
            if c.isLetter {
                word.append(c)
            } else {
                if floatUnits.contains(word) { return true }
                word = ""
            }
        }
        return false
    }

    /// `text` without leading and trailing white space (Python's `str.strip()` for ASCII).
    static func trim(_ text: String) -> String {
        let space: Set<Character> = [" ", "\t", "\n", "\r", "\u{0B}", "\u{0C}"]
        return String(text.drop { space.contains($0) }.reversed().drop { space.contains($0) }.reversed())
    }

    /// fail2ban's `_as_bool`: true for `1`, `on`, `true`, `yes` (any case), false for anything else.
    static func bool(_ text: String) -> Bool {
        ["1", "on", "true", "yes"].contains(text.lowercased())
    }
}
