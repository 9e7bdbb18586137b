import Foundation

/// Runs the system Python (the one fail2ban uses) as a test oracle.
enum Python {
    static let path = "/usr/bin/python3"
    static var available: Bool { FileManager.default.isExecutableFile(atPath: path) }

    /// Runs `script` with `input` on stdin; returns stdout (throws with stderr on failure).
    static func run(_ script: String, input: [UInt8] = []) throws -> [UInt8] {
        try Exec.run(path, ["-c", script], input: input).stdout
    }
}

/// Runs a program to completion, collecting stdout/stderr and the exit status.
enum Exec {
    struct Result {
        var stdout: [UInt8]
        var stderr: [UInt8]
        var status: Int32
        var text: String { String(decoding: stdout, as: UTF8.self) }
    }

    struct Failure: Error, CustomStringConvertible {
        var description: String
    }

    static func run(
        _ executable: String, _ arguments: [String], input: [UInt8] = [], check: Bool = true
    ) throws
        -> Result
    {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: executable)
        process.arguments = arguments
        let stdin = Pipe()
        let stdout = Pipe()
        let stderr = Pipe()
        process.standardInput = stdin
        process.standardOutput = stdout
        process.standardError = stderr
        try process.run()
        // Drain both pipes concurrently so a chatty child never blocks.
        let errData = Mutex2<Data>(Data())
        let errThread = Thread { errData.set(stderr.fileHandleForReading.readDataToEndOfFile()) }
        errThread.start()
        if !input.isEmpty { stdin.fileHandleForWriting.write(Data(input)) }
        try? stdin.fileHandleForWriting.close()
        let out = stdout.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        while !errData.isSet { usleep(1000) }
        let result = Result(stdout: Array(out), stderr: Array(errData.get()), status: process.terminationStatus)
        if check, result.status != 0 {
            throw Failure(
                description: "\(executable) exited \(result.status): \(String(decoding: result.stderr, as: UTF8.self))")
        }
        return result
    }
}

/// A tiny lock-protected cell for the stderr reader.
final class Mutex2<T>: @unchecked Sendable {
    // SAFETY: every access holds `lock`.
    private let lock = NSLock()
    private var value: T
    private(set) var isSetFlag = false
    init(_ value: T) { self.value = value }
    func set(_ v: T) {
        lock.withLock {
            value = v
            isSetFlag = true
        }
    }
    func get() -> T { lock.withLock { value } }
    var isSet: Bool { lock.withLock { isSetFlag } }
}
