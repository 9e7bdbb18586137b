#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// Builds the text line a journal entry is matched as, the way fail2ban's systemd backend presents it:
///
///     <ISO-8601 local time with offset> [<_HOSTNAME> ][<ident>[<pid>]: ]<MESSAGE>
///
/// - time: `_SOURCE_REALTIME_TIMESTAMP`, else the entry's realtime; microseconds only when non-zero
///   (`2023-11-14T22:13:20+00:00`, `2023-11-14T22:13:23.123456+00:00`). The offset is the local zone's offset
///   at that instant; fail2ban 1.0.2 uses the offset in force now, so across a DST change the two texts differ
///   but name the same instant;
/// - ident: `SYSLOG_IDENTIFIER`, else `_COMM`; pid: `SYSLOG_PID`, else `_PID`, shown only with an ident;
/// - the kernel without a pid gets its monotonic time: `kernel: [    5.000000] message`;
/// - several `MESSAGE` values are joined with a space;
/// - a newline in any field is written as the two characters `\n`, as fail2ban does: an entry is one line, and a
///   message can never pass for several lines (where a forged second line could name another address);
/// - a line that would be longer than `maxLineLength` is not built: `tooLongLength` holds its length (at least)
///   and the entry must be skipped, never matched from a prefix.
///
/// Fields are copied as they are enumerated into reusable buffers: no allocation per entry once warm.
struct JournalLineFormatter {
    var maxLineLength: Int
    private(set) var line: [UInt8] = []
    private var hostname: [UInt8] = []
    private var identifier: [UInt8] = []
    private var command: [UInt8] = []
    private var syslogPID: [UInt8] = []
    private var pid: [UInt8] = []
    private var message: [UInt8] = []
    private var messageCount = 0
    /// Bytes of the MESSAGE values, including those not copied because the line is too long anyway.
    private var messageLength = 0
    /// Set by `compose` when the line would exceed `maxLineLength`: its length (`line` is then not valid).
    private(set) var tooLongLength: Int?
    private var sourceRealtime: UInt64?
    private var sourceMonotonic: UInt64?

    init(maxLineLength: Int) {
        self.maxLineLength = maxLineLength
        line.reserveCapacity(maxLineLength + 64)
        message.reserveCapacity(maxLineLength)
    }

    mutating func reset() {
        hostname.removeAll(keepingCapacity: true)
        identifier.removeAll(keepingCapacity: true)
        command.removeAll(keepingCapacity: true)
        syslogPID.removeAll(keepingCapacity: true)
        pid.removeAll(keepingCapacity: true)
        message.removeAll(keepingCapacity: true)
        messageCount = 0
        messageLength = 0
        tooLongLength = nil
        sourceRealtime = nil
        sourceMonotonic = nil
    }

    /// Takes one `FIELD=value` item of the entry.
    mutating func take(field data: UnsafeRawBufferPointer) {
        guard let eq = data.firstIndex(of: 0x3D) else { return }
        let name = UnsafeRawBufferPointer(rebasing: data[0..<eq])
        let value = UnsafeRawBufferPointer(rebasing: data[(eq + 1)...])
        switch name.count {
        case 7 where Self.equal(name, "MESSAGE"):
            let separator = messageCount > 0 ? 1 : 0
            messageCount += 1
            messageLength += separator + value.count + Self.newlines(in: value)
            // Past the limit the entry is skipped whole: stop copying (memory stays bounded).
            guard messageLength <= maxLineLength else { return }
            if separator == 1 { message.append(0x20) }
            Self.appendEscaped(value, to: &message)
        case 9 where Self.equal(name, "_HOSTNAME"):
            Self.appendEscaped(UnsafeRawBufferPointer(rebasing: value.prefix(255)), to: &hostname)
        case 17 where Self.equal(name, "SYSLOG_IDENTIFIER"):
            Self.appendEscaped(UnsafeRawBufferPointer(rebasing: value.prefix(255)), to: &identifier)
        case 5 where Self.equal(name, "_COMM"):
            Self.appendEscaped(UnsafeRawBufferPointer(rebasing: value.prefix(255)), to: &command)
        case 10 where Self.equal(name, "SYSLOG_PID"):
            Self.appendEscaped(UnsafeRawBufferPointer(rebasing: value.prefix(32)), to: &syslogPID)
        case 4 where Self.equal(name, "_PID"):
            Self.appendEscaped(UnsafeRawBufferPointer(rebasing: value.prefix(32)), to: &pid)
        case 26 where Self.equal(name, "_SOURCE_REALTIME_TIMESTAMP"):
            sourceRealtime = Self.number(value)
        case 27 where Self.equal(name, "_SOURCE_MONOTONIC_TIMESTAMP"):
            sourceMonotonic = Self.number(value)
        default:
            break
        }
    }

