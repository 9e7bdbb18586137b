import Configuration
import Control
import Core
import Daemon
import Filter

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// The fuzz targets: one entry per parser that reads attacker- or operator-written text. Each takes arbitrary
/// bytes, runs the code under test and checks its invariants; a broken invariant is a crash (`FuzzTargets.fail`),
/// which is what libFuzzer reports. Built twice: into `portcullis-fuzz` with `-sanitize=fuzzer` by
/// `scripts/fuzz.sh`, and normally, where `FuzzRegressionTests` replays every file of `fuzz/corpus/<target>`.
///
/// ```swift
/// FuzzTargets.run("pickle", Array("\u{80}\u{2}]q\u{0}.".utf8))
/// ```
public enum FuzzTargets {
    /// The target names, in the order `scripts/fuzz.sh` runs them.
    public static let names = ["ini", "date", "line", "tags", "pickle", "json", "address"]

    /// Builds target `name`'s shared state (the line target compiles every filter, seconds of work), so that it
    /// happens before the first input and never counts against libFuzzer's per-input timeout.
    public static func prepare(_ name: String) {
        switch name {
        case "ini": _ = IniTarget.shared
        case "date": _ = DateTarget.detectors
        case "line": _ = LineTarget.shared
        case "tags": _ = (TagsTarget.shared, TagsTarget.hostileShapes)
        default: break
        }
    }

    /// Runs target `name` on `data`. Returns false for an unknown name.
    @discardableResult
    public static func run(_ name: String, _ data: UnsafeRawBufferPointer) -> Bool {
        switch name {
        case "ini": IniTarget.shared.run(data)
        case "date": DateTarget.run(data)
        case "line": LineTarget.shared.run(data)
        case "tags": TagsTarget.shared.run(data)
        case "pickle": PickleTarget.run(data)
        case "json": JSONTarget.run(data)
        case "address": AddressTarget.run(data)
        default: return false
        }
        return true
    }

    /// Runs target `name` on `bytes`.
    @discardableResult
    public static func run(_ name: String, _ bytes: [UInt8]) -> Bool {
        bytes.withUnsafeBytes { run(name, $0) }
    }

    /// Reports a broken invariant and aborts, so the fuzzer keeps the input.
    static func fail(_ target: String, _ message: String) -> Never {
        let text = "fuzz target \(target): invariant broken: \(message)\n"
        let bytes = Array(text.utf8)
        _ = bytes.withUnsafeBytes { write(2, $0.baseAddress, $0.count) }
        abort()
    }

    /// Where the repository's `config/` is (`PORTCULLIS_CONFIG`, default `config` in the working directory).
    static var ownConfig: String {
        if let value = getenv("PORTCULLIS_CONFIG") { return String(cString: value) }
        return "config"
    }

    /// Where fail2ban's stock configuration is (`FAIL2BAN_CONFIG`, default `/etc/fail2ban`).
    static var stockConfig: String {
        if let value = getenv("FAIL2BAN_CONFIG") { return String(cString: value) }
        return "/etc/fail2ban"
    }
}

/// Splits `data` at NUL bytes into at most `limit` parts (the last part keeps any further NULs).
func splitParts(_ data: UnsafeRawBufferPointer, limit: Int) -> [[UInt8]] {
    var parts: [[UInt8]] = [[]]
    for byte in data {
        if byte == 0, parts.count < limit {
            parts.append([])
        } else {
            parts[parts.count - 1].append(byte)
        }
    }
    return parts
}

/// Whether `needle` occurs in `haystack`.
func contains(_ haystack: [UInt8], _ needle: [UInt8]) -> Bool {
    guard !needle.isEmpty else { return true }
    guard haystack.count >= needle.count else { return false }
    for start in 0...(haystack.count - needle.count) where haystack[start] == needle[0] {
        if haystack[start..<(start + needle.count)].elementsEqual(needle) { return true }
    }
    return false
}
