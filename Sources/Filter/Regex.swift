internal import CPCRE2
import Synchronization

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// An error raised when a pattern does not compile.
public struct PatternError: Error, CustomStringConvertible, Sendable {
    /// The pattern that failed, as given to PCRE2.
    public var pattern: String
    /// Byte offset in `pattern` where PCRE2 stopped.
    public var offset: Int
    /// PCRE2's message.
    public var message: String

    public var description: String { "\(message) at offset \(offset) in \(pattern)" }
}

/// A compiled, JIT-optimised PCRE2 pattern. Immutable and shareable between threads.
///
/// ```swift
/// let p = try Pattern(#"from (?<ip>\d+\.\d+\.\d+\.\d+)"#)
/// let m = p.makeMatcher()
/// "from 192.0.2.1".utf8.withContiguousStorageIfAvailable { m.matches($0) }
/// ```
public final class Pattern: @unchecked Sendable {
    // SAFETY: the compiled code is never mutated after init; PCRE2 documents it as thread-safe for matching.
    let code: OpaquePointer
    /// The same pattern compiled without UTF and UCP, for subjects that are all ASCII (nil when the pattern is not
    /// all ASCII itself, or asks for UTF or UCP in its text). On ASCII text both compile to the same matches —
    /// `\s`, `\w`, `\d`, `\b`, classes and caseless letters agree on ASCII characters — and the 8-bit code
    /// skips UTF-8 decoding. Compiled on first use (most patterns — date templates never tried — never need it).
    var asciiCode: OpaquePointer? {
        let state = twin.load(ordering: .acquiring)
        if state == Self.noTwin { return nil }
        if state != Self.twinUnknown { return OpaquePointer(bitPattern: state) }
        let made = Pattern.asciiTwin(source, options: options, jit: isJIT)
        let value = made.map { UInt(bitPattern: $0) } ?? Self.noTwin
        let (exchanged, current) = twin.compareExchange(
            expected: Self.twinUnknown, desired: value, ordering: .acquiringAndReleasing)
        if !exchanged, let made { pcre2_code_free_8(made) }  // another thread made it first
        let result = exchanged ? value : current
        return result == Self.noTwin ? nil : OpaquePointer(bitPattern: result)
    }
    /// `asciiCode`'s state: `twinUnknown`, `noTwin`, or the compiled code's address.
    private let twin = Atomic<UInt>(0)
    private static let twinUnknown: UInt = 0
    private static let noTwin: UInt = 1
    private let options: Options
    /// The source the pattern was compiled from.
    public let source: String
    /// Number of capturing groups.
    public let captureCount: Int
    /// Named groups: name → group numbers (several when names are duplicated).
    public let names: [String: [Int]]
    /// True when JIT compilation succeeded.
    public let isJIT: Bool
    /// True when the pattern can only match at the start of the subject (PCRE2 found it anchored).
    public let isAnchored: Bool

    /// Compile options.
    public struct Options: OptionSet, Sendable {
        public let rawValue: UInt32
        public init(rawValue: UInt32) { self.rawValue = rawValue }
        public static let caseless = Options(rawValue: PCRE2_CASELESS)
        public static let multiline = Options(rawValue: PCRE2_MULTILINE)
        public static let dotAll = Options(rawValue: PCRE2_DOTALL)
        public static let anchored = Options(rawValue: PCRE2_ANCHORED)
        public static let dupNames = Options(rawValue: PCRE2_DUPNAMES)
        public static let ucp = Options(rawValue: PCRE2_UCP)
        /// UTF-8 mode that tolerates invalid sequences in subjects (they never match `.` or literals).
        public static let utf = Options(rawValue: PCRE2_UTF | PCRE2_MATCH_INVALID_UTF)
    }

