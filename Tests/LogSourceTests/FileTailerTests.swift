import Testing

@testable import LogSource

#if canImport(Glibc)
import Glibc
#endif

@Suite("FileTailer", .serialized)
struct FileTailerTests {
    static let backends: [FileTailer.Backend] = [.inotify, .polling]

    private func makeTailer(
        _ backend: FileTailer.Backend,
        _ collector: Collector,
        maxLine: Int = 32 * 1024,
        grace: Duration = .milliseconds(300)
    ) -> FileTailer {
        FileTailer(
            options: .init(
                backend: backend,
                pollInterval: .milliseconds(20),
                maxLineLength: maxLine,
                rotationGrace: grace
            ),
            events: { collector.record($0) }
        )
    }

    @Test("appended lines are delivered; old content is skipped by default", arguments: backends)
    func appendDelivered(backend: FileTailer.Backend) async throws {
        let dir = TempDir()
        defer { dir.remove() }
        let path = dir.file("auth.log")
        append(path, "old line 1\nold line 2\n")
        let c = Collector()
        let tailer = makeTailer(backend, c)
        tailer.subscribe([path]) { c.take($0) }
        try tailer.start()
        defer { tailer.stop() }
        #expect(tailer.activeBackend == backend)
        await tailer.sync()
        append(path, "new line 1\nnew line 2\n")
        // No sync: the wakeup (inotify event or poll timer) alone must deliver.
        await eventually { c.count >= 2 }
        await tailer.sync()
        #expect(c.strings == ["new line 1", "new line 2"])
    }

    @Test("startAt: .beginning replays existing content")
    func beginning() async throws {
        let dir = TempDir()
        defer { dir.remove() }
        let path = dir.file("a.log")
        append(path, numbered("x", 0..<5))
        let c = Collector()
        let tailer = makeTailer(.inotify, c)
        tailer.subscribe([path], startAt: .beginning) { c.take($0) }
        try tailer.start()
        defer { tailer.stop() }
        await tailer.sync()
        #expect(c.strings == numberedLines("x", 0..<5))
    }

    @Test("an incomplete last line waits for its newline")
    func partialLine() async throws {
        let dir = TempDir()
        defer { dir.remove() }
        let path = dir.file("a.log")
        append(path, "")
        let c = Collector()
        let tailer = makeTailer(.inotify, c)
        tailer.subscribe([path]) { c.take($0) }
        try tailer.start()
        defer { tailer.stop() }
        await tailer.sync()
        append(path, "first half")
        await tailer.sync()
        #expect(c.strings == [])
        #expect(tailer.positions().first?.offset == 0)
        append(path, " second half\nnext\n")
        await eventually { c.count >= 2 }
        await tailer.sync()
        #expect(c.strings == ["first half second half", "next"])
        #expect(tailer.positions().first?.offset == UInt64("first half second half\nnext\n".utf8.count))
    }

