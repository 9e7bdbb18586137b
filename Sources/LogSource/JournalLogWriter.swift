internal import CSystemd

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// Sends log entries to the systemd journal (`sd_journal_sendv`), for the daemon's `logtarget = SYSTEMD-JOURNAL`.
/// Lives here because this module is the one place libsystemd is wrapped (it also reads the journal).
///
/// ```swift
/// JournalLogWriter.send(["MESSAGE": "[sshd] Ban 192.0.2.7", "PRIORITY": "5", "SYSLOG_IDENTIFIER": "portcullis"])
/// ```
public enum JournalLogWriter {
    /// Sends one entry made of `fields` (`NAME=value`; names upper case, values may hold any bytes). Returns 0,
    /// or the errno why the journal did not take it (`ENOENT` when journald is not running).
    @discardableResult
    public static func send(_ fields: [(name: String, value: String)]) -> Int32 {
        guard !fields.isEmpty else { return 0 }
        // One buffer for every field, so the vectors point into storage that lives through the call.
        var storage: [UInt8] = []
        var spans: [(start: Int, count: Int)] = []
        for f in fields {
            let start = storage.count
            storage.append(contentsOf: f.name.utf8)
            storage.append(UInt8(ascii: "="))
            storage.append(contentsOf: f.value.utf8)
            spans.append((start, storage.count - start))
        }
        let rc: Int32 = storage.withUnsafeMutableBytes { raw in
            guard let base = raw.baseAddress else { return -EINVAL }
            let vectors = spans.map { iovec(iov_base: base + $0.start, iov_len: $0.count) }
            return vectors.withUnsafeBufferPointer { sd_journal_sendv($0.baseAddress, Int32($0.count)) }
        }
        return rc < 0 ? -rc : 0
    }
}