    /// Compiles `source`. Throws `PatternError` with PCRE2's message and offset.
    public init(_ source: String, options: Options = [.utf]) throws(PatternError) {
        var errorCode: Int32 = 0
        var errorOffset: Int = 0
        let compiled: OpaquePointer? = source.withCString { cstr in
            cstr.withMemoryRebound(to: UInt8.self, capacity: source.utf8.count) { p in
                pcre2_compile_8(p, source.utf8.count, options.rawValue, &errorCode, &errorOffset, nil)
            }
        }
        guard let compiled else {
            var buffer = [UInt8](repeating: 0, count: 256)
            let n = pcre2_get_error_message_8(errorCode, &buffer, buffer.count)
            let message = n > 0 ? String(decoding: buffer[0..<Int(n)], as: UTF8.self) : "error \(errorCode)"
            throw PatternError(pattern: source, offset: errorOffset, message: message)
        }
        self.code = compiled
        self.source = source
        self.isJIT = pcre2_jit_compile_8(compiled, UInt32(PCRE2_JIT_COMPLETE)) == 0
        self.options = options

        var allOptions: UInt32 = 0
        pcre2_pattern_info_8(compiled, UInt32(PCRE2_INFO_ALLOPTIONS), &allOptions)
        self.isAnchored = allOptions & PCRE2_ANCHORED != 0

        var count: UInt32 = 0
        pcre2_pattern_info_8(compiled, UInt32(PCRE2_INFO_CAPTURECOUNT), &count)
        self.captureCount = Int(count)

        var nameCount: UInt32 = 0
        var entrySize: UInt32 = 0
        var table: UnsafePointer<UInt8>? = nil
        pcre2_pattern_info_8(compiled, UInt32(PCRE2_INFO_NAMECOUNT), &nameCount)
        pcre2_pattern_info_8(compiled, UInt32(PCRE2_INFO_NAMEENTRYSIZE), &entrySize)
        pcre2_pattern_info_8(compiled, UInt32(PCRE2_INFO_NAMETABLE), &table)
        var names: [String: [Int]] = [:]
        if let table, nameCount > 0 {
            for i in 0..<Int(nameCount) {
                let entry = table + i * Int(entrySize)
                let group = Int(entry[0]) << 8 | Int(entry[1])
                var end = 2
                while end < Int(entrySize), entry[end] != 0 { end += 1 }
                let name = String(decoding: UnsafeBufferPointer(start: entry + 2, count: end - 2), as: UTF8.self)
                names[name, default: []].append(group)
            }
        }
        self.names = names
    }

    deinit {
        pcre2_code_free_8(code)
        let state = twin.load(ordering: .acquiring)
        if state != Self.twinUnknown, state != Self.noTwin, let code = OpaquePointer(bitPattern: state) {
            pcre2_code_free_8(code)
        }
    }

    /// Compiles the ASCII twin of a UTF pattern (see `asciiCode`); nil when there is none to make.
    private static func asciiTwin(_ source: String, options: Options, jit: Bool) -> OpaquePointer? {
        let unicode = UInt32(PCRE2_UTF | PCRE2_UCP | PCRE2_MATCH_INVALID_UTF)
        guard jit, options.rawValue & UInt32(PCRE2_UTF) != 0, source.utf8.allSatisfy({ $0 < 0x80 }),
            !source.contains("(*UTF"), !source.contains("(*UCP")
        else { return nil }
        var errorCode: Int32 = 0
        var errorOffset: Int = 0
        let twin: OpaquePointer? = source.withCString { cstr in
            cstr.withMemoryRebound(to: UInt8.self, capacity: source.utf8.count) { p in
                pcre2_compile_8(p, source.utf8.count, options.rawValue & ~unicode, &errorCode, &errorOffset, nil)
            }
        }
        guard let twin else { return nil }
        guard pcre2_jit_compile_8(twin, UInt32(PCRE2_JIT_COMPLETE)) == 0 else {
            pcre2_code_free_8(twin)
            return nil
        }
        return twin
    }