    @Test("several subscribers of one file each get every line once; the file is opened once")
    func sharedFile() async throws {
        let dir = TempDir()
        defer { dir.remove() }
        let path = dir.file("shared.log")
        append(path, "")
        let c = Collector()
        let subs = (0..<3).map { _ in Collector() }
        let tailer = makeTailer(.inotify, c)
        for s in subs { tailer.subscribe([path]) { s.take($0) } }
        try tailer.start()
        defer { tailer.stop() }
        await tailer.sync()
        append(path, numbered("l", 0..<100))
        await eventually { subs.allSatisfy { $0.count >= 100 } }
        await tailer.sync()
        for s in subs { #expect(s.strings == numberedLines("l", 0..<100)) }
        let opens = c.eventList.filter { if case .opened = $0 { return true } else { return false } }
        #expect(opens.count == 1)
    }

    @Test("rename + create rotation mid-stream loses and repeats nothing", arguments: backends)
    func renameRotation(backend: FileTailer.Backend) async throws {
        let dir = TempDir()
        defer { dir.remove() }
        let path = dir.file("app.log")
        append(path, "")
        let c = Collector()
        let tailer = makeTailer(backend, c)
        tailer.subscribe([path]) { c.take($0) }
        try tailer.start()
        defer { tailer.stop() }
        await tailer.sync()

        let writer = open(path, O_WRONLY | O_APPEND)
        #expect(writer >= 0)
        write(fd: writer, numbered("a", 0..<50))
        await eventually { c.count >= 10 }  // mid-stream: some lines already delivered
        // logrotate: rename; the daemon still writes to the old file, then reopens.
        #expect(rename(path, path + ".1") == 0)
        write(fd: writer, numbered("a", 50..<60) + "tail without newline")
        close(writer)
        append(path, numbered("b", 0..<40))
        // The old file's unterminated last line is delivered when the old file is let go (after the grace).
        let expected = numberedLines("a", 0..<60) + numberedLines("b", 0..<40) + ["tail without newline"]
        await eventually { c.count >= expected.count }
        await tailer.sync()
        #expect(c.strings == expected)
        #expect(c.eventList.contains(.rotated(path: path)))
        unlink(path + ".1")
    }

    @Test("lines written to the old file after the switch to the new one are still delivered", arguments: backends)
    func lateWritesToRotatedFile(backend: FileTailer.Backend) async throws {
        let dir = TempDir()
        defer { dir.remove() }
        let path = dir.file("late.log")
        append(path, "")
        let c = Collector()
        // A grace far longer than the test, so how slowly the machine runs it cannot matter.
        let tailer = makeTailer(backend, c, grace: .seconds(3600))
        tailer.subscribe([path]) { c.take($0) }
        try tailer.start()
        defer { tailer.stop() }
        await tailer.sync()
        let writer = open(path, O_WRONLY | O_APPEND)
        write(fd: writer, numbered("a", 0..<10))
        await eventually { c.count >= 10 }
        #expect(rename(path, path + ".1") == 0)
        append(path, numbered("b", 0..<5))
        await eventually { c.count >= 15 }  // the tailer has switched to the new file
        #expect(c.eventList.contains(.rotated(path: path)))
        // The daemon has not reopened its log yet.
        write(fd: writer, numbered("a", 10..<20))
        close(writer)
        await eventually { c.count >= 25 }
        await tailer.sync()
        #expect(c.strings == numberedLines("a", 0..<10) + numberedLines("b", 0..<5) + numberedLines("a", 10..<20))
        // The position stays that of the file the path names now.
        #expect(tailer.positions().first?.offset == UInt64(numbered("b", 0..<5).utf8.count))
        unlink(path + ".1")
    }

    @Test("copytruncate rotation loses and repeats nothing", arguments: backends)
    func copyTruncate(backend: FileTailer.Backend) async throws {
        let dir = TempDir()
        defer { dir.remove() }
        let path = dir.file("app.log")
        append(path, "")
        let c = Collector()
        let tailer = makeTailer(backend, c)
        tailer.subscribe([path]) { c.take($0) }
        try tailer.start()
        defer { tailer.stop() }
        await tailer.sync()
        append(path, numbered("a", 0..<30))
        await eventually { c.count >= 30 }
        // copytruncate: copy away, truncate in place, the daemon keeps appending (O_APPEND).
        let copy = open(path + ".1", O_WRONLY | O_CREAT, 0o644)
        close(copy)
        #expect(truncate(path, 0) == 0)
        append(path, numbered("b", 0..<5))
        let expected = numberedLines("a", 0..<30) + numberedLines("b", 0..<5)
        await eventually { c.count >= expected.count }
        await tailer.sync()
        #expect(c.strings == expected)
        #expect(c.eventList.contains(.truncated(path: path)))
        unlink(path + ".1")
    }

    @Test("restart resumes exactly at the stored position")
    func resumeSameFile() async throws {
        let dir = TempDir()
        defer { dir.remove() }
        let path = dir.file("auth.log")
        append(path, "header line\n")
        let first = Collector()
        var saved: [FilePosition] = []
        do {
            let tailer = makeTailer(.inotify, first)
            tailer.subscribe([path], startAt: .beginning) { first.take($0) }
            try tailer.start()
            append(path, numbered("a", 0..<10))
            await eventually { first.count >= 11 }
            await tailer.sync()
            saved = tailer.positions()
            tailer.stop()
        }
        #expect(first.strings == ["header line"] + numberedLines("a", 0..<10))
        #expect(saved.count == 1)
        #expect(saved.first?.firstLineHash != nil)
        // Written while we were down, including a partial line finished later.
        append(path, numbered("b", 0..<3) + "half")
        let second = Collector()
        let tailer = makeTailer(.inotify, second)
        tailer.subscribe([path], startAt: .end, resume: saved) { second.take($0) }
        try tailer.start()
        defer { tailer.stop() }
        await tailer.sync()
        append(path, " done\n")
        await eventually { second.count >= 4 }
        await tailer.sync()
        #expect(second.strings == numberedLines("b", 0..<3) + ["half done"])
    }

    @Test("restart on a rotated file (different first line) starts at its beginning")
    func resumeRotatedFile() async throws {
        let dir = TempDir()
        defer { dir.remove() }
        let path = dir.file("auth.log")
        append(path, numbered("old", 0..<20))
        var saved: [FilePosition] = []
        do {
            let c = Collector()
            let tailer = makeTailer(.inotify, c)
            tailer.subscribe([path], startAt: .beginning) { c.take($0) }
            try tailer.start()
            await tailer.sync()
            saved = tailer.positions()
            tailer.stop()
            #expect(c.count == 20)
        }
        // Rotated while down; the new file is even longer than the stored offset.
        #expect(rename(path, path + ".1") == 0)
        append(path, numbered("new", 0..<40))
        let c = Collector()
        let tailer = makeTailer(.inotify, c)
        tailer.subscribe([path], startAt: .end, resume: saved) { c.take($0) }
        try tailer.start()
        defer { tailer.stop() }
        await tailer.sync()
        #expect(c.strings == numberedLines("new", 0..<40))
        unlink(path + ".1")
    }

    @Test("a missing file is reported and read from its beginning when it appears", arguments: backends)
    func missingAppears(backend: FileTailer.Backend) async throws {
        let dir = TempDir()
        defer { dir.remove() }
        let path = dir.file("later.log")
        let c = Collector()
        let tailer = makeTailer(backend, c)
        tailer.subscribe([path]) { c.take($0) }
        try tailer.start()
        defer { tailer.stop() }
        await tailer.sync()
        #expect(c.eventList.contains(.missing(path: path)))
        append(path, numbered("n", 0..<3))
        await eventually { c.count >= 3 }
        await tailer.sync()
        #expect(c.strings == numberedLines("n", 0..<3))
    }

    @Test("a deleted file is reported missing and followed again when re-created")
    func deletedAndRecreated() async throws {
        let dir = TempDir()
        defer { dir.remove() }
        let path = dir.file("x.log")
        append(path, "")
        let c = Collector()
        let tailer = makeTailer(.inotify, c)
        tailer.subscribe([path]) { c.take($0) }
        try tailer.start()
        defer { tailer.stop() }
        await tailer.sync()
        append(path, "one\n")
        await eventually { c.count >= 1 }
        unlink(path)
        await eventually { c.eventList.contains(.missing(path: path)) }
        #expect(c.eventList.contains(.missing(path: path)))
        append(path, "two\n")
        await eventually { c.count >= 2 }
        await tailer.sync()
        #expect(c.strings == ["one", "two"])
    }

    @Test("globs expand, and new matching files are picked up from their beginning", arguments: backends)
    func globs(backend: FileTailer.Backend) async throws {
        let dir = TempDir()
        defer { dir.remove() }
        append(dir.file("a.log"), "a old\n")
        append(dir.file("skip.txt"), "")
        let c = Collector()
        let tailer = makeTailer(backend, c)
        tailer.subscribe([dir.path + "/*.log"]) { c.take($0) }
        try tailer.start()
        defer { tailer.stop() }
        await tailer.sync()
        append(dir.file("a.log"), "a new\n")
        append(dir.file("skip.txt"), "not watched\n")
        append(dir.file("b.log"), "b first\n")
        await eventually { c.count >= 2 }
        await tailer.sync()
        #expect(Set(c.strings) == ["a new", "b first"])
        #expect(tailer.positions().map(\.path) == [dir.file("a.log"), dir.file("b.log")])
    }

    @Test("bytes pass through: invalid UTF-8, NUL, CRLF stripped, empty lines kept")
    func bytes() async throws {
        let dir = TempDir()
        defer { dir.remove() }
        let path = dir.file("bin.log")
        append(path, "")
        let c = Collector()
        let tailer = makeTailer(.inotify, c)
        tailer.subscribe([path]) { c.take($0) }
        try tailer.start()
        defer { tailer.stop() }
        await tailer.sync()
        let content: [UInt8] =
            [0xFF, 0xFE, 0x41, 0x0A]  // invalid UTF-8
            + [0x61, 0x00, 0x62, 0x0A]  // NUL inside
            + Array("crlf line\r\n".utf8) + [0x0A]  // CRLF, then an empty line
            + Array("lone \r inside\n".utf8)
        append(path, content)
        await eventually { c.count >= 5 }
        await tailer.sync()
        #expect(
            c.lines.withLock { $0 } == [
                [0xFF, 0xFE, 0x41], [0x61, 0x00, 0x62], Array("crlf line".utf8), [], Array("lone \r inside".utf8),
            ]
        )
    }

