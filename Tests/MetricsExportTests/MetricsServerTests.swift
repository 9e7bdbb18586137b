import Core
import MetricsExport
import PortcullisTestKit
import Testing

#if canImport(Glibc)
import Glibc
#endif

/// A blocking loopback TCP client for the tests.
private func exchange(_ port: UInt16, send text: [UInt8], closeAfterSend: Bool = false) -> String {
    let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
    defer { close(fd) }
    var sa = sockaddr_in()
    sa.sin_family = sa_family_t(AF_INET)
    sa.sin_port = port.bigEndian
    sa.sin_addr.s_addr = UInt32(0x7F00_0001).bigEndian
    let rc = withUnsafePointer(to: &sa) {
        $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
            connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size))
        }
    }
    guard rc == 0 else { return "connect failed" }
    var timeout = timeval(tv_sec: 10, tv_usec: 0)
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
    _ = text.withUnsafeBytes { send(fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
    if closeAfterSend { shutdown(fd, Int32(SHUT_WR)) }
    var out: [UInt8] = []
    var buffer = [UInt8](repeating: 0, count: 4096)
    while true {
        let n = buffer.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
        guard n > 0 else { break }
        out += buffer[0..<n]
    }
    return String(decoding: out, as: UTF8.self)
}

@Suite("metrics server over loopback TCP", .blocking)
struct MetricsServerTests {
    func withServer(
        maxRequestBytes: Int = 8192, deadline: Duration = .seconds(2), _ body: (UInt16) async throws -> Void
    ) async throws {
        let metrics = PortcullisMetrics()
        metrics.recordTransaction(.microseconds(700))
        var snapshot = MetricsSnapshot()
        var jail = JailMetricsSnapshot(jail: "sshd")
        jail.linesRead = 10
        jail.bans = 2
        snapshot.jails = [jail]
        let frozen = snapshot
        let server = try MetricsServer(
            address: IPAddress("127.0.0.1")!, port: 0, maxRequestBytes: maxRequestBytes, deadline: deadline
        ) { metrics.exposition(frozen) }
        #expect(server.port != 0)
        // Off the cooperative pool, like the test itself: the tests' blocking reads below must not wait on a pool
        // that other suites keep busy (a CI run once left the server's task unscheduled for the whole test).
        let task = Task(executorPreference: ThreadPerJobExecutor.shared) { await server.run() }
        defer { task.cancel() }
        try await body(server.port)
        server.stop()
        await task.value
    }

    @Test("GET /metrics: 200, the exposition format, and the connection closed")
    func scrape() async throws {
        try await withServer { port in
            let r = exchange(port, send: Array("GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n".utf8))
            #expect(r.hasPrefix("HTTP/1.1 200 OK\r\n"), "\(r)")
            #expect(r.contains("Content-Type: text/plain; version=0.0.4; charset=utf-8\r\n"))
            #expect(r.contains("Connection: close\r\n"))
            #expect(r.contains("portcullis_bans_total{jail=\"sshd\"} 2\n"), "\(r)")
            #expect(r.contains("portcullis_lines_read_total{jail=\"sshd\"} 10\n"), "\(r)")
            #expect(r.contains("portcullis_nftables_transaction_seconds_count 1\n"), "\(r)")
            // The body is as long as Content-Length says.
            let parts = r.components(separatedBy: "\r\n\r\n")
            let length = r.split(separator: "\r\n").first { $0.hasPrefix("Content-Length: ") }.map {
                Int($0.dropFirst("Content-Length: ".count))
            }
            #expect(length == parts.dropFirst().joined(separator: "\r\n\r\n").utf8.count)
        }
    }

    @Test("other requests get their error status; the server keeps serving")
    func errors() async throws {
        try await withServer { port in
            #expect(exchange(port, send: Array("POST /metrics HTTP/1.1\r\n\r\n".utf8)).hasPrefix("HTTP/1.1 405 "))
            #expect(exchange(port, send: Array("GET /other HTTP/1.1\r\n\r\n".utf8)).hasPrefix("HTTP/1.1 404 "))
            #expect(exchange(port, send: Array("garbage\r\n\r\n".utf8)).hasPrefix("HTTP/1.1 400 "))
            // A head without its end, then the client closes: nothing to answer, and the next one is served.
            #expect(exchange(port, send: Array("GET /metrics HTTP/1.1\r\n".utf8), closeAfterSend: true) == "")
            #expect(exchange(port, send: Array("GET /metrics HTTP/1.1\r\n\r\n".utf8)).hasPrefix("HTTP/1.1 200 "))
        }
    }

    @Test("a head larger than the limit gets 431")
    func tooLarge() async throws {
        try await withServer(maxRequestBytes: 1024) { port in
            let big = "GET /metrics HTTP/1.1\r\nX-Pad: " + String(repeating: "a", count: 4000) + "\r\n\r\n"
            #expect(exchange(port, send: Array(big.utf8)).hasPrefix("HTTP/1.1 431 "))
        }
    }

    @Test("a client that never finishes its head is cut off at the deadline with 408")
    func slowClient() async throws {
        try await withServer(deadline: .milliseconds(300)) { port in
            #expect(exchange(port, send: Array("GET /metrics HTTP/1.1\r\n".utf8)).hasPrefix("HTTP/1.1 408 "))
            #expect(exchange(port, send: Array("GET /metrics HTTP/1.1\r\n\r\n".utf8)).hasPrefix("HTTP/1.1 200 "))
        }
    }

    @Test("a port in use is a clear error")
    func portInUse() async throws {
        try await withServer { port in
            #expect {
                _ = try MetricsServer(address: IPAddress("127.0.0.1")!, port: port) { [] }
            } throws: { error in
                "\(error)".contains("cannot serve metrics on 127.0.0.1:\(port)") && "\(error)".contains("in use")
            }
        }
    }
}

@Suite("metrics registry")
struct PortcullisMetricsTests {
    @Test("totals become counter increases; a jail a reload removed loses its series")
    func carry() {
        let metrics = PortcullisMetrics()
        var s = MetricsSnapshot()
        var a = JailMetricsSnapshot(jail: "a")
        a.bans = 3
        a.banned = 2
        s.jails = [a, JailMetricsSnapshot(jail: "b")]
        var text = String(decoding: metrics.exposition(s), as: UTF8.self)
        #expect(text.contains("portcullis_bans_total{jail=\"a\"} 3\n"), "\(text)")
        #expect(
            text.contains("portcullis_banned{jail=\"a\"} 2.0\n") || text.contains("portcullis_banned{jail=\"a\"} 2\n"),
            "\(text)")
        a.bans = 5
        s.jails = [a]
        text = String(decoding: metrics.exposition(s), as: UTF8.self)
        #expect(text.contains("portcullis_bans_total{jail=\"a\"} 5\n"), "\(text)")
        #expect(!text.contains("jail=\"b\""), "\(text)")
        // A total that went down (the jail restarted from zero) is all increase.
        a.bans = 1
        s.jails = [a]
        text = String(decoding: metrics.exposition(s), as: UTF8.self)
        #expect(text.contains("portcullis_bans_total{jail=\"a\"} 6\n"), "\(text)")
    }

    @Test("jail names are escaped as label values")
    func escaping() {
        let metrics = PortcullisMetrics()
        var s = MetricsSnapshot()
        s.jails = [JailMetricsSnapshot(jail: "we\"ird\\jail")]
        let text = String(decoding: metrics.exposition(s), as: UTF8.self)
        #expect(text.contains("jail=\"we\\\"ird\\\\jail\""), "\(text)")
    }
}
