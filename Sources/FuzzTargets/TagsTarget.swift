import Daemon

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// Action tag substitution (`ActionScript.render`, the injection-proof renderer): log text must only ever reach
/// the shell as a positional parameter, never as script text.
///
/// The first byte picks one of our command shapes; the rest, up to a NUL, is the value of `<matches>` and
/// `<F-USER>` (what an attacker writes into a log line); after the NUL comes a template of the fuzzer's own.
/// Structural check, every input, for the fuzzer's template and the shape: the script text does not depend on
/// the untrusted values (rendered again with other values it is the same, except where a number lands in `$((…))`)
/// and the values are exactly the arguments. The fuzzer's template is never run. For a quarter of the inputs
/// (deterministically, by hash) and for every value containing `pwn`, the rendered shape runs under `/bin/sh` in a
/// scratch directory whose only command is `pwn` (it creates a canary file): the canary must never appear, and the
/// shape must print the value exactly.
final class TagsTarget {
    // SAFETY: libFuzzer calls the target from one thread; the scratch directory belongs to this process.
    nonisolated(unsafe) static let shared = TagsTarget()

    /// Shapes that print the value and a newline (`strips`: through `$(…)`, which drops trailing newlines),
    /// including the shapes issue 7 found injectable in the old substitution, and single-quoted or here-document
    /// scripts of a nested shell (which must expand the exported variable, never parse the value).
    static let shapes: [(template: String, strips: Bool)] = [
        ("printf '%s\\n' <matches>", false),
        ("/bin/sh -c 'printf \"%s\\n\" \"<matches>\"'", false),
        ("printf '%s\\n' \"<matches>\"", false),
        ("x=<matches>; printf '%s\\n' \"$x\"", false),
        ("/bin/sh -c 'x=\"<matches>\"; printf \"%s\\n\" \"$x\"'", false),
        ("x=\"<matches>\"; printf '%s\\n' \"$x\"", false),
        ("printf '%s\\n' \"<F-USER>\" >&2; printf '%s\\n' <matches>", false),
        ("set -- <matches>; printf '%s\\n' \"$1\"", false),
        ("msg=\"$(printf '%s' \"<matches>\")\"; printf '%s\\n' \"$msg\"", true),
        ("x=`printf '%s' \"<matches>\"`; printf '%s\\n' \"$x\"", true),
        ("# it's a comment with an apostrophe\nprintf '%s\\n' \"<matches>\"", false),
        ("while IFS= read -r l; do printf '%s\\n' \"$l\"; done <<EOF\n<matches>\nEOF", false),
        ("/bin/sh <<'EOF'\nprintf '%s\\n' \"<matches>\"\nEOF", false),
        ("case \"<matches>\" in *) printf '%s\\n' \"<matches>\";; esac", false),
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

    static func values(_ value: String) -> ActionValues {
        ActionValues(["ip": "192.0.2.1", "name": "demo"], untrusted: ["matches": value], captures: ["user": value])
    }

    /// The value the structural check renders every template with a second time.
    static let hostileValue = "x'\"$(pwn)`pwn`;\n"
    /// Each shape rendered with `hostileValue`, once (the shapes are fixed; rendering them again per input would
    /// compute the same script).
    static let hostileShapes = shapes.map { ActionScript.render($0.template, values: values(hostileValue)) }

    /// The structural check: the script is the same whatever the untrusted values are. `other` is the template
    /// rendered with `hostileValue` when already known. Returns the rendering with `value`.
    @discardableResult
    static func checkStructure(
        _ template: String, _ value: String, other knownOther: ActionScript? = nil
    ) -> ActionScript {
        let rendered = ActionScript.render(template, values: values(value))
        // Arguments are the values (a trusted one may be referenced too, e.g. inside a quoted here-document).
        let known: Set<String> = [value, "192.0.2.1", "demo"]
        for argument in rendered.arguments where !known.contains(argument) {
            FuzzTargets.fail("tags", "argument \(argument.debugDescription) is none of the values")
        }
        // An empty capture is written as nothing (fail2ban's empty `<F-*>`): nothing of the log reaches the script.
        guard !value.isEmpty else { return rendered }
        // A number is written into `$((…))` as itself (the renderer's rule); any other value never is.
        var digits = Substring(value).utf8[...]
        if digits.first == UInt8(ascii: "-") { digits = digits.dropFirst() }
        guard digits.isEmpty || !digits.allSatisfy({ $0 >= 0x30 && $0 <= 0x39 }) else { return rendered }
        let other = knownOther ?? ActionScript.render(template, values: values(hostileValue))
        if other.script != rendered.script {
            FuzzTargets.fail(
                "tags",
                "the script depends on the value \(value.debugDescription):\n\(rendered.script)\n---\n\(other.script)")
        }
        return rendered
    }

    func run(_ data: UnsafeRawBufferPointer) {
        guard let first = data.first else { return }
        let parts = splitParts(UnsafeRawBufferPointer(rebasing: data[1...]), limit: 2)
        let value = String(decoding: parts[0], as: UTF8.self)
        if parts.count > 1 { Self.checkStructure(String(decoding: parts[1], as: UTF8.self), value) }
        let shapeIndex = Int(first) % Self.shapes.count
        let shape = Self.shapes[shapeIndex]
        let rendered = Self.checkStructure(shape.template, value, other: Self.hostileShapes[shapeIndex])
        var hash: UInt32 = 2_166_136_261
        for byte in data { hash = (hash ^ UInt32(byte)) &* 16_777_619 }
        guard hash % 4 == 0 || contains(parts[0], Array("pwn".utf8)) else { return }
        // The shell cannot carry NUL: values with one are only checked for the canary.
        let output = runShell(rendered)
        if access(canary, F_OK) == 0 {
            unlink(canary)
            FuzzTargets.fail("tags", "shape \(shapeIndex) ran the value: \(rendered.script)")
        }
        var expected = Array(value.utf8)
        if shape.strips { while expected.last == 0x0A { expected.removeLast() } }
        expected.append(0x0A)
        if !value.utf8.contains(0), output != expected {
            FuzzTargets.fail(
                "tags",
                "shape \(shapeIndex) printed \(String(decoding: output, as: UTF8.self).debugDescription) "
                    + "for \(value.debugDescription): \(rendered.script)")
        }
    }

    /// Runs the script as the daemon does (`/bin/sh -c SCRIPT sh ARG…`) in the scratch directory (PATH = its
    /// bin/), returns its stdout.
    func runShell(_ rendered: ActionScript) -> [UInt8] {
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
        var argv = rendered.argv
        argv[2] = "cd '\(directory)' || exit 99\n" + rendered.script
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
