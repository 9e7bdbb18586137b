internal import CNFTables
internal import CNetlink
import Core

#if canImport(Glibc)
import Glibc
#endif

/// The firewall backend's thread: a ``Core/ThreadExecutor`` whose thread first enters the named network namespace
/// (`/run/netns/NAME`; nil stays in the process's own) and then creates the ``NFTContext``, so every libnftables
/// call of the backend acts there while the rest of the process stays where it is.
enum NFTExecutor {
    /// Starts the thread, enters the namespace and creates the context there; returns once that succeeded (the
    /// context is handed over to the actor that owns it and uses it only on this thread). A failure ends the
    /// thread and is thrown.
    static func start(networkNamespace: String?) throws(FirewallError) -> sending (ThreadExecutor, NFTContext) {
        let executor = ThreadExecutor(name: "nftables")
        do {
            try executor.start()
        } catch {
            throw FirewallError(code: .nftables, message: "cannot start the libnftables thread: \(error)")
        }
        do throws(FirewallError) {
            let context = try executor.perform { () throws(FirewallError) -> sending NFTContext in
                if let name = networkNamespace { try Syscall.enterNetworkNamespace(name) }
                do throws(NFTError) { return try NFTContext() } catch {
                    throw FirewallError(
                        code: .nftables, message: "cannot create libnftables context", underlying: error)
                }
            }
            return (executor, context)
        } catch {
            executor.shutdown()
            throw error
        }
    }
}

/// The module's libc calls, in one place.
enum Syscall {
    /// `strerror(errno)` with the errno number.
    static func errorText(_ code: Int32 = errno) -> String {
        "\(String(cString: strerror(code))) (errno \(code))"
    }

    /// The whole content of a file, nil when it cannot be opened or read. EINTR retried.
    static func readFile(_ path: String) -> [UInt8]? {
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { return nil }
        defer { close(fd) }
        var out: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 65536)
        while true {
            let n = chunk.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
            if n < 0 && errno == EINTR { continue }
            guard n >= 0 else { return nil }
            if n == 0 { return out }
            out += chunk[0..<n]
        }
    }

    /// Moves the calling thread into `/run/netns/NAME` and checks that it arrived there.
    static func enterNetworkNamespace(_ name: String) throws(FirewallError) {
        guard !name.isEmpty, !name.contains("/"), name != ".", name != ".." else {
            throw FirewallError(code: .networkNamespace, message: "invalid network namespace name '\(name)'")
        }
        let path = "/run/netns/\(name)"
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else {
            throw FirewallError(
                code: .networkNamespace,
                message: "cannot open network namespace \(path): \(errorText()); create it with `ip netns add \(name)`")
        }
        defer { close(fd) }
        guard portcullis_enter_netns(fd) == 0 else {
            throw FirewallError(
                code: .networkNamespace, message: "cannot enter network namespace \(path): \(errorText())")
        }
        // Prove it: the thread's namespace is now the file's namespace.
        var target = stat()
        var mine = stat()
        guard fstat(fd, &target) == 0, stat("/proc/thread-self/ns/net", &mine) == 0,
            target.st_ino == mine.st_ino, target.st_dev == mine.st_dev
        else {
            throw FirewallError(
                code: .networkNamespace, message: "entered \(path) but the thread is not in that namespace")
        }
    }
}