    @Test("a 1 MB line is skipped whole (never delivered in part) and counted; its neighbours are intact")
    func hugeLine() async throws {
        let dir = TempDir()
        defer { dir.remove() }
        let path = dir.file("big.log")
        append(path, "")
        let c = Collector()
        let tailer = makeTailer(.inotify, c, maxLine: 1000)
        tailer.subscribe([path]) { c.take($0) }
        try tailer.start()
        defer { tailer.stop() }
        await tailer.sync()
        var content = Array("before\n".utf8)
        content += [UInt8](repeating: 0x7A, count: 1_000_000)
        content += Array("\nafter\n".utf8)
        // Written in pieces so the long line spans many reads.
        for piece in stride(from: 0, to: content.count, by: 70_000) {
            append(path, Array(content[piece..<min(content.count, piece + 70_000)]))
        }
        append(path, "[0xFF] short\n")
        await eventually { c.count >= 3 }
        await tailer.sync()
        let lines = c.lines.withLock { $0 }
        #expect(lines == [Array("before".utf8), Array("after".utf8), Array("[0xFF] short".utf8)])
        let batches = c.batches.withLock { $0 }
        #expect(batches.reduce(0) { $0 + $1.truncated } == 1)
        #expect(c.eventList.contains(.lineTooLong(path: path, length: 1_000_000, limit: 1000)))
    }