    /// Creates per-thread match state. Create once per worker, not per line.
    public func makeMatcher() -> Matcher { Matcher(pattern: self) }
}

/// Per-worker match state for one `Pattern`: holds PCRE2 match data and the last match's offsets.
///
/// Not thread-safe; create one per worker with `Pattern.makeMatcher()`.
public final class Matcher {
    /// The pattern this matcher runs.
    public let pattern: Pattern
    private let matchData: OpaquePointer
    private let ovector: UnsafeMutablePointer<Int>
    private let groupSlots: Int
    private let context: OpaquePointer?

    /// Largest JIT stack. PCRE2's default (32 KiB) runs out on lines of a few KiB that make a regex backtrack (a
    /// user name of 4,000 `a `: the stock sshd filter fails with "JIT stack limit reached" where fail2ban matches and
    /// bans). The stock sshd filter needs 1 MiB on a 64 KiB line (the longest read); twice that here. It starts at
    /// 32 KiB and grows only as deep as a match goes. One stack per thread (``JITStacks``), not per matcher.
    static let jitStackMaximum = 2 << 20
    /// The result code of the last failed match when it was an error (not a plain no-match), else 0.
    // Unchecked exclusivity: written once per match on a per-worker object; the check cost a runtime call.
    @exclusivity(unchecked) public private(set) var lastError: Int32 = 0

    init(pattern: Pattern) {
        self.pattern = pattern
        self.matchData = pcre2_match_data_create_from_pattern_8(pattern.code, nil)
        self.ovector = pcre2_get_ovector_pointer_8(matchData)
        self.groupSlots = Int(pcre2_get_ovector_count_8(matchData))
        let ctx = pcre2_match_context_create_8(nil)
        // Bound the work an attacker-controlled line can cause.
        pcre2_set_match_limit_8(ctx, 1_000_000)
        pcre2_set_depth_limit_8(ctx, 10_000)
        self.context = ctx
        if pattern.isJIT { pcre2_jit_stack_assign_8(ctx, { _ in JITStacks.current() }, nil) }
    }

    deinit {
        pcre2_match_data_free_8(matchData)
        pcre2_match_context_free_8(context)
    }

    /// Searches `subject` from `start`. Returns true on a match; offsets are then available via `range(_:)`.
    /// A PCRE2 error (match limit, …) counts as no match and is kept in `lastError`.
    @inlinable
    public func matches(_ subject: UnsafeBufferPointer<UInt8>, from start: Int = 0, anchored: Bool = false) -> Bool {
        _match(subject, start: start, options: anchored ? Self.anchoredOption : 0)
    }

    /// `PCRE2_ANCHORED`, for the inlinable entry points (CPCRE2 is imported `internal`: no C name leaks out).
    @usableFromInline static let anchoredOption = UInt32(PCRE2_ANCHORED)

    /// Convenience for raw buffers.
    @inlinable
    public func matches(_ subject: UnsafeRawBufferPointer, from start: Int = 0, anchored: Bool = false) -> Bool {
        _match(subject.bindMemory(to: UInt8.self), start: start, options: anchored ? Self.anchoredOption : 0)
    }

    /// Searches `subject` from its start, skipping PCRE2's UTF-8 validity check: only for subjects that are valid
    /// UTF-8 by construction (the engine's work buffer, where invalid bytes were already replaced by U+FFFD).
    /// `ascii`: the subject is all ASCII (the pattern's 8-bit twin then runs, when it has one).
    @inline(__always)
    func matches(validUTF8 subject: UnsafeBufferPointer<UInt8>, ascii: Bool = false) -> Bool {
        if ascii, let twin = pattern.asciiCode { return _match(twin, subject, start: 0, options: 0) }
        return _match(subject, start: 0, options: UInt32(PCRE2_NO_UTF_CHECK))
    }

