import Core
import Testing

@testable import Firewall

/// The notification parser on hand-built netlink messages (the namespace tests prove the kernel's own).
@Suite struct NFTMonitorTests {
    static func attribute(_ type: UInt16, _ payload: [UInt8]) -> [UInt8] {
        let length = UInt16(4 + payload.count)
        var out =
            withUnsafeBytes(of: length.littleEndian, Array.init) + withUnsafeBytes(of: type.littleEndian, Array.init)
        out += payload
        while out.count % 4 != 0 { out.append(0) }
        return out
    }

    static func message(_ type: UInt16, family: UInt8 = 1, _ attributes: [UInt8]) -> [UInt8] {
        let body = [family, 0, 0, 0] + attributes
        let length = UInt32(16 + body.count)
        var out = withUnsafeBytes(of: length.littleEndian, Array.init)
        out += withUnsafeBytes(of: ((10 << 8) | type).littleEndian, Array.init)
        out += [0, 0, 0, 0, 0, 0, 0, 0, 0, 0]  // flags, seq, pid
        return out + body
    }

    static func cstring(_ s: String) -> [UInt8] { Array(s.utf8) + [0] }

    static func element(_ address: [UInt8]) -> [UInt8] {
        // NFTA_LIST_ELEM { NFTA_SET_ELEM_KEY { NFTA_DATA_VALUE bytes } }, nested flag set as the kernel does.
        attribute(0x8001, attribute(0x8001, attribute(1, address)))
    }

    func parse(_ bytes: [UInt8]) -> [NFTMonitor.Event] {
        bytes.withUnsafeBytes { NFTMonitor.parse($0) }
    }

    @Test func deletedElementsOfBothFamiliesAndTheCommittingThread() {
        let v6: [UInt8] = [0x20, 0x01, 0x0d, 0xb8] + [UInt8](repeating: 0, count: 11) + [2]
        let bytes =
            Self.message(
                14,
                Self.attribute(1, Self.cstring("portcullis")) + Self.attribute(2, Self.cstring("addr-set-sshd"))
                    + Self.attribute(0x8003, Self.element([192, 0, 2, 7]) + Self.element([198, 51, 100, 1])))
            + Self.message(
                14,
                Self.attribute(1, Self.cstring("portcullis")) + Self.attribute(2, Self.cstring("addr6-set-sshd"))
                    + Self.attribute(0x8003, Self.element(v6)))
            + Self.message(2, Self.attribute(1, Self.cstring("portcullis")))
            + Self.message(15, family: 0, Self.attribute(1, [0, 0, 0, 9]) + Self.attribute(2, [0, 0, 0x30, 0x39]))
        #expect(
            parse(bytes) == [
                .elementsDeleted(
                    table: "portcullis", set: "addr-set-sshd",
                    addresses: [IPAddress("192.0.2.7")!, IPAddress("198.51.100.1")!]),
                .elementsDeleted(table: "portcullis", set: "addr6-set-sshd", addresses: [IPAddress("2001:db8::2")!]),
                .structureDeleted(table: "portcullis"),
                .generation(pid: 12345),
            ])
    }

    @Test func otherFamiliesSubsystemsAndTruncatedMessagesAreSkipped() {
        let ip4 = Self.message(14, family: 2, Self.attribute(1, Self.cstring("portcullis")))
        var otherSubsystem = Self.message(2, Self.attribute(1, Self.cstring("portcullis")))
        otherSubsystem[5] = 1  // conntrack
        let truncated = Array(Self.message(2, Self.attribute(1, Self.cstring("portcullis"))).dropLast(3))
        #expect(parse(ip4 + otherSubsystem + truncated).isEmpty)
        #expect(parse([]).isEmpty)
    }
}
