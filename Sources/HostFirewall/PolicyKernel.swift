internal import CNetlink
import Core
import Firewall
import Policy
import Synchronization

/// The policy table in the kernel of the calling thread's network namespace, through libnftables.
///
/// ```swift
/// let kernel = PolicyKernel()
/// let before = try kernel.listing()            // nil when the table is not loaded
/// try kernel.load(PolicyRenderer().loadScript(policy, forwarding: kernel.forwardingEnabled()))
/// ```
public struct PolicyKernel: Sendable {
    /// The policy table (family `inet`).
    public let table: String

    /// The default table `portcullis-policy`.
    public init(table: String = "portcullis-policy") {
        self.table = table
    }

    /// The table as `nft -s list table` prints it; nil when it is not loaded.
    public func listing() throws(FirewallError) -> String? {
        let nft = try context()
        let tables = try run(nft, "list tables")
        guard tables.split(separator: "\n").contains(where: { $0.trimmingCharacters() == "table inet \(table)" }) else {
            return nil
        }
        return try run(nft, "list table inet \(table)", stateless: true)
    }

    /// The table as `nft -j list table` prints it (libnftables JSON); nil when it is not loaded.
    public func jsonListing() throws(FirewallError) -> String? {
        guard try listing() != nil else { return nil }
        let nft = try context()
        do {
            return try nft.run("list table inet \(table)", json: true, stateless: true)
        } catch {
            throw FirewallError(code: .nftables, message: "cannot list the policy table", underlying: error)
        }
    }

    /// Runs a script (e.g. ``PolicyRenderer/loadScript(_:forwarding:)``) as one transaction.
    public func load(_ script: String) throws(FirewallError) {
        let nft = try context()
        _ = try run(nft, script)
    }

    /// Whether the host forwards packets (IPv4 `ip_forward` or IPv6 `forwarding` on): Docker, a router.
    public func forwardingEnabled() -> Bool {
        HostSys.sysctl("/proc/sys/net/ipv4/ip_forward") == "1"
            || HostSys.sysctl("/proc/sys/net/ipv6/conf/all/forwarding") == "1"
    }

    /// Loads `script` into a new, empty network namespace that lives only as long as one thread, and returns the
    /// table as the kernel lists it there: the exact text `listing()` will show once it is applied, and proof that
    /// the kernel accepts it, without touching this namespace's ruleset.
    ///
    /// - Throws: ``FirewallError`` (`.networkNamespace` when no namespace can be made, e.g. not root;
    ///   `.nftables` when the kernel rejects the script).
    public func scratchListing(of script: String) throws(FirewallError) -> String {
        let result = Mutex<Result<String, FirewallError>?>(nil)
        let table = self.table
        let thread: DedicatedThread
        do {
            thread = try DedicatedThread {
                let r: Result<String, FirewallError>
                if portcullis_unshare_netns() != 0 {
                    r = .failure(
                        FirewallError(
                            code: .networkNamespace,
                            message: "cannot create a scratch network namespace (\(HostSys.describe(errnoValue())))"))
                } else {
                    do throws(FirewallError) {
                        let scratch = PolicyKernel(table: table)
                        try scratch.load(script)
                        r = .success(try scratch.listing() ?? "")
                    } catch {
                        r = .failure(error)
                    }
                }
                result.withLock { $0 = r }
            }
        } catch {
            throw FirewallError(code: .networkNamespace, message: "\(error)")
        }
        thread.join()
        switch result.withLock({ $0 }) {
        case .success(let s): return s
        case .failure(let e): throw e
        case nil: throw FirewallError(code: .networkNamespace, message: "the scratch namespace thread gave no result")
        }
    }

    private func context() throws(FirewallError) -> NFTContext {
        do {
            return try NFTContext()
        } catch {
            throw FirewallError(code: .nftables, message: "cannot use libnftables", underlying: error)
        }
    }

    private func run(_ nft: NFTContext, _ commands: String, stateless: Bool = false) throws(FirewallError) -> String {
        do {
            return try nft.run(commands, stateless: stateless)
        } catch {
            throw FirewallError(
                code: .nftables, message: "nftables refused the policy table command", underlying: error)
        }
    }
}

#if canImport(Glibc)
import Glibc
func errnoValue() -> Int32 { errno }
#endif

extension Substring {
    func trimmingCharacters() -> String {
        var s = self
        while let f = s.first, f.isWhitespace { s = s.dropFirst() }
        while let l = s.last, l.isWhitespace { s = s.dropLast() }
        return String(s)
    }
}
