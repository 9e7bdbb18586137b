import Synchronization
import Testing

@testable import LogSource

#if canImport(Glibc)
import Glibc
#endif

/// A fresh temporary directory, removed (with its files) by `remove()`.
struct TempDir {
    let path: String

    init() {
        var template = Array("/tmp/pcl-logsource-XXXXXX".utf8CString)
        let made = template.withUnsafeMutableBufferPointer { mkdtemp($0.baseAddress!) }
        path = made.map { String(cString: $0) } ?? "/tmp/pcl-logsource-fallback"
    }

    func file(_ name: String) -> String { path + "/" + name }

    func remove() {
        for name in list() { unlink(file(name)) }
        rmdir(path)
    }

    func list() -> [String] {
        guard let dir = opendir(path) else { return [] }
        defer { closedir(dir) }
        var names: [String] = []
        while let entry = readdir(dir) {
            let name = withUnsafeBytes(of: entry.pointee.d_name) { raw in
                String(decoding: raw.prefix(while: { $0 != 0 }), as: UTF8.self)
            }
            if name != "." && name != ".." { names.append(name) }
        }
        return names
    }
}

/// Appends bytes to a file (creating it), as a logging daemon would.
func append(_ path: String, _ text: String) {
    append(path, Array(text.utf8))
}

func append(_ path: String, _ bytes: [UInt8]) {
    let fd = open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0o644)
    precondition(fd >= 0, "cannot open \(path)")
    bytes.withUnsafeBytes { raw in
        var done = 0
        while done < raw.count {
            let n = write(fd, raw.baseAddress! + done, raw.count - done)
            precondition(n > 0)
            done += n
        }
    }
    close(fd)
}

/// Writes with an already-open descriptor (a daemon that keeps its log open across a rename).
func write(fd: Int32, _ text: String) {
    let bytes = Array(text.utf8)
    bytes.withUnsafeBytes { raw in _ = Glibc.write(fd, raw.baseAddress!, raw.count) }
}

/// Collects delivered lines (copied) and events from the tailer thread.
final class Collector: Sendable {
    let lines = Mutex<[[UInt8]]>([])
    let batches = Mutex<[LineBatch.Summary]>([])
    let events = Mutex<[FileTailer.Event]>([])

    func take(_ batch: LineBatch) {
        let copies = batch.map { Array($0) }
        lines.withLock { $0.append(contentsOf: copies) }
        batches.withLock {
            $0.append(
                LineBatch.Summary(
                    path: batch.path,
                    count: batch.count,
                    truncated: batch.skippedLines,
                    position: batch.position
                )
            )
        }
    }

    func record(_ event: FileTailer.Event) {
        events.withLock { $0.append(event) }
    }

    var strings: [String] { lines.withLock { $0.map { String(decoding: $0, as: UTF8.self) } } }
    var count: Int { lines.withLock { $0.count } }
    var eventList: [FileTailer.Event] { events.withLock { $0 } }
}

extension LineBatch {
    struct Summary: Sendable {
        var path: String
        var count: Int
        var truncated: Int
        var position: FilePosition
    }
}

/// Waits (up to a generous limit, not a timing assertion) until `condition` holds; returns whether it did.
@discardableResult
func eventually(_ limit: Duration = .seconds(60), _ condition: () -> Bool) async -> Bool {
    let clock = ContinuousClock()
    let deadline = clock.now + limit
    while clock.now < deadline {
        if condition() { return true }
        try? await Task.sleep(for: .milliseconds(5))
    }
    return condition()
}

/// Lines "prefix 0" … "prefix n-1", each with a newline.
func numbered(_ prefix: String, _ range: Range<Int>) -> String {
    range.map { "\(prefix) \($0)\n" }.joined()
}

func numberedLines(_ prefix: String, _ range: Range<Int>) -> [String] {
    range.map { "\(prefix) \($0)" }
}
