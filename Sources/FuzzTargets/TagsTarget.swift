import Daemon

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// Action tag substitution (`CommandAction.substitute`, the entry point on main), with log text as the value.
///
/// The first byte picks one of our command shapes; the rest, up to a NUL, is the value of `<matches>` and
/// `<F-USER>` (what an attacker writes into a log line); after the NUL comes a template of the fuzzer's own,
/// substituted but never run (with no tags it must come back unchanged). For a quarter of the inputs
/// (deterministically, by hash) and for every value containing `pwn`, the rendered shape runs under `/bin/sh` in
/// a scratch directory whose only command is `pwn` (it creates a canary file): the canary must never appear, and
/// the command must print the value exactly. Known-injectable shapes from issue 7 (heredocs, backticks,
/// `$(…)` with quotes inside) are left out until the rewrite of the substitution lands.
final class TagsTarget {
    // SAFETY: libFuzzer calls the target from one thread; the scratch directory belongs to this process.
    nonisolated(unsafe) static let shared = TagsTarget()

    /// Shapes whose output is exactly the value and a newline.
    static let shapes = [
        "printf '%s\\n' <matches>",
        "printf '%s\\n' '<matches>'",
        "printf '%s\\n' \"<matches>\"",
        "x=<matches>; printf '%s\\n' \"$x\"",
        "x='<matches>'; printf '%s\\n' \"$x\"",
        "x=\"<matches>\"; printf '%s\\n' \"$x\"",
        "printf '%s\\n' \"<F-USER>\" >&2; printf '%s\\n' <matches>",
        "test -n \"<ip>\" && printf '%s\\n' \"<matches>\" || printf 'no ip\\n'",
        "printf '%s' \"\" ; printf '%s\\n' \"\"<matches>\"\"",
        "set -- <matches>; printf '%s\\n' \"$1\"",
    ]

    let directory: String
    let canary: String

    init() {
        directory = "\(FileManagerless.scratchBase())/portcullis-fuzz-tags-\(getpid())"
        canary = directory + "/canary"
        mkdir(directory, 0o700)
        mkdir(directory + "/bin", 0o700)
        FileManagerless.write(directory + "/bin/pwn", Array("#!/bin/sh\n: > \"\(canary)\"\n".utf8))
        chmod(directory + "/bin/pwn", 0o700)
    }

    func run(_ data: UnsafeRawBufferPointer) {
        guard let first = data.first else { return }
        let parts = splitParts(UnsafeRawBufferPointer(rebasing: data[1...]), limit: 2)
        let value = String(decoding: parts[0], as: UTF8.self)
        if parts.count > 1 {
            let template = String(decoding: parts[1], as: UTF8.self)
            let same = CommandAction.substitute(template, tags: [:])
            if same != template { FuzzTargets.fail("tags", "a template without tags changed: \(template) -> \(same)") }
            _ = CommandAction.substitute(template, tags: ["matches": value, "ip": "192.0.2.1", "F-USER": value])
        }
        let shapeIndex = Int(first) % Self.shapes.count
        let shape = Self.shapes[shapeIndex]
        let tags = ["matches": value, "ip": "192.0.2.1", "F-USER": value]
        let command = CommandAction.substitute(shape, tags: tags)
        var hash: UInt32 = 2_166_136_261
        for byte in data { hash = (hash ^ UInt32(byte)) &* 16_777_619 }
        guard hash % 4 == 0 || contains(parts[0], Array("pwn".utf8)) else { return }
        // The shell cannot carry NUL; a value with one is cut there by sh, so only compare the rest.
        let output = runShell(command)
        if access(canary, F_OK) == 0 {
            unlink(canary)
            FuzzTargets.fail("tags", "shape \(shapeIndex) ran the value: \(command)")
        }
        let expected = Array(value.utf8.prefix(while: { $0 != 0 })) + [0x0A]
        if !value.utf8.contains(0), output != expected {
            FuzzTargets.fail(
                "tags",
                "shape \(shapeIndex) printed \(String(decoding: output, as: UTF8.self).debugDescription) "
                    + "for \(value.debugDescription): \(command)")
        }
    }

    /// Runs `command` with `/bin/sh -c` in the scratch directory (PATH = its bin/), returns its stdout.
    func runShell(_ command: String) -> [UInt8] {
        var pipeFDs: [Int32] = [0, 0]
        guard pipe(&pipeFDs) == 0 else { FuzzTargets.fail("tags", "pipe failed") }
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0)
        posix_spawn_file_actions_adddup2(&actions, pipeFDs[1], 1)
        posix_spawn_file_actions_addopen(&actions, 2, "/dev/null", O_WRONLY, 0)
        posix_spawn_file_actions_addclose(&actions, pipeFDs[0])
        posix_spawn_file_actions_addclose(&actions, pipeFDs[1])
        let script = "cd '\(directory)' || exit 99\n" + command
        let argv = ["/bin/sh", "-c", script]
        let env = ["PATH=\(directory)/bin", "HOME=\(directory)", "LC_ALL=C"]
        var pid: pid_t = 0
        let rc = withCStrings(argv) { cArgv in
            withCStrings(env) { cEnv in posix_spawn(&pid, "/bin/sh", &actions, nil, cArgv, cEnv) }
        }
        close(pipeFDs[1])
        defer { close(pipeFDs[0]) }
        guard rc == 0 else { FuzzTargets.fail("tags", "posix_spawn /bin/sh failed: \(rc)") }
        var output: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: 4096)
        while true {
            let n = buffer.withUnsafeMutableBytes { read(pipeFDs[0], $0.baseAddress, $0.count) }
            if n < 0, errno == EINTR { continue }
            if n <= 0 { break }
            output += buffer[0..<n]
        }
        var status: Int32 = 0
        while waitpid(pid, &status, 0) < 0, errno == EINTR {}
        return output
    }
}

/// Calls `body` with a NULL-terminated C array of `strings`.
func withCStrings<R>(_ strings: [String], _ body: (UnsafePointer<UnsafeMutablePointer<CChar>?>) -> R) -> R {
    var pointers: [UnsafeMutablePointer<CChar>?] = strings.map { strdup($0) }
    pointers.append(nil)
    defer { for p in pointers { free(p) } }
    return pointers.withUnsafeBufferPointer { body($0.baseAddress!) }
}
