import MetricsExport
import Testing

@Suite("metrics HTTP request heads")
struct MetricsHTTPTests {
    func answer(_ text: String) -> MetricsHTTP.Answer {
        MetricsHTTP.answer(toHead: Array(text.utf8), path: "/metrics")
    }

    @Test("GET and HEAD of /metrics, with or without a query, HTTP/1.0 or 1.1")
    func served() {
        #expect(answer("GET /metrics HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n") == .metrics(head: false))
        #expect(answer("GET /metrics?x=1 HTTP/1.0\r\n\r\n") == .metrics(head: false))
        #expect(answer("HEAD /metrics HTTP/1.1\r\n\r\n") == .metrics(head: true))
        #expect(answer("GET /metrics HTTP/1.1\nAccept: */*\n\n") == .metrics(head: false))
    }

    @Test("everything else gets an error status")
    func refused() {
        #expect(answer("POST /metrics HTTP/1.1\r\n\r\n") == .error(405, "Method Not Allowed"))
        #expect(answer("GET / HTTP/1.1\r\n\r\n") == .error(404, "Not Found"))
        #expect(answer("GET /metricsx HTTP/1.1\r\n\r\n") == .error(404, "Not Found"))
        #expect(answer("GET /metrics HTTP/2.0\r\n\r\n") == .error(505, "HTTP Version Not Supported"))
        #expect(answer("GET /metrics\r\n\r\n") == .error(400, "Bad Request"))
        #expect(answer("GET  /metrics HTTP/1.1\r\n\r\n") == .error(400, "Bad Request"))
        #expect(answer("GET /metrics HTTP/1.1\r\nno colon here\r\n\r\n") == .error(400, "Bad Request"))
        #expect(answer("GET /metrics HTTP/1.1\r\nContent-Length: 5\r\n\r\n") == .error(400, "Bad Request"))
        #expect(answer("GET /metrics HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n") == .error(400, "Bad Request"))
        #expect(answer("\r\n\r\n") == .error(400, "Bad Request"))
    }

    @Test("the head ends at the first empty line")
    func headEnd() {
        #expect(MetricsHTTP.headEnd(Array("GET / HTTP/1.1\r\nA: b\r\n".utf8)) == nil)
        #expect(MetricsHTTP.headEnd(Array("GET / HTTP/1.1\r\n\r\nbody".utf8)) == 18)
        #expect(MetricsHTTP.headEnd(Array("GET / HTTP/1.1\n\nbody".utf8)) == 16)
    }

    @Test("responses close the connection and give the length")
    func response() {
        let r = String(
            decoding: MetricsHTTP.response(
                status: 200, reason: "OK", contentType: "text/plain", body: Array("x\n".utf8)),
            as: UTF8.self)
        #expect(r == "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 2\r\nConnection: close\r\n\r\nx\n")
        let head = MetricsHTTP.response(status: 200, reason: "OK", contentType: "t", body: [1, 2, 3], head: true)
        #expect(String(decoding: head, as: UTF8.self).hasSuffix("Content-Length: 3\r\nConnection: close\r\n\r\n"))
    }
}