    @Test("unsubscribe closes a file nobody watches")
    func unsubscribe() async throws {
        let dir = TempDir()
        defer { dir.remove() }
        let path = dir.file("u.log")
        append(path, "")
        let c = Collector()
        let tailer = makeTailer(.inotify, c)
        let sub = tailer.subscribe([path]) { c.take($0) }
        try tailer.start()
        defer { tailer.stop() }
        await tailer.sync()
        append(path, "seen\n")
        await eventually { c.count >= 1 }
        tailer.unsubscribe(sub)
        await tailer.sync()
        append(path, "unseen\n")
        await tailer.sync()
        #expect(c.strings == ["seen"])
        #expect(c.eventList.contains(.closed(path: path)))
        #expect(tailer.positions().isEmpty)
    }

    @Test("start twice is an error; stop is idempotent")
    func lifecycle() throws {
        let tailer = FileTailer()
        try tailer.start()
        #expect(throws: LogSourceError.self) { try tailer.start() }
        tailer.stop()
        tailer.stop()
    }
}

@Suite("FileTailer truncation")
struct FileTailerTruncationTests {
    @Test("copytruncate noticed even when the file regrew past the old offset before the next check")
    func regrownAfterTruncate() async throws {
        let dir = TempDir()
        defer { dir.remove() }
        let path = dir.file("t.log")
        append(path, "")
        let c = Collector()
        // Polling with a long period: truncation and regrowth both happen between two checks.
        let tailer = FileTailer(
            options: .init(backend: .polling, pollInterval: .seconds(3600)),
            events: { c.record($0) }
        )
        tailer.subscribe([path]) { c.take($0) }
        try tailer.start()
        defer { tailer.stop() }
        await tailer.sync()
        append(path, numbered("a", 0..<3))
        await tailer.sync()
        #expect(truncate(path, 0) == 0)
        append(path, numbered("bbbbbbbb", 0..<10))
        await tailer.sync()
        #expect(c.strings == numberedLines("a", 0..<3) + numberedLines("bbbbbbbb", 0..<10))
        #expect(c.eventList.contains(.truncated(path: path)))
    }
}

