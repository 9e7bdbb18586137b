#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

#if FUZZING
/// The fuzz build's in-memory configuration tree (`-DFUZZING`, never in the daemon): when set, ``FileSystem``
/// answers from it instead of the disk — a file per path, a directory wherever a path continues with `/`. The ini
/// fuzz target writes its six files here; on disk they cost a third of its time in system calls.
public enum FuzzFiles {
    // SAFETY: set and read only by the fuzz target's single thread (libFuzzer calls it from one thread).
    nonisolated(unsafe) public static var files: [String: [UInt8]]?

    /// `path` with `.`, `..` and repeated slashes resolved, as the kernel resolves them on disk.
    static func normalised(_ path: String) -> String {
        var parts: [Substring] = []
        for part in path.split(separator: "/", omittingEmptySubsequences: true) {
            if part == "." { continue }
            if part == ".." {
                _ = parts.popLast()
            } else {
                parts.append(part)
            }
        }
        return (path.hasPrefix("/") ? "/" : "") + parts.joined(separator: "/")
    }
}
#endif

/// The module's only file-system access: reading small text files and listing directories.
enum FileSystem {
    /// Whether `path` names an existing regular file (following symbolic links).
    static func isFile(_ path: String) -> Bool {
        #if FUZZING
        if let files = FuzzFiles.files { return files[FuzzFiles.normalised(path)] != nil }
        #endif
        var st = stat()
        guard stat(path, &st) == 0 else { return false }
        return (st.st_mode & S_IFMT) == S_IFREG
    }

    /// Whether `path` names an existing directory.
    static func isDirectory(_ path: String) -> Bool {
        #if FUZZING
        if let files = FuzzFiles.files {
            let prefix = FuzzFiles.normalised(path) + "/"
            return files.keys.contains { $0.hasPrefix(prefix) }
        }
        #endif
        var st = stat()
        guard stat(path, &st) == 0 else { return false }
        return (st.st_mode & S_IFMT) == S_IFDIR
    }

    /// The whole file as UTF-8 text (invalid bytes are replaced).
    static func readText(_ path: String) throws(ConfigError) -> String {
        #if FUZZING
        if let files = FuzzFiles.files {
            guard let bytes = files[FuzzFiles.normalised(path)] else {
                throw ConfigError(
                    .unreadableFile, "cannot open \(path): No such file or directory",
                    hint: "check that the file exists and is readable")
            }
            return String(decoding: bytes, as: UTF8.self)
        }
        #endif
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else {
            let reason = String(cString: strerror(errno))
            throw ConfigError(
                .unreadableFile, "cannot open \(path): \(reason)", hint: "check that the file exists and is readable")
        }
        defer { close(fd) }
        var bytes: [UInt8] = []
        // Sized to the file (configuration files are small), so a read of a few hundred bytes does not clear 64 KiB.
        var st = stat()
        let size = fstat(fd, &st) == 0 ? Int(st.st_size) : 0
        var chunk = [UInt8](repeating: 0, count: min(max(size + 1, 512), 65536))
        while true {
            let n = chunk.withUnsafeMutableBytes { Glibc.read(fd, $0.baseAddress, $0.count) }
            if n < 0 {
                if errno == EINTR { continue }
                let reason = String(cString: strerror(errno))
                throw ConfigError(.unreadableFile, "cannot read \(path): \(reason)")
            }
            if n == 0 { break }
            bytes.append(contentsOf: chunk[0..<n])
        }
        return String(decoding: bytes, as: UTF8.self)
    }

    /// Names of the entries of directory `path` (no `.`/`..`, no hidden files), sorted by code point as
    /// Python's `sorted(glob(...))` does; empty when the directory does not exist.
    static func list(_ path: String) -> [String] {
        #if FUZZING
        if let files = FuzzFiles.files {
            let prefix = FuzzFiles.normalised(path) + "/"
            var names = Set<String>()
            for key in files.keys where key.hasPrefix(prefix) {
                let rest = key.dropFirst(prefix.count)
                let name = String(rest.prefix { $0 != "/" })
                if !name.isEmpty, !name.hasPrefix(".") { names.insert(name) }
            }
            return names.sorted {
                Array($0.unicodeScalars.map(\.value)).lexicographicallyPrecedes($1.unicodeScalars.map(\.value))
            }
        }
        #endif
        guard let dir = opendir(path) else { return [] }
        defer { closedir(dir) }
        var names: [String] = []
        while let entry = readdir(dir) {
            let name = withUnsafePointer(to: entry.pointee.d_name) {
                $0.withMemoryRebound(to: CChar.self, capacity: Int(NAME_MAX) + 1) { String(cString: $0) }
            }
            if name.hasPrefix(".") { continue }
            names.append(name)
        }
        return names.sorted {
            Array($0.unicodeScalars.map(\.value)).lexicographicallyPrecedes($1.unicodeScalars.map(\.value))
        }
    }
}

/// Path helpers (plain string manipulation; no normalisation of `..`).
enum Path {
    /// `a/b` joined; `b` returned as is when absolute.
    static func join(_ a: String, _ b: String) -> String {
        if b.hasPrefix("/") || a.isEmpty { return b }
        return a.hasSuffix("/") ? a + b : a + "/" + b
    }

    /// The directory part of `path` (`.` when none).
    static func directory(of path: String) -> String {
        guard let slash = path.lastIndex(of: "/") else { return "." }
        if slash == path.startIndex { return "/" }
        return String(path[..<slash])
    }

    /// The last path component.
    static func base(of path: String) -> String {
        guard let slash = path.lastIndex(of: "/") else { return path }
        return String(path[path.index(after: slash)...])
    }
}
