import Configuration

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// The INI reader with `%(…)s` interpolation, `<known/…>`, `[INCLUDES] before/after` and `.local`/`.d`
/// overrides, through the public loaders. The input is up to six files separated by NUL bytes, written into a
/// scratch tree: `filter.d/fz.conf`, `filter.d/fz.local`, `filter.d/inc.conf`, `jail.conf`, `action.d/act.conf`,
/// `portcullis.conf`. Every loader must return a value or a `ConfigError` that names what is wrong.
final class IniTarget {
    // SAFETY: libFuzzer calls the target from one thread; the scratch tree belongs to this process.
    nonisolated(unsafe) static let shared = IniTarget()

    static let files = [
        "filter.d/fz.conf", "filter.d/fz.local", "filter.d/inc.conf", "jail.conf", "action.d/act.conf",
        "portcullis.conf",
    ]
    let root: String

    init() {
        let base = FileManagerless.scratchBase()
        root = "\(base)/portcullis-fuzz-ini-\(getpid())"
        for dir in [root, root + "/filter.d", root + "/action.d"] { mkdir(dir, 0o700) }
        atexit {
            // Best effort: the tree is a handful of small files.
            let root = "\(FileManagerless.scratchBase())/portcullis-fuzz-ini-\(getpid())"
            for file in IniTarget.files { unlink(root + "/" + file) }
            for dir in ["/filter.d", "/action.d", ""] { rmdir(root + dir) }
        }
    }

    func run(_ data: UnsafeRawBufferPointer) {
        let parts = splitParts(data, limit: Self.files.count)
        #if FUZZING
        // The fuzz build reads the tree from memory (Configuration's FuzzFiles): the same bytes, no system calls.
        var files: [String: [UInt8]] = [:]
        for (i, file) in Self.files.enumerated() where i < parts.count { files[root + "/" + file] = parts[i] }
        FuzzFiles.files = files
        #else
        for (i, file) in Self.files.enumerated() {
            let path = root + "/" + file
            if i < parts.count {
                FileManagerless.write(path, parts[i])
            } else {
                unlink(path)
            }
        }
        #endif
        let tree = ConfigTree(root: root)
        check { () throws(ConfigError) in _ = try tree.loadFilter("fz") }
        check { () throws(ConfigError) in _ = try tree.loadFilter("fz[mode=aggressive, port=2222]") }
        check { () throws(ConfigError) in _ = try tree.loadMain() }
        let jails = tree.loadJails()
        for (_, error) in jails.errors where error.description.isEmpty {
            FuzzTargets.fail("ini", "a jail error has no message")
        }
        for jail in jails.jails.prefix(4) {
            check { () throws(ConfigError) in _ = try tree.loadAction("act", jail: jail) }
        }
    }

    private func check(_ body: () throws(ConfigError) -> Void) {
        do {
            try body()
        } catch {
            if error.description.isEmpty { FuzzTargets.fail("ini", "a ConfigError has no message") }
        }
    }
}

/// The few file operations the targets need, in libc.
enum FileManagerless {
    /// `/dev/shm` when it exists (no disk writes per input), else `/tmp`.
    static func scratchBase() -> String {
        var st = stat()
        return stat("/dev/shm", &st) == 0 ? "/dev/shm" : "/tmp"
    }

    /// Replaces `path` with `bytes`.
    static func write(_ path: String, _ bytes: [UInt8]) {
        let fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o600)
        guard fd >= 0 else { FuzzTargets.fail("ini", "cannot write the scratch file \(path)") }
        defer { close(fd) }
        bytes.withUnsafeBytes { raw in
            var offset = 0
            while offset < raw.count {
                let n = Glibc.write(fd, raw.baseAddress! + offset, raw.count - offset)
                if n <= 0 { return }
                offset += n
            }
        }
    }
}