@Suite("FileTailer backlog")
struct FileTailerBacklogTests {
    @Test(
        "a big backlog is read in slices without losing, repeating or reordering lines",
        arguments: [FileTailer.Backend.inotify, .polling]
    )
    func bigBacklog(backend: FileTailer.Backend) async throws {
        let dir = TempDir()
        defer { dir.remove() }
        let big = dir.file("big.log")
        let small = dir.file("small.log")
        var text = ""
        for i in 0..<60_000 { text += "line \(i) of the backlog, padded to look like a log line .............\n" }
        append(big, text)  // about 4.5 MB: several read budgets
        append(small, "")
        let bigLines = Collector()
        let smallLines = Collector()
        let tailer = FileTailer(options: .init(backend: backend, pollInterval: .milliseconds(20)))
        tailer.subscribe([small]) { smallLines.take($0) }
        try tailer.start()
        defer { tailer.stop() }
        await tailer.sync()  // small.log is open (at its end)
        tailer.subscribe([big], startAt: .beginning) { bigLines.take($0) }
        append(small, "small one\n")
        await eventually { bigLines.count >= 60_000 && smallLines.count >= 1 }
        await tailer.sync()
        let lines = bigLines.strings
        #expect(lines.count == 60_000)
        #expect(lines.enumerated().allSatisfy { $0.element.hasPrefix("line \($0.offset) of") })
        #expect(smallLines.strings == ["small one"])
        #expect(tailer.positions().first { $0.path == big }?.offset == UInt64(text.utf8.count))
    }
}

@Suite("FileTailer reload")
struct FileTailerReloadTests {
    @Test("replace keeps a still-watched file open: nothing lost or repeated across a reload")
    func replaceKeepsFiles() async throws {
        let dir = TempDir()
        defer { dir.remove() }
        let kept = dir.file("kept.log")
        let dropped = dir.file("dropped.log")
        let added = dir.file("added.log")
        for p in [kept, dropped, added] { append(p, "old \(p)\n") }
        let c = Collector()
        let before = Collector()
        let after = Collector()
        let tailer = FileTailer(events: { c.record($0) })
        let first = tailer.subscribe([kept, dropped]) { before.take($0) }
        try tailer.start()
        defer { tailer.stop() }
        await tailer.sync()
        append(kept, "k1\n")
        await eventually { before.count >= 1 }
        let subs = tailer.replace([first], with: [.init([kept, added]) { after.take($0) }])
        #expect(subs.count == 1)
        // Written while the reload is under way: goes to the old or the new subscriber, exactly once.
        append(kept, "k2\n")
        await tailer.sync()
        append(kept, "k3\n")
        append(added, "a1\n")
        append(dropped, "d1\n")
        await eventually { after.count >= 3 || before.count + after.count >= 4 }
        await tailer.sync()
        #expect((before.strings + after.strings).sorted() == ["a1", "k1", "k2", "k3"])
        #expect(before.strings.first == "k1")
        #expect(after.strings.suffix(2).sorted() == ["a1", "k3"])
        let opens = c.eventList.filter { $0 == .opened(path: kept, offset: UInt64("old \(kept)\n".utf8.count)) }
        #expect(opens.count == 1)
        #expect(c.eventList.contains(.closed(path: dropped)))
    }
}
