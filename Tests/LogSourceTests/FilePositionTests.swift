import Synchronization
import Testing

@testable import LogSource

#if canImport(Glibc)
import Glibc
#endif

@Suite("FilePosition")
struct FilePositionTests {
    @Test("the hash survives a round trip through its text form")
    func hashText() {
        let p = FilePosition(path: "/x", inode: 7, offset: 10, firstLineHash: 0x00ab_cdef)
        #expect(p.firstLineHashText == "0000000000abcdef")
        let back = FilePosition(path: "/x", inode: 7, offset: 10, firstLineHashText: p.firstLineHashText)
        #expect(back.firstLineHash == 0x00ab_cdef)
        #expect(FilePosition(path: "/x", inode: 7, offset: 0, firstLineHash: nil).firstLineHashText == "")
        #expect(FilePosition(path: "/x", inode: 7, offset: 0, firstLineHashText: "").firstLineHash == nil)
        #expect(FilePosition(path: "/x", inode: 7, offset: 0, firstLineHashText: "zz").firstLineHash == nil)
    }

    @Test("the hash is of the first line without its line ending")
    func hashOfFirstLine() async throws {
        let dir = TempDir()
        defer { dir.remove() }
        let a = dir.file("a.log")
        let b = dir.file("b.log")
        append(a, "same first\nrest a\n")
        append(b, "same first\r\nrest b is different\n")
        let c = Collector()
        let tailer = FileTailer()
        tailer.subscribe([a, b], startAt: .beginning) { c.take($0) }
        try tailer.start()
        defer { tailer.stop() }
        await tailer.sync()
        let positions = tailer.positions()
        #expect(positions.count == 2)
        #expect(positions[0].firstLineHash != nil)
        #expect(positions[0].firstLineHash == positions[1].firstLineHash)
        let expected = Array("same first".utf8).withUnsafeBytes { FNV1a.hash($0) }
        #expect(positions[0].firstLineHash == expected)
        #expect(positions[0].offset == 18)
        #expect(positions[1].offset == 32)
    }

    @Test("a position stored without hash resumes by inode; a stale offset past the end restarts at 0")
    func resumeWithoutHash() async throws {
        let dir = TempDir()
        defer { dir.remove() }
        let path = dir.file("r.log")
        append(path, "one\ntwo\nthree\n")
        let inode = try #require(try? Sys.statPath(path).get().inode)
        let c = Collector()
        let tailer = FileTailer()
        tailer.subscribe(
            [path],
            resume: [FilePosition(path: path, inode: inode, offset: 4, firstLineHashText: "")]
        ) { c.take($0) }
        try tailer.start()
        await tailer.sync()
        tailer.stop()
        #expect(c.strings == ["two", "three"])

        let d = Collector()
        let again = FileTailer()
        again.subscribe([path], resume: [FilePosition(path: path, inode: inode, offset: 1000, firstLineHash: nil)]) {
            d.take($0)
        }
        try again.start()
        await again.sync()
        again.stop()
        #expect(d.strings == ["one", "two", "three"])
    }
}

@Suite("FileTailer lifecycle")
struct FileTailerLifecycleTests {
    @Test("a handler may stop its own tailer; dropping a running tailer stops it")
    func stopFromHandler() async throws {
        let dir = TempDir()
        defer { dir.remove() }
        let path = dir.file("s.log")
        append(path, "a\nb\n")
        let c = Collector()
        let holder = Mutex<FileTailer?>(nil)
        let tailer = FileTailer()
        holder.withLock { $0 = tailer }
        tailer.subscribe([path], startAt: .beginning) { batch in
            c.take(batch)
            holder.withLock { $0 }?.stop()
        }
        try tailer.start()
        await eventually { c.count >= 2 }
        await tailer.sync()  // returns at once: stopped
        #expect(c.strings == ["a", "b"])
        holder.withLock { $0 = nil }

        var dropped: FileTailer? = FileTailer()
        dropped?.subscribe([path]) { _ in }
        try dropped?.start()
        await dropped?.sync()
        dropped = nil
        #expect(dropped == nil)
    }
}

@Suite("LogBackend")
struct LogBackendTests {
    @Test("fail2ban backend values")
    func parse() throws {
        #expect(try LogBackend(parsing: "auto") == .files(.auto))
        #expect(try LogBackend(parsing: " polling ") == .files(.polling))
        #expect(try LogBackend(parsing: "pyinotify") == .files(.inotify))
        #expect(try LogBackend(parsing: "gamin") == .files(.auto))
        #expect(try LogBackend(parsing: "systemd") == .journal(.system))
        #expect(try LogBackend(parsing: "systemd[journalflags=1]") == .journal(.flags(1)))
        #expect(
            try LogBackend(parsing: "systemd[journalpath=/run/log/journal/m1]")
                == .journal(.directory("/run/log/journal/m1"))
        )
        #expect(
            try LogBackend(parsing: #"systemd[journalfiles="/p/system.journal, /p/user.journal"]"#)
                == .journal(.files(["/p/system.journal", "/p/user.journal"]))
        )
        #expect(throws: LogSourceError.self) { try LogBackend(parsing: "inotifyx") }
        #expect(throws: LogSourceError.self) { try LogBackend(parsing: "systemd[journalflags=x]") }
        #expect(throws: LogSourceError.self) { try LogBackend(parsing: "systemd[nope=1]") }
        #expect(throws: LogSourceError.self) { try LogBackend(parsing: "systemd[journalpath=/x") }
    }
}

@Suite("Log source errors")
struct LogSourceErrorTests {
    @Test("a directory or unreadable log path is reported once, clearly, and does not stop the others")
    func notAFile() async throws {
        let dir = TempDir()
        defer { dir.remove() }
        let sub = dir.file("subdir")
        mkdir(sub, 0o755)
        defer { rmdir(sub) }
        let good = dir.file("good.log")
        append(good, "")
        let c = Collector()
        let tailer = FileTailer(
            options: .init(backend: .polling, pollInterval: .milliseconds(10)),
            events: { c.record($0) }
        )
        tailer.subscribe([sub, good]) { c.take($0) }
        try tailer.start()
        defer { tailer.stop() }
        await tailer.sync()
        append(good, "still works\n")
        await eventually { c.count >= 1 }
        await tailer.sync()
        await tailer.sync()
        #expect(c.strings == ["still works"])
        let failures = c.eventList.compactMap { event -> LogSourceError? in
            if case .failed(let e) = event { return e } else { return nil }
        }
        #expect(failures.count == 1)
        #expect(failures.first?.code == .openFailed)
        #expect(failures.first?.message.contains("not a regular file") == true)
    }

    @Test("the system journal opens and follows even where no journald runs")
    func systemJournal() async throws {
        let source = JournalSource(location: .system, start: .tail, handler: { _ in })
        try source.start()
        await source.sync()
        source.stop()
        #expect(source.lastError == nil)
    }
}
