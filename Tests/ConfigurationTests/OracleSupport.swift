import Foundation
import Testing

@testable import Configuration

/// Runs fail2ban's own Python reader as a test oracle.
enum Oracle {
    /// The Python interpreter that has the fail2ban package (Debian's, not a pyenv shim).
    static let python = "/usr/bin/python3"

    /// Runs `script` with `arguments`, returns stdout; fails the test with stderr when it exits non-zero.
    static func run(_ script: String, _ arguments: [String]) throws -> Data {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("pcl-oracle-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        let scriptURL = dir.appendingPathComponent("oracle.py")
        try script.write(to: scriptURL, atomically: true, encoding: .utf8)
        let outURL = dir.appendingPathComponent("out.json")
        let errURL = dir.appendingPathComponent("err.txt")
        FileManager.default.createFile(atPath: outURL.path, contents: nil)
        FileManager.default.createFile(atPath: errURL.path, contents: nil)
        let process = Process()
        process.executableURL = URL(fileURLWithPath: python)
        process.arguments = [scriptURL.path] + arguments
        process.standardOutput = try FileHandle(forWritingTo: outURL)
        process.standardError = try FileHandle(forWritingTo: errURL)
        process.currentDirectoryURL = dir
        try process.run()
        process.waitUntilExit()
        let out = try Data(contentsOf: outURL)
        if process.terminationStatus != 0 {
            let err = (try? String(contentsOf: errURL, encoding: .utf8)) ?? ""
            throw OracleFailure(message: "oracle exited \(process.terminationStatus): \(err)")
        }
        return out
    }

    /// Copies a configuration tree to a fresh temporary directory (removed by the caller).
    static func copyTree(_ source: String) throws -> String {
        let dest = FileManager.default.temporaryDirectory.appendingPathComponent("pcl-tree-\(UUID().uuidString)").path
        try FileManager.default.copyItem(atPath: source, toPath: dest)
        return dest
    }
}

/// The oracle could not be run.
struct OracleFailure: Error, CustomStringConvertible {
    var message: String
    var description: String { message }
}

/// A temporary directory with files written by a test; removed by `remove()`.
struct TempTree {
    let root: String

    init() throws {
        root = FileManager.default.temporaryDirectory.appendingPathComponent("pcl-cfg-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: root, withIntermediateDirectories: true)
    }

    /// Writes `text` to `relative` (creating directories).
    func write(_ relative: String, _ text: String) throws {
        let path = root + "/" + relative
        let dir = (path as NSString).deletingLastPathComponent
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        try text.write(toFile: path, atomically: true, encoding: .utf8)
    }

    func remove() { try? FileManager.default.removeItem(atPath: root) }

    var tree: ConfigTree { ConfigTree(root: root) }
}