    /// Searches an all-ASCII `subject` from `start` (the 8-bit twin when the pattern has one).
    @inline(__always)
    func matches(ascii subject: UnsafeBufferPointer<UInt8>, from start: Int) -> Bool {
        _match(pattern.asciiCode ?? pattern.code, subject, start: start, options: 0)
    }

    @inline(__always)
    private func _match(
        _ code: OpaquePointer, _ subject: UnsafeBufferPointer<UInt8>, start: Int, options: UInt32
    )
        -> Bool
    {
        let base = subject.baseAddress ?? UnsafePointer(bitPattern: 1)!
        let rc = pcre2_match_8(code, base, subject.count, start, options, matchData, context)
        if rc >= 0 {
            lastError = 0
            return true
        }
        lastError = rc == PCRE2_ERROR_NOMATCH ? 0 : rc
        return false
    }

    /// Convenience for strings (cold paths and tests only).
    public func matches(_ subject: String) -> Bool {
        var s = subject
        return s.withUTF8 { matches($0) }
    }

    @usableFromInline
    func _match(_ subject: UnsafeBufferPointer<UInt8>, start: Int, options: UInt32) -> Bool {
        // An empty buffer may have a nil base; give PCRE2 a valid pointer.
        let base = subject.baseAddress ?? UnsafePointer(bitPattern: 1)!
        let rc = pcre2_match_8(pattern.code, base, subject.count, start, options, matchData, context)
        if rc >= 0 {
            lastError = 0
            return true
        }
        lastError = rc == PCRE2_ERROR_NOMATCH ? 0 : rc
        return false
    }

    /// Byte range of group `n` (0 = whole match) in the last successful match, or nil when unset.
    @inlinable
    public func range(_ group: Int) -> Range<Int>? {
        _range(group)
    }

    @usableFromInline
    func _range(_ group: Int) -> Range<Int>? {
        guard group < groupSlots else { return nil }
        let s = ovector[2 * group]
        let e = ovector[2 * group + 1]
        if s == cpcre2_unset() || e < s { return nil }
        return s..<e
    }

    /// Range of the first set group carrying `name` (duplicate names allowed).
    public func range(named name: String) -> Range<Int>? {
        guard let groups = pattern.names[name] else { return nil }
        for g in groups { if let r = _range(g) { return r } }
        return nil
    }

    /// Human-readable message for a PCRE2 error code.
    public static func message(for code: Int32) -> String {
        var buffer = [UInt8](repeating: 0, count: 256)
        let n = pcre2_get_error_message_8(code, &buffer, buffer.count)
        return n > 0 ? String(decoding: buffer[0..<Int(n)], as: UTF8.self) : "error \(code)"
    }
}

/// The JIT stacks: one per thread, made on the thread's first JIT match and freed when the thread exits, shared by
/// every matcher that runs there (a match runs to its end on one thread, and matches never nest). A stack per
/// matcher reserved 2 MiB of address space for each of a filter's dozens of patterns and mapped and unmapped it
/// with every processor made.
enum JITStacks {
    /// The thread-local slot; nil only if the process ran out of keys (matches then use PCRE2's 32 KiB default).
    private static let key: pthread_key_t? = {
        var key = pthread_key_t()
        let made = pthread_key_create(&key) { stack in
            if let stack { pcre2_jit_stack_free_8(OpaquePointer(stack)) }
        }
        return made == 0 ? key : nil
    }()

    /// This thread's stack, made on first use; nil (PCRE2's default stack) when it cannot be made.
    static func current() -> OpaquePointer? {
        guard let key else { return nil }
        if let stack = pthread_getspecific(key) { return OpaquePointer(stack) }
        guard let stack = pcre2_jit_stack_create_8(32 * 1024, Matcher.jitStackMaximum, nil) else { return nil }
        guard pthread_setspecific(key, UnsafeRawPointer(stack)) == 0 else {
            pcre2_jit_stack_free_8(stack)
            return nil
        }
        return stack
    }
}
