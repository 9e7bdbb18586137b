import Core
import Jail
import Testing

@testable import Daemon

/// Host names reach getaddrinfo (an `ignoreip` entry that is not an address, a host name in a log line with
/// `usedns`). glibc's getaddrinfo also reads inet_aton's old numeric spellings — octal parts, hex parts, fewer than
/// four parts, a bare 32-bit number — so `192.0.2.010` would mean 192.0.2.8 and `3221225985` 192.0.2.1. An address
/// is only ever what inet_pton reads: such spellings are no address and no host name.
@Suite struct HostAddressesTests {
    @Test(
        "inet_aton spellings are not resolved to an address",
        arguments: [
            "192.0.2.010", "192.0.2.08", "0300.0.2.1", "0xc0.0.2.1", "0xc0000201", "3221225985", "192.0.513",
            "192.513", "0x7f.1", "127.1", "192.0.2.1 ",
        ])
    func numericSpellingsRefused(name: String) {
        #expect(HostAddresses.resolve(name) == [], "\(name) resolved to \(HostAddresses.resolve(name))")
    }

    @Test("ignoreip with an octal-looking entry is refused, not silently another address")
    func ignoreipLeadingZeroRefused() {
        #expect(throws: (any Error).self) {
            _ = try IgnoreList(entries: ["192.0.2.010"], resolve: HostAddresses.resolve)
        }
    }

    @Test("addresses and real names still resolve")
    func addressesStillResolve() {
        #expect(HostAddresses.resolve("192.0.2.10") == [IPAddress("192.0.2.10")!])
        #expect(HostAddresses.resolve("2001:db8::1") == [IPAddress("2001:db8::1")!])
        #expect(HostAddresses.resolve("localhost").contains(IPAddress("127.0.0.1")!))
    }
}
