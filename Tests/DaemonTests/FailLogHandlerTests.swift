import Glibc
import Logging
import Testing

@testable import Daemon

@Suite struct FailLogHandlerTests {
    func strftimeStamp(_ t: Double) -> String {
        var tt = time_t(Int(t))
        var tm = Glibc.tm()
        localtime_r(&tt, &tm)
        var buf = [CChar](repeating: 0, count: 64)
        let n = strftime(&buf, buf.count, "%Y-%m-%d %H:%M:%S", &tm)
        return String(decoding: buf[0..<n].map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }

    @Test func banLineHasFail2banLayout() {
        let sink = FailLogHandler.Sink(target: .standardError)
        let h = FailLogHandler(label: "fail2ban.actions", sink: sink, clock: { 1_700_000_000.25 }, pid: 4242)
        let line = h.format(level: .notice, message: "[sshd] Ban 192.0.2.7", at: 1_700_000_000.25)
        #expect(
            line == "\(strftimeStamp(1_700_000_000)),250 fail2ban.actions        [4242]: NOTICE  [sshd] Ban 192.0.2.7")
    }

    @Test func newlinesInMessagesCannotForgeEntries() {
        let h = FailLogHandler(label: "fail2ban.filter", sink: .init(target: .standardError), pid: 1)
        let line = h.format(level: .info, message: "[sshd] Found 192.0.2.1\n2026-01-01 00:00:00,000 fake", at: 0)
        #expect(!line.contains("\n"))
        #expect(line.hasSuffix("Found 192.0.2.1\\n2026-01-01 00:00:00,000 fake"))
    }

    @Test func writesToFileTarget() throws {
        let path = "/tmp/portcullis-faillog-\(getpid())-\(Int.random(in: 0..<1_000_000)).log"
        defer { unlink(path) }
        let sink = FailLogHandler.Sink(target: LogTarget(path))
        var logger = Logger(label: "fail2ban.actions") { FailLogHandler(label: $0, sink: sink, pid: 7) }
        logger.logLevel = .info
        logger.debug("hidden")
        logger.notice("[recidive] Ban 2001:db8::1")
        let text = try String(contentsOfFileAtPath: path)
        #expect(text.hasSuffix("fail2ban.actions        [7]: NOTICE  [recidive] Ban 2001:db8::1\n"))
        #expect(!text.contains("hidden"))
    }

    @Test func parsesTargetsAndLevels() {
        #expect(LogTarget("STDOUT") == .standardOutput)
        #expect(LogTarget("syslog") == .syslog(facility: 3))
        #expect(LogTarget("SYSLOG[facility=auth]") == .syslog(facility: 4))
        #expect(LogTarget("SYSTEMD-JOURNAL") == .journal)
        #expect(LogTarget("sysout") == .systemOutput)
        #expect(LogTarget("/var/log/portcullis.log") == .file("/var/log/portcullis.log"))
        #expect(FailLogHandler.level(fromConfig: "NOTICE") == .notice)
        #expect(FailLogHandler.level(fromConfig: "bogus") == nil)
    }
}

extension String {
    init(contentsOfFileAtPath path: String) throws {
        guard let f = fopen(path, "r") else { throw CError(code: errno) }
        defer { fclose(f) }
        var bytes: [UInt8] = []
        var buf = [UInt8](repeating: 0, count: 4096)
        while true {
            let n = fread(&buf, 1, buf.count, f)
            if n <= 0 { break }
            bytes += buf[0..<n]
        }
        self = String(decoding: bytes, as: UTF8.self)
    }
}

struct CError: Error { var code: Int32 }
