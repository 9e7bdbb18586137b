import Foundation
import Testing

@testable import LogSource

/// The one line reader of the daemon and `portcullis regex`: a line up to the limit is delivered whole, a
/// longer one never (not even its head), wherever the read chunks split it.
@Suite("LineReader")
struct LineReaderTests {
    func read(
        _ bytes: [UInt8], limit: Int, chunk: Int, includeUnterminated: Bool = false
    ) throws
        -> (lines: [[UInt8]], reader: LineReader, unterminated: Bool)
    {
        let path = FileManager.default.temporaryDirectory.appendingPathComponent(
            "pcl-lines-lr-\(getpid())-\(UInt32.random(in: 0...UInt32.max))"
        ).path
        FileManager.default.createFile(atPath: path, contents: Data(bytes))
        defer { unlink(path) }
        let fd = open(path, O_RDONLY)
        defer { close(fd) }
        let reader = LineReader(maxLineLength: limit, chunkSize: chunk)
        var lines: [[UInt8]] = []
        let r = try reader.forEachLine(fd: fd, includeUnterminated: includeUnterminated) {
            lines.append(Array($0))
            return true
        }
        return (lines, reader, r.unterminated)
    }

    @Test("random lengths around the limit, with and without CR, across chunk boundaries", arguments: [512, 700, 1024])
    func aroundTheLimit(chunk: Int) throws {
        let limit = 100
        var rng = SystemRandomNumberGenerator()
        var bytes: [UInt8] = []
        var expected: [[UInt8]] = []
        var skipped = 0
        for i in 0..<3000 {
            let length = [
                limit - 1, limit, limit + 1, limit + 2, 0, 1, Int.random(in: 0...3 * limit, using: &rng),
                Int.random(in: 0...2000, using: &rng),
            ][i % 8]
            let cr = Bool.random(using: &rng)
            let content = (0..<length).map { _ in UInt8.random(in: 0x20...0x7E, using: &rng) }
            bytes += content + (cr ? [0x0D, 0x0A] : [0x0A])
            if length <= limit { expected.append(content) } else { skipped += 1 }
        }
        let (lines, reader, unterminated) = try read(bytes, limit: limit, chunk: chunk)
        #expect(lines == expected)
        #expect(reader.skippedLines == skipped)
        #expect(!unterminated)
        #expect(lines.allSatisfy { $0.count <= limit })
    }

    @Test("an unterminated last line: held back, or delivered/skipped by its length when asked")
    func unterminated() throws {
        let head = Array("first\n".utf8)
        var r = try read(head + Array("tail".utf8), limit: 100, chunk: 512)
        #expect(r.lines == [Array("first".utf8)] && r.unterminated)
        r = try read(head + Array("tail".utf8), limit: 100, chunk: 512, includeUnterminated: true)
        #expect(r.lines == [Array("first".utf8), Array("tail".utf8)])
        r = try read(head + [UInt8](repeating: 0x41, count: 5000), limit: 100, chunk: 512, includeUnterminated: true)
        #expect(r.lines == [Array("first".utf8)] && r.reader.skippedLines == 1 && r.reader.lastSkippedLength == 5000)
        r = try read(head + [UInt8](repeating: 0x41, count: 5000), limit: 100, chunk: 512)
        #expect(r.lines == [Array("first".utf8)] && r.reader.skippedLines == 1)
    }

    @Test("the length of a skipped line is known, for the log")
    func skippedLength() throws {
        let r = try read(
            [UInt8](repeating: 0x41, count: 12345) + [0x0D, 0x0A] + Array("ok\n".utf8), limit: 100, chunk: 512)
        #expect(r.lines == [Array("ok".utf8)])
        #expect(r.reader.lastSkippedLength == 12345)
    }
}
