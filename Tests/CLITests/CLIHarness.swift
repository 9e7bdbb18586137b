import Foundation

/// Runs the built `portcullis` binary (next to the test bundle) and captures its output.
enum CLI {
    /// The result of one run.
    struct Result {
        /// Exit status.
        var status: Int32
        /// Standard output.
        var stdout: String
        /// Standard error.
        var stderr: String
    }

    /// Directory holding the build products (the test bundle lives there too).
    static let productsDirectory: URL = {
        let exe = URL(
            fileURLWithPath: (try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/exe"))
                ?? CommandLine.arguments[0])
        var dir = exe.deletingLastPathComponent()
        // Inside an .xctest bundle directory (Darwin layout), climb out of it.
        while dir.pathComponents.contains(where: { $0.hasSuffix(".xctest") }) { dir.deleteLastPathComponent() }
        return dir
    }()

    /// The package root (for samples/).
    static let packageRoot: URL = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
        .deletingLastPathComponent().deletingLastPathComponent()

    /// Path of the built executable `name`.
    static func binary(_ name: String = "portcullis") -> String {
        productsDirectory.appendingPathComponent(name).path
    }

    /// Runs `portcullis` (or another product, or an absolute path) with `arguments`, feeding `stdin` when given;
    /// `environment` replaces the inherited one.
    static func run(
        _ arguments: [String], stdin: Data? = nil, executable: String = "portcullis",
        environment: [String: String]? = nil
    ) throws -> Result {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: executable.hasPrefix("/") ? executable : binary(executable))
        process.arguments = arguments
        if let environment { process.environment = environment }
        let out = Pipe()
        // stderr goes to a file, so reading stdout to the end can never dead-lock on a full stderr pipe.
        let errURL = FileManager.default.temporaryDirectory.appendingPathComponent("portcullis-cli-\(UUID()).err")
        FileManager.default.createFile(atPath: errURL.path, contents: nil)
        let errHandle = try FileHandle(forWritingTo: errURL)
        defer { try? FileManager.default.removeItem(at: errURL) }
        process.standardOutput = out
        process.standardError = errHandle
        let input = Pipe()
        process.standardInput = stdin == nil ? FileHandle.nullDevice : input
        try process.run()
        try errHandle.close()
        if let stdin {
            input.fileHandleForWriting.write(stdin)
            try input.fileHandleForWriting.close()
        }
        let outData = out.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        let errData = (try? Data(contentsOf: errURL)) ?? Data()
        return Result(
            status: process.terminationStatus, stdout: String(decoding: outData, as: UTF8.self),
            stderr: String(decoding: errData, as: UTF8.self))
    }

    /// A fresh temporary directory for one test.
    static func temporaryDirectory() throws -> URL {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("portcullis-cli-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        return dir
    }

    /// Writes `text` to `name` inside `dir` and returns the path.
    @discardableResult
    static func write(_ text: String, to name: String, in dir: URL) throws -> String {
        let url = dir.appendingPathComponent(name)
        try FileManager.default.createDirectory(at: url.deletingLastPathComponent(), withIntermediateDirectories: true)
        try text.write(to: url, atomically: true, encoding: .utf8)
        return url.path
    }
}
