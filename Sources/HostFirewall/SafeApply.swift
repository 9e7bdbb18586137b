import Firewall
import Policy

#if canImport(Glibc)
import Glibc
#endif

/// `apply` with a dead man's switch: the policy is loaded in one transaction, and a detached reverter process
/// puts the previous policy table back unless `confirm` arrives before the deadline. The daemon need not run.
///
/// State lives in the run directory (default `/run/portcullis`), one set of files per network namespace (keyed by
/// its inode), so namespaces never see each other's pending applies:
/// - `policy-KEY.pending`: `token`, `deadline` (epoch seconds), `reverter` (pid). Whoever renames it first —
///   `confirm` or the reverter at the deadline — wins; the loser finds nothing and does nothing.
/// - `policy-KEY.previous`: the table as it was before the first unconfirmed apply (`absent` when there was none);
///   a second `apply` before `confirm` keeps it, so a revert always goes back to the last confirmed state.
/// - `policy-KEY.log`: one line per apply, confirm and revert.
///
/// ```swift
/// let safe = SafeApply(runDirectory: "/run/portcullis")
/// let pending = try safe.apply(script, timeout: 60, reverter: ["/usr/local/bin/portcullis", "firewall", "_revert"])
/// try safe.confirm()
/// ```
public struct SafeApply: Sendable {
    /// A pending (unconfirmed) apply.
    public struct Pending: Hashable, Sendable {
        /// Identifies the apply (and its reverter).
        public var token: String
        /// Epoch seconds after which the reverter restores the previous table.
        public var deadline: Double
        /// The reverter's pid (0 before it is started).
        public var reverter: Int32

        var text: String { "token=\(token)\ndeadline=\(deadline)\nreverter=\(reverter)\n" }

        init(token: String, deadline: Double, reverter: Int32) {
            self.token = token
            self.deadline = deadline
            self.reverter = reverter
        }

        init?(text: String) {
            var values: [String: String] = [:]
            for line in text.split(separator: "\n") {
                let kv = line.split(separator: "=", maxSplits: 1)
                if kv.count == 2 { values[String(kv[0])] = String(kv[1]) }
            }
            guard let token = values["token"], let d = values["deadline"].flatMap(Double.init) else { return nil }
            self.init(token: token, deadline: d, reverter: values["reverter"].flatMap { Int32($0) } ?? 0)
        }
    }

    /// An error of apply, confirm or revert: a sentence for a person.
    public struct Failure: Error, CustomStringConvertible, Sendable {
        /// What went wrong and what to do.
        public var message: String
        /// The message.
        public var description: String { message }
    }

    /// The run directory.
    public let runDirectory: String
    /// The kernel side.
    public let kernel: PolicyKernel
    /// The network namespace key of the state files.
    public let key: String

    /// State in `runDirectory` for the calling thread's network namespace.
    public init(runDirectory: String = "/run/portcullis", kernel: PolicyKernel = PolicyKernel()) {
        self.runDirectory = runDirectory
        self.kernel = kernel
        self.key = HostSys.networkNamespaceKey()
    }

    var pendingPath: String { "\(runDirectory)/policy-\(key).pending" }
    var previousPath: String { "\(runDirectory)/policy-\(key).previous" }
    /// The log of applies, confirms and reverts.
    public var logPath: String { "\(runDirectory)/policy-\(key).log" }

    /// The pending apply, if any.
    public func pending() -> Pending? { HostSys.readFile(pendingPath).flatMap(Pending.init(text:)) }

    /// Loads `script` in one transaction and starts the reverter (`reverter` + `--token T`, run detached).
    ///
    /// - Returns: the pending apply (its deadline).
    public func apply(_ script: String, timeout: Double, reverter: [String]) throws(Failure) -> Pending {
        if let code = HostSys.makeDirectories(runDirectory) {
            throw Failure(message: "cannot create \(runDirectory): \(HostSys.describe(code))")
        }
        // Take over a pending apply (its reverter then finds nothing); if the reverter took it first, let it finish.
        let claimed = "\(pendingPath).apply-\(getpid())"
        var earlier: Pending? = nil
        if HostSys.exists(pendingPath) {
            if HostSys.move(pendingPath, claimed) {
                earlier = HostSys.readFile(claimed).flatMap(Pending.init(text:))
            } else {
                for _ in 0..<50 where HostSys.exists(previousPath) { HostSys.sleep(0.1) }
            }
        }
        var wrotePrevious = false
        if earlier == nil {
            let before: String?
            do {
                before = try kernel.listing()
            } catch {
                throw Failure(message: "cannot read the current policy table: \(error)")
            }
            let saved = before.map { "present\n" + $0 } ?? "absent\n"
            if let code = HostSys.writeAtomically(previousPath, saved) {
                throw Failure(
                    message: "cannot save the current policy table to \(previousPath): \(HostSys.describe(code))")
            }
            wrotePrevious = true
        }
        do {
            try kernel.load(script)
        } catch {
            if wrotePrevious { HostSys.remove(previousPath) }
            if let earlier {
                // Put the earlier pending apply back, with a reverter of its own.
                _ = HostSys.move(claimed, pendingPath)
                _ = startReverter(earlier, reverter)
            }
            throw Failure(message: "the policy was not loaded, nothing changed: \(error)")
        }
        HostSys.remove(claimed)
        var pending = Pending(token: Self.newToken(), deadline: HostSys.now() + timeout, reverter: 0)
        if let code = HostSys.writeAtomically(pendingPath, pending.text) {
            restorePrevious(reason: "cannot record the pending apply (\(HostSys.describe(code)))")
            throw Failure(message: "cannot write \(pendingPath): \(HostSys.describe(code)); the previous table is back")
        }
        switch startReverter(pending, reverter) {
        case .success(let pid): pending.reverter = pid
        case .failure(let f):
            HostSys.remove(pendingPath)
            restorePrevious(reason: "the reverter could not be started")
            throw f
        }
        if let earlier { HostSys.terminate(earlier.reverter, ifCommandLineContains: earlier.token) }
        HostSys.appendLine(logPath, "\(Self.stamp()) applied (token \(pending.token), revert at \(pending.deadline))")
        return pending
    }

