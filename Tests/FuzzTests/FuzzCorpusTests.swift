import FuzzTargets
import Testing

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// Every file of `fuzz/corpus/<target>/` (the seeds and every input that once crashed a target, named
/// `crash-…`) replayed through its target in the normal build: a target that traps or breaks an invariant
/// aborts the test process.
@Suite struct FuzzCorpusTests {
    static let corpus: String = {
        var path = #filePath
        for _ in 0..<3 { path = String(path[..<path.lastIndex(of: "/")!]) }
        return path + "/fuzz/corpus"
    }()

    @Test(arguments: FuzzTargets.names)
    func corpusReplays(_ target: String) throws {
        let files = Self.files(in: Self.corpus + "/" + target)
        #expect(files.count >= 3, "each target has a few seeds in fuzz/corpus/\(target)")
        for file in files {
            let bytes = try #require(Self.read(file), "cannot read \(file)")
            #expect(FuzzTargets.run(target, bytes))
        }
    }

    @Test func everyTargetHasACorpus() {
        for target in FuzzTargets.names {
            #expect(access(Self.corpus + "/" + target, R_OK) == 0, "fuzz/corpus/\(target) is missing")
        }
    }

    static func files(in directory: String) -> [String] {
        guard let dir = opendir(directory) else { return [] }
        defer { closedir(dir) }
        var names: [String] = []
        while let entry = readdir(dir) {
            let name = withUnsafeBytes(of: entry.pointee.d_name) { raw in
                String(decoding: raw.prefix(while: { $0 != 0 }), as: UTF8.self)
            }
            if !name.hasPrefix(".") { names.append(directory + "/" + name) }
        }
        return names.sorted()
    }

    static func read(_ path: String) -> [UInt8]? {
        guard let file = fopen(path, "rb") else { return nil }
        defer { fclose(file) }
        var bytes: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 65536)
        while true {
            let n = fread(&chunk, 1, chunk.count, file)
            if n <= 0 { break }
            bytes += chunk[0..<n]
        }
        return bytes
    }
}
