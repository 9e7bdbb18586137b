import Foundation
import Testing

#if canImport(Glibc)
import Glibc
#endif

/// Two throw-away network namespaces joined by a veth pair: `defended` (192.0.2.1, 2001:db8::1, a TCP listener)
/// and `attacker` (192.0.2.2 + 192.0.2.3, 2001:db8::2 + 2001:db8::3). Created per test, always deleted.
final class NetnsLab: @unchecked Sendable {
    // SAFETY: the listener process is only touched by the test that owns the lab.
    static let defendedV4 = "192.0.2.1"
    static let attackerV4 = "192.0.2.2"
    static let otherV4 = "192.0.2.3"
    static let defendedV6 = "2001:db8::1"
    static let attackerV6 = "2001:db8::2"
    static let otherV6 = "2001:db8::3"

    let defended: String
    let attacker: String
    private var listener: Process?

    static var isRoot: Bool { geteuid() == 0 }

    /// Runs `body` with a fresh lab; the namespaces (and the listener) are removed afterwards, also on failure.
    static func with<T>(ports: [Int] = [8022], _ body: (NetnsLab) async throws -> T) async throws -> T {
        let lab = try await offPool { try NetnsLab() }
        do {
            try await offPool { try lab.startListener(ports: ports) }
            let result = try await body(lab)
            await offPool { lab.destroy() }
            return result
        } catch {
            await offPool { lab.destroy() }
            throw error
        }
    }

    /// Runs blocking work (child processes) on a thread of its own, not on Swift's small cooperative pool, so the
    /// other test suites running in parallel are not starved. (Not `DispatchQueue.global()`: on Linux its threads
    /// are the cooperative pool's.)
    static func offPool<T: Sendable>(_ body: @escaping @Sendable () throws -> T) async throws -> T {
        try await withCheckedThrowingContinuation { continuation in
            Thread.detachNewThread { continuation.resume(with: Result { try body() }) }
        }
    }

    /// Non-throwing variant of ``offPool(_:)``.
    static func offPool(_ body: @escaping @Sendable () -> Void) async {
        await withCheckedContinuation { continuation in
            Thread.detachNewThread {
                body()
                continuation.resume()
            }
        }
    }

    private init() throws {
        let tag = String(UInt32.random(in: 0...UInt32.max), radix: 16)
        defended = "pcl-fw-\(tag)-d"
        attacker = "pcl-fw-\(tag)-a"
        let vd = "pfd\(tag)"
        let va = "pfa\(tag)"
        do {
            try Self.sh(["ip", "netns", "add", defended])
            try Self.sh(["ip", "netns", "add", attacker])
            try Self.sh([
                "ip", "link", "add", vd, "netns", defended, "type", "veth", "peer", "name", va, "netns", attacker,
            ])
            for (ns, dev, addrs) in [
                (defended, vd, ["\(Self.defendedV4)/24", "\(Self.defendedV6)/64"]),
                (
                    attacker, va,
                    ["\(Self.attackerV4)/24", "\(Self.otherV4)/24", "\(Self.attackerV6)/64", "\(Self.otherV6)/64"]
                ),
            ] {
                try Self.sh(["ip", "-n", ns, "link", "set", "lo", "up"])
                for a in addrs {
                    var cmd = ["ip", "-n", ns, "addr", "add", a, "dev", dev]
                    if a.contains(":") { cmd.append("nodad") }
                    try Self.sh(cmd)
                }
                try Self.sh(["ip", "-n", ns, "link", "set", dev, "up"])
            }
        } catch {
            destroy()
            throw error
        }
    }

    func destroy() {
        if let listener, listener.isRunning {
            kill(listener.processIdentifier, SIGKILL)
            listener.waitUntilExit()
        }
        listener = nil
        _ = try? Self.sh(["ip", "netns", "del", defended])
        _ = try? Self.sh(["ip", "netns", "del", attacker])
    }

    private func startListener(ports: [Int]) throws {
        let script = """
            import socket, sys, threading
            def serve(s):
                while True:
                    c, _ = s.accept()
                    c.close()
            for p in sys.argv[1:]:
                s = socket.socket(socket.AF_INET6, socket.SOCK_STREAM)
                s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
                s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
                s.bind(("::", int(p)))
                s.listen(128)
                threading.Thread(target=serve, args=(s,), daemon=True).start()
            print("ready", flush=True)
            threading.Event().wait()
            """
        let p = Process()
        p.executableURL = URL(fileURLWithPath: "/usr/sbin/ip")
        p.arguments = ["netns", "exec", defended, "/usr/bin/python3", "-c", script] + ports.map(String.init)
        let out = Pipe()
        p.standardOutput = out
        p.standardError = FileHandle.nullDevice
        try p.run()
        listener = p
        let line = String(decoding: out.fileHandleForReading.availableData, as: UTF8.self)
        guard line.contains("ready") else {
            throw LabError(message: "listener did not start in \(defended)")
        }
    }