    private func startReverter(_ pending: Pending, _ reverter: [String]) -> Result<Int32, Failure> {
        switch HostSys.spawnDetached(reverter + ["--token", pending.token]) {
        case .success(let pid):
            var p = pending
            p.reverter = pid
            // Rewritten only if still ours (a confirm may already have taken it).
            if self.pending()?.token == pending.token { _ = HostSys.writeAtomically(pendingPath, p.text) }
            return .success(pid)
        case .failure(let f):
            return .failure(Failure(message: "cannot start the reverter \(reverter[0]): \(HostSys.describe(f.code))"))
        }
    }

    /// Keeps the applied policy: the pending apply is taken, its reverter ended, the saved table forgotten.
    ///
    /// - Throws: ``Failure`` when nothing is pending (never applied, already confirmed, or already reverted).
    @discardableResult
    public func confirm() throws(Failure) -> Pending {
        let taken = "\(pendingPath).confirm-\(getpid())"
        guard HostSys.move(pendingPath, taken), let pending = HostSys.readFile(taken).flatMap(Pending.init(text:))
        else {
            HostSys.remove(taken)
            let last = HostSys.readFile(logPath)?.split(separator: "\n").last.map(String.init)
            let hint = last.map { " (last: \($0))" } ?? ""
            throw Failure(message: "nothing to confirm: no apply is waiting for confirmation\(hint)")
        }
        HostSys.terminate(pending.reverter, ifCommandLineContains: pending.token)
        HostSys.remove(previousPath)
        HostSys.remove(taken)
        HostSys.appendLine(logPath, "\(Self.stamp()) confirmed (token \(pending.token))")
        return pending
    }

    /// The reverter's body: waits until the deadline of the apply `token`, then restores the previous table unless
    /// the apply was confirmed or replaced meanwhile. Returns what it did, for its log.
    public func revertWhenDue(token: String) -> String {
        while true {
            guard let pending = pending(), pending.token == token else {
                return "apply \(token) was confirmed or replaced; nothing to do"
            }
            let left = pending.deadline - HostSys.now()
            if left > 0 {
                HostSys.sleep(min(left, 0.1))
                continue
            }
            let taken = "\(pendingPath).revert-\(getpid())"
            guard HostSys.move(pendingPath, taken) else { continue }
            guard HostSys.readFile(taken).flatMap(Pending.init(text:))?.token == token else {
                _ = HostSys.move(taken, pendingPath)
                continue
            }
            let what = restorePrevious(reason: "not confirmed in time")
            HostSys.remove(taken)
            return what
        }
    }

    /// Puts the saved table back (or removes the table when there was none), logs it, forgets the saved copy.
    @discardableResult
    func restorePrevious(reason: String) -> String {
        let saved = HostSys.readFile(previousPath) ?? "absent\n"
        let renderer = PolicyRenderer(table: kernel.table)
        var script = renderer.removeScript()
        if saved.hasPrefix("present\n") { script += saved.dropFirst("present\n".count) }
        let what: String
        do {
            try kernel.load(script)
            what =
                saved.hasPrefix("present\n")
                ? "reverted to the previous policy table (\(reason))" : "removed the policy table (\(reason))"
            HostSys.remove(previousPath)
        } catch {
            what = "REVERT FAILED (\(reason)): \(error); the saved table is in \(previousPath)"
        }
        HostSys.appendLine(logPath, "\(Self.stamp()) \(what)")
        return what
    }

    static func newToken() -> String {
        var bytes = [UInt8](repeating: 0, count: 8)
        if let fd = Optional(open("/dev/urandom", O_RDONLY | O_CLOEXEC)), fd >= 0 {
            _ = read(fd, &bytes, 8)
            close(fd)
        }
        return bytes.map { String($0, radix: 16).count == 1 ? "0" + String($0, radix: 16) : String($0, radix: 16) }
            .joined() + "-\(getpid())"
    }

    static func stamp() -> String {
        var t = time(nil)
        var tm = tm()
        localtime_r(&t, &tm)
        var buffer = [CChar](repeating: 0, count: 32)
        strftime(&buffer, 32, "%Y-%m-%d %H:%M:%S", &tm)
        return String(cString: buffer)
    }
}
