internal import CNFTables

/// A libnftables context: the only type in Portcullis that touches the libnftables C API.
///
/// Output and errors are buffered inside the context and copied out as Swift strings after every command; no
/// pointer escapes. One command buffer is one netlink batch, so everything in it is one kernel transaction:
/// it applies completely or not at all.
///
/// libnftables works in the network namespace of the calling thread and a context is not thread-safe: create and
/// use it on one thread (the firewall backend keeps it in an actor on its ``NFTExecutor`` thread).
///
/// ```swift
/// let nft = try NFTContext()
/// try nft.run("add table inet portcullis")
/// let tables = try nft.run("list tables", json: true)
/// ```
public final class NFTContext {
    // SAFETY: the pointer is owned by this object, created in init, freed in deinit, never handed out.
    private let handle: OpaquePointer

    /// Creates a context with buffered output and error streams.
    public init() throws(NFTError) {
        guard let ctx = nft_ctx_new(UInt32(NFT_CTX_DEFAULT)) else {
            throw NFTError(code: .contextCreation, message: "nft_ctx_new failed (out of memory?)", command: "")
        }
        handle = ctx
        guard nft_ctx_buffer_output(handle) == 0, nft_ctx_buffer_error(handle) == 0 else {
            nft_ctx_free(handle)
            throw NFTError(code: .contextCreation, message: "cannot buffer libnftables output", command: "")
        }
    }

    deinit {
        nft_ctx_free(handle)
    }

    /// Runs one command buffer (any number of newline- or `;`-separated commands, or one JSON document) as one
    /// transaction and returns what libnftables printed.
    ///
    /// - Parameters:
    ///   - commands: nft text syntax, or a JSON document (`{"nftables": [...]}`) when `json` is true.
    ///   - json: parse the input as JSON and print JSON output (`nft -j`).
    ///   - terse: omit set elements from listings (`nft -t`; they are then not even fetched from the kernel).
    ///   - stateless: omit counters' and quotas' values from listings (`nft -s`).
    /// - Returns: the output buffer (listings), empty for most changes.
    /// - Throws: ``NFTError`` with libnftables' error text when the command is rejected; nothing was changed.
    @discardableResult
    public func run(
        _ commands: String, json: Bool = false, terse: Bool = false, stateless: Bool = false
    )
        throws(NFTError) -> String
    {
        var flags = UInt32(NFT_CTX_OUTPUT_NUMERIC_PROTO) | UInt32(NFT_CTX_OUTPUT_NUMERIC_TIME)
        if json { flags |= UInt32(NFT_CTX_OUTPUT_JSON) }
        if terse { flags |= UInt32(NFT_CTX_OUTPUT_TERSE) }
        if stateless { flags |= UInt32(NFT_CTX_OUTPUT_STATELESS) }
        nft_ctx_output_set_flags(handle, flags)
        let rc = nft_run_cmd_from_buffer(handle, commands)
        // Reading the buffers also rewinds them for the next command.
        let output = nft_ctx_get_output_buffer(handle).map { String(cString: $0) } ?? ""
        let errors = nft_ctx_get_error_buffer(handle).map { String(cString: $0) } ?? ""
        guard rc == 0 else {
            let message = errors.isEmpty ? "libnftables returned \(rc)" : errors
            throw NFTError(code: .commandFailed, message: message, command: commands)
        }
        return output
    }

    /// Whether commands are only checked, not sent to the kernel (`nft --check`).
    public var dryRun: Bool {
        get { nft_ctx_get_dry_run(handle) }
        set { nft_ctx_set_dry_run(handle, newValue) }
    }
}

/// An error from libnftables: the command was rejected (nothing changed) or no context could be created.
public struct NFTError: Error, Hashable, Sendable, CustomStringConvertible {
    /// What went wrong.
    public enum Code: String, Sendable, Hashable {
        /// `nft_ctx_new` or output buffering failed.
        case contextCreation
        /// libnftables rejected the command buffer (syntax, missing object, permission).
        case commandFailed
    }

    /// What went wrong.
    public let code: Code
    /// libnftables' error text.
    public let message: String
    /// The command buffer that failed (may be long; `description` shows its start).
    public let command: String

    /// Creates an error.
    public init(code: Code, message: String, command: String) {
        self.code = code
        self.message = message
        self.command = command
    }

    /// One readable paragraph: the libnftables message and the start of the failed command.
    public var description: String {
        let head = command.prefix(300)
        let more = command.count > 300 ? " …" : ""
        let text = message.strippingEdges(" \n")
        return command.isEmpty ? "nftables: \(text)" : "nftables: \(text) (command: \(head)\(more))"
    }
}

extension StringProtocol {
    func strippingEdges(_ set: String) -> String {
        let chars = Set(set)
        var s = Substring(self)
        while let f = s.first, chars.contains(f) { s = s.dropFirst() }
        while let l = s.last, chars.contains(l) { s = s.dropLast() }
        return String(s)
    }
}