    /// Result of a TCP connect from the attacker namespace.
    enum Connect: String { case connected, refused, timeout, unreachable, error }

    /// Connects from `source` (an attacker address) to the defended address of the same family.
    func connect(from source: String, port: Int = 8022, timeout: Double = 1.5) async throws -> Connect {
        let v6 = source.contains(":")
        let target = v6 ? Self.defendedV6 : Self.defendedV4
        let script = """
            import errno, socket, sys
            fam = socket.AF_INET6 if ":" in sys.argv[1] else socket.AF_INET
            s = socket.socket(fam, socket.SOCK_STREAM)
            s.bind((sys.argv[1], 0))
            s.settimeout(float(sys.argv[4]))
            try:
                s.connect((sys.argv[2], int(sys.argv[3])))
                print("connected")
            except ConnectionRefusedError:
                print("refused")
            except socket.timeout:
                print("timeout")
            except OSError as e:
                print("unreachable" if e.errno in (errno.EHOSTUNREACH, errno.ENETUNREACH) else "error")
            """
        let argv = [
            "ip", "netns", "exec", attacker, "/usr/bin/python3", "-c", script, source, target, String(port),
            String(timeout),
        ]
        let output = try await Self.offPool { try Self.sh(argv) }
        return Connect(rawValue: output.trimmingCharacters(in: .whitespacesAndNewlines)) ?? .error
    }

    /// Runs `nft` inside the defended namespace (never the host's).
    @discardableResult
    func nft(_ args: [String], input: String? = nil) async throws -> String {
        precondition(defended.hasPrefix("pcl-fw-"))
        let argv = ["ip", "netns", "exec", defended, "nft"] + args
        return try await Self.offPool { try Self.sh(argv, input: input) }
    }

    /// Runs `script` with sh inside the defended namespace, in the background (another process committing to
    /// nftables); the caller terminates it.
    func background(_ script: String) throws -> Process {
        precondition(defended.hasPrefix("pcl-fw-"))
        let p = Process()
        p.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        p.environment = ["PATH": "/usr/sbin:/usr/bin:/sbin:/bin", "LC_ALL": "C"]
        p.arguments = ["ip", "netns", "exec", defended, "sh", "-c", script]
        p.standardOutput = FileHandle.nullDevice
        p.standardError = FileHandle.nullDevice
        try p.run()
        return p
    }

    /// Polls `condition` every 100 ms until it holds or `limit` passes; returns whether it held.
    static func eventually(
        within limit: Duration = .seconds(8), _ condition: () async throws -> Bool
    ) async rethrows -> Bool {
        let clock = ContinuousClock()
        let end = clock.now.advanced(by: limit)
        while clock.now < end {
            if try await condition() { return true }
            try? await Task.sleep(for: .milliseconds(100))
        }
        return try await condition()
    }

    struct LabError: Error, CustomStringConvertible {
        let message: String
        var description: String { message }
    }

    /// Runs a command, returns stdout; throws with stderr when it fails.
    @discardableResult
    static func sh(_ argv: [String], input: String? = nil) throws -> String {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        p.arguments = argv
        p.environment = ["PATH": "/usr/sbin:/usr/bin:/sbin:/bin", "LC_ALL": "C"]
        let out = Pipe()
        let err = Pipe()
        p.standardOutput = out
        p.standardError = err
        let inPipe = Pipe()
        p.standardInput = input == nil ? FileHandle.nullDevice : inPipe
        try p.run()
        if let input {
            inPipe.fileHandleForWriting.write(Data(input.utf8))
            try inPipe.fileHandleForWriting.close()
        }
        let stdout = out.fileHandleForReading.readDataToEndOfFile()
        let stderr = err.fileHandleForReading.readDataToEndOfFile()
        p.waitUntilExit()
        guard p.terminationStatus == 0 else {
            throw LabError(
                message: "\(argv.joined(separator: " ")) failed (\(p.terminationStatus)): "
                    + String(decoding: stderr, as: UTF8.self))
        }
        return String(decoding: stdout, as: UTF8.self)
    }
}
