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

    public static func export(_ entries: [Entry]) -> String {
        var out = ""
        for (i, e) in entries.enumerated() {
            out += "__REALTIME_TIMESTAMP=\(e.realtime)\n__MONOTONIC_TIMESTAMP=\(1000 + i)\n"
            out += "_BOOT_ID=0123456789abcdef0123456789abcdef\n"
            for (k, v) in e.fields { out += "\(k)=\(v)\n" }
            out += "\n"
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
        input.fileHandleForWriting.write(Data(export(entries).utf8))
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
