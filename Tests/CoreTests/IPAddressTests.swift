import Core
import Testing

@Suite struct IPAddressTests {
    @Test func parsesAndNormalises() throws {
        #expect(IPAddress("192.0.2.1")?.description == "192.0.2.1")
        #expect(IPAddress("::ffff:192.0.2.1")?.description == "192.0.2.1")
        #expect(IPAddress("::ffff:192.0.2.1")?.family == .v4)
        #expect(IPAddress("2001:DB8:0:0::1")?.description == "2001:db8::1")
        #expect(IPAddress("[2001:db8::1]")?.description == "2001:db8::1")
        #expect(IPAddress("256.1.1.1") == nil)
        #expect(IPAddress("1.2.3") == nil)
        #expect(IPAddress("example.com") == nil)
        #expect(IPAddress(bytes: Array("198.51.100.255".utf8))?.description == "198.51.100.255")
    }

    @Test func subnets() throws {
        let net = try #require(Subnet("192.0.2.77/24"))
        #expect(net.description == "192.0.2.0/24")
        #expect(net.contains(try #require(IPAddress("192.0.2.200"))))
        #expect(!net.contains(try #require(IPAddress("198.51.100.1"))))
        #expect(Subnet("198.18.0.0/255.255.0.0")?.prefixLength == 16)
        let v6 = try #require(Subnet("2001:db8::/32"))
        #expect(v6.contains(try #require(IPAddress("2001:db8:ffff::1"))))
        #expect(!v6.contains(try #require(IPAddress("192.0.2.1"))))
        #expect(Subnet("::/0")?.contains(try #require(IPAddress("::1"))) == true)
    }
}
