internal import CNetlink
import Core

#if canImport(Glibc)
import Glibc
#endif

/// The kernel's nf_tables change notifications (what `nft monitor` prints), read from a netlink socket subscribed
/// to the nftables multicast group, so the backend notices within milliseconds when someone else deletes its bans
/// (`nft flush set`, `nft delete element`) or its table, chain, sets or rules.
///
/// Kernel timeouts do not notify; only deletions made by someone do. Notifications of one transaction arrive
/// in order and end with a new-generation message naming the thread that committed it, so the backend's own
/// changes (all made on its executor thread) are told apart from everybody else's.
final class NFTMonitor {
    /// The socket, non-blocking; created on the executor's thread, inside its network namespace.
    let fd: Int32

    /// Opens and subscribes the socket in the calling thread's network namespace.
    init() throws(FirewallError) {
        // A large buffer: a foreign `flush set` of many bans sends one notification per element. Overflowing it is
        // survivable (the backend then re-adds every ban).
        let fd = portcullis_nft_monitor_open(32 << 20)
        guard fd >= 0 else {
            throw FirewallError(
                code: .nftables, message: "cannot subscribe to nftables notifications: \(Syscall.errorText())")
        }
        self.fd = fd
    }

    deinit { close(fd) }

    /// Leaves (false) or joins again (true) the notification group. Returns whether it worked.
    func subscribe(_ on: Bool) -> Bool { portcullis_nft_monitor_join(fd, on ? 1 : 0) == 0 }

    /// The nf_tables generation of the calling thread's network namespace (one more per committed transaction);
    /// nil when the kernel cannot be asked.
    static func generation() -> Int64? {
        let g = portcullis_nft_generation()
        return g < 0 ? nil : g
    }

    /// What one read of the socket brought.
    enum Read {
        /// Some bytes (one or more netlink messages).
        case bytes(Int)
        /// Nothing more to read now.
        case empty
        /// The kernel dropped notifications (buffer full): what was missed is unknown.
        case overrun
    }

    /// One non-blocking read into `buffer`. EINTR retried.
    func read(into buffer: inout [UInt8]) -> Read {
        while true {
            let n = buffer.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, Int32(MSG_DONTWAIT)) }
            if n > 0 { return .bytes(n) }
            if n < 0 && errno == EINTR { continue }
            if n < 0 && errno == ENOBUFS { return .overrun }
            return .empty
        }
    }

    static let subsystem: UInt16 = 10  // NFNL_SUBSYS_NFTABLES

    /// The notifications that matter to the backend.
    enum Event: Equatable {
        /// Elements deleted from `set` of `table` (family inet only).
        case elementsDeleted(table: String, set: String, addresses: [IPAddress])
        /// The table, a chain, a rule or a set of `table` deleted, or a rule added to it.
        case structureDeleted(table: String)
        /// End of one transaction, committed by thread `pid` (for a one-thread process like `nft`, its pid).
        case generation(pid: Int32?)
    }

    /// Parses the netlink messages in `bytes` (a datagram of one or more messages). Unknown messages are skipped.
    static func parse(_ bytes: UnsafeRawBufferPointer) -> [Event] {
        var events: [Event] = []
        var offset = 0
        while offset + 16 <= bytes.count {
            let length = Int(bytes.loadUnaligned(fromByteOffset: offset, as: UInt32.self))
            let type = bytes.loadUnaligned(fromByteOffset: offset + 4, as: UInt16.self)
            guard length >= 16, offset + length <= bytes.count else { break }
            defer { offset += (length + 3) & ~3 }
            guard type >> 8 == subsystem, length >= 20 else { continue }
            let family = bytes[offset + 16]
            let body = UnsafeRawBufferPointer(rebasing: bytes[(offset + 20)..<(offset + length)])
            let attributes = Attribute.list(body)
            switch type & 0xff {
            case 14:  // NFT_MSG_DELSETELEM
                guard family == 1, let table = attributes[1].flatMap(string), let set = attributes[2].flatMap(string),
                    let elements = attributes[3]
                else { continue }
                var addresses: [IPAddress] = []
                for (kind, element) in Attribute.all(elements) where kind == 1 {  // NFTA_LIST_ELEM
                    guard let key = Attribute.list(element)[1], let value = Attribute.list(key)[1] else { continue }
                    if let a = address(value) { addresses.append(a) }
                }
                events.append(.elementsDeleted(table: table, set: set, addresses: addresses))
            // NFT_MSG_DELTABLE, DELCHAIN, DELRULE, DELSET, and NEWRULE (a rule added to the chain, e.g. an
            // `accept` before the bans, or a rule replaced): attribute 1 is the table name.
            case 2, 5, 6, 8, 11:
                guard family == 1, let table = attributes[1].flatMap(string) else { continue }
                events.append(.structureDeleted(table: table))
            case 15:  // NFT_MSG_NEWGEN
                let pid = attributes[2].flatMap { v -> Int32? in
                    guard v.count >= 4 else { return nil }
                    return Int32(bitPattern: UInt32(bigEndian: v.loadUnaligned(as: UInt32.self)))
                }
                events.append(.generation(pid: pid))
            default:
                continue
            }
        }
        return events
    }

    static func string(_ value: UnsafeRawBufferPointer) -> String? {
        let end = value.firstIndex(of: 0) ?? value.count
        return String(validating: value[0..<end], as: UTF8.self)
    }

    static func address(_ value: UnsafeRawBufferPointer) -> IPAddress? {
        switch value.count {
        case 4:
            return IPAddress(v4: UInt32(bigEndian: value.loadUnaligned(as: UInt32.self)))
        case 16:
            let high = UInt64(bigEndian: value.loadUnaligned(fromByteOffset: 0, as: UInt64.self))
            let low = UInt64(bigEndian: value.loadUnaligned(fromByteOffset: 8, as: UInt64.self))
            return IPAddress(v6High: high, low: low)
        default:
            return nil
        }
    }

    /// Netlink attributes (`struct nlattr`: length, type, payload padded to 4 bytes).
    enum Attribute {
        /// Every attribute in order, with the nested/byte-order flags masked off the type.
        static func all(_ bytes: UnsafeRawBufferPointer) -> [(UInt16, UnsafeRawBufferPointer)] {
            var out: [(UInt16, UnsafeRawBufferPointer)] = []
            var offset = 0
            while offset + 4 <= bytes.count {
                let length = Int(bytes.loadUnaligned(fromByteOffset: offset, as: UInt16.self))
                let type = bytes.loadUnaligned(fromByteOffset: offset + 2, as: UInt16.self) & 0x3fff
                guard length >= 4, offset + length <= bytes.count else { break }
                out.append((type, UnsafeRawBufferPointer(rebasing: bytes[(offset + 4)..<(offset + length)])))
                offset += (length + 3) & ~3
            }
            return out
        }

        /// The first attribute of each type.
        static func list(_ bytes: UnsafeRawBufferPointer) -> [UInt16: UnsafeRawBufferPointer] {
            var out: [UInt16: UnsafeRawBufferPointer] = [:]
            for (type, value) in all(bytes) where out[type] == nil { out[type] = value }
            return out
        }
    }
}
