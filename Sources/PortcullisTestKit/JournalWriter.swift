import Foundation

/// Writes real journal files with systemd-journal-remote (Debian package systemd-journal-remote) from
/// journal export format, as journald would have stored the entries.
public enum JournalWriter {
    public static let tool = "/lib/systemd/systemd-journal-remote"
    public static var available: Bool { FileManager.default.isExecutableFile(atPath: tool) }

    /// One entry's fields; `__REALTIME_TIMESTAMP`, `__MONOTONIC_TIMESTAMP` and `_BOOT_ID` are added.
    public struct Entry: Sendable {
        public var realtime: UInt64
        public var fields: [(String, String)]
        public init(realtime: UInt64, fields: [(String, String)]) {
            self.realtime = realtime
            self.fields = fields
        }
    }

    /// systemd-journal-remote failed.
    public struct Failure: Error, CustomStringConvertible {
        public var description: String
    }

    /// The entries in journal export format; a value with a newline is written in the binary form (name, newline,
    /// 64-bit little-endian length, bytes), as journald stores a MESSAGE that carries one.
    public static func export(_ entries: [Entry]) -> [UInt8] {
        var out: [UInt8] = []
        for (i, e) in entries.enumerated() {
            out += Array("__REALTIME_TIMESTAMP=\(e.realtime)\n__MONOTONIC_TIMESTAMP=\(1000 + i)\n".utf8)
            out += Array("_BOOT_ID=0123456789abcdef0123456789abcdef\n".utf8)
            for (k, v) in e.fields {
                let value = Array(v.utf8)
                if value.contains(0x0A) {
                    out += Array("\(k)\n".utf8)
                    withUnsafeBytes(of: UInt64(value.count).littleEndian) { out += $0 }
                    out += value + [0x0A]
                } else {
                    out += Array("\(k)=".utf8) + value + [0x0A]
                }
            }
            out.append(0x0A)
        }
        return out
    }

    /// Appends `entries` to the journal file at `path` (created if missing).
    public static func append(_ entries: [Entry], to path: String) throws {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: tool)
        p.arguments = ["--output=\(path)", "-"]
        let input = Pipe()
        p.standardInput = input
        p.standardOutput = FileHandle.nullDevice
        p.standardError = FileHandle.nullDevice
        try p.run()
        input.fileHandleForWriting.write(Data(export(entries)))
        try input.fileHandleForWriting.close()
        p.waitUntilExit()
        guard p.terminationStatus == 0 else {
            throw Failure(description: "systemd-journal-remote exited \(p.terminationStatus)")
        }
    }

    public static func sshd(_ i: Int, realtime: UInt64, host: String = "web1", pid: Int = 4000) -> Entry {
        Entry(
            realtime: realtime,
            fields: [
                ("_HOSTNAME", host), ("SYSLOG_IDENTIFIER", "sshd"), ("_PID", "\(pid + i)"), ("_COMM", "sshd"),
                ("_SYSTEMD_UNIT", "ssh.service"),
                ("MESSAGE", "Failed password for invalid user u\(i) from 198.51.100.\(i % 250) port 22 ssh2"),
            ]
        )
    }

    public static func other(_ i: Int, realtime: UInt64) -> Entry {
        Entry(
            realtime: realtime,
            fields: [
                ("_HOSTNAME", "web1"), ("SYSLOG_IDENTIFIER", "cron"), ("_PID", "\(77 + i)"), ("_COMM", "cron"),
                ("_SYSTEMD_UNIT", "cron.service"), ("MESSAGE", "job \(i) ran"),
            ]
        )
    }
}