    /// Composes `line` from the fields taken; returns the timestamp used (µs since the epoch).
    mutating func compose(entryRealtime: UInt64, entryMonotonic: UInt64) -> UInt64 {
        let realtime = sourceRealtime ?? entryRealtime
        line.removeAll(keepingCapacity: true)
        appendTimestamp(realtime)
        line.append(0x20)
        if !hostname.isEmpty {
            line.append(contentsOf: hostname)
            line.append(0x20)
        }
        let ident = identifier.isEmpty ? command : identifier
        if !ident.isEmpty {
            line.append(contentsOf: ident)
            let thePID = syslogPID.isEmpty ? pid : syslogPID
            if !thePID.isEmpty {
                line.append(0x5B)
                line.append(contentsOf: thePID)
                line.append(0x5D)
                appendASCII(": ")
            } else if Self.equal(ident, "kernel") {
                appendASCII(": [")
                let mono = sourceMonotonic ?? entryMonotonic
                var digits = "\(mono / 1_000_000)." + Self.pad(mono % 1_000_000, 6)
                while digits.utf8.count < 12 { digits = " " + digits }
                appendASCII(digits)
                appendASCII("] ")
            } else {
                appendASCII(": ")
            }
        }
        if line.count + messageLength > maxLineLength {
            tooLongLength = line.count + messageLength
            line.removeAll(keepingCapacity: true)
            return realtime
        }
        line.append(contentsOf: message)
        return realtime
    }

    private mutating func appendASCII(_ s: StaticString) {
        s.withUTF8Buffer { line.append(contentsOf: $0) }
    }

    private mutating func appendASCII(_ s: String) {
        line.append(contentsOf: s.utf8)
    }

    /// `YYYY-MM-DDTHH:MM:SS[.ffffff]±HH:MM` in local time.
    private mutating func appendTimestamp(_ usec: UInt64) {
        var seconds = time_t(usec / 1_000_000)
        let micros = Int(usec % 1_000_000)
        var tm = Glibc.tm()
        localtime_r(&seconds, &tm)
        appendDigits(Int(tm.tm_year) + 1900, 4)
        line.append(0x2D)
        appendDigits(Int(tm.tm_mon) + 1, 2)
        line.append(0x2D)
        appendDigits(Int(tm.tm_mday), 2)
        line.append(0x54)
        appendDigits(Int(tm.tm_hour), 2)
        line.append(0x3A)
        appendDigits(Int(tm.tm_min), 2)
        line.append(0x3A)
        appendDigits(Int(tm.tm_sec), 2)
        if micros != 0 {
            line.append(0x2E)
            appendDigits(micros, 6)
        }
        var offset = Int(tm.tm_gmtoff)
        line.append(offset < 0 ? 0x2D : 0x2B)
        offset = abs(offset) / 60
        appendDigits(offset / 60, 2)
        line.append(0x3A)
        appendDigits(offset % 60, 2)
    }

    private mutating func appendDigits(_ value: Int, _ width: Int) {
        var v = max(0, value)
        var buf: (UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8) = (48, 48, 48, 48, 48, 48, 48, 48)
        withUnsafeMutableBytes(of: &buf) { raw in
            var i = 7
            repeat {
                raw[i] = UInt8(48 + v % 10)
                v /= 10
                i -= 1
            } while v > 0 && i >= 0
            let digits = max(width, 7 - i)
            line.append(contentsOf: raw[(8 - min(8, digits))...])
        }
    }

    private static func pad(_ value: UInt64, _ width: Int) -> String {
        var s = String(value)
        while s.utf8.count < width { s = "0" + s }
        return s
    }

    private static func number(_ bytes: UnsafeRawBufferPointer) -> UInt64? {
        guard !bytes.isEmpty else { return nil }
        var v: UInt64 = 0
        for b in bytes {
            guard b >= 48 && b <= 57 else { return nil }
            let (m, o1) = v.multipliedReportingOverflow(by: 10)
            let (a, o2) = m.addingReportingOverflow(UInt64(b - 48))
            if o1 || o2 { return nil }
            v = a
        }
        return v
    }

    /// Appends `value` with each newline written as `\n` (fail2ban's `logline.replace('\n', '\\n')`).
    private static func appendEscaped(_ value: UnsafeRawBufferPointer, to buffer: inout [UInt8]) {
        guard value.contains(0x0A) else {
            buffer.append(contentsOf: value)
            return
        }
        for b in value {
            if b == 0x0A {
                buffer.append(0x5C)
                buffer.append(0x6E)
            } else {
                buffer.append(b)
            }
        }
    }

    private static func newlines(in value: UnsafeRawBufferPointer) -> Int {
        var n = 0
        for b in value where b == 0x0A { n += 1 }
        return n
    }

    private static func equal(_ bytes: UnsafeRawBufferPointer, _ s: StaticString) -> Bool {
        s.withUTF8Buffer { bytes.elementsEqual($0) }
    }

    private static func equal(_ bytes: [UInt8], _ s: StaticString) -> Bool {
        s.withUTF8Buffer { bytes.elementsEqual($0) }
    }
}
