import Core
import Firewall
import PortcullisTestKit
import Testing

@Suite struct RecordingFirewallTests {
    let sshd = JailFirewall(name: "sshd", ports: .ports([PortRange(22)]))

    @Test func recordsExactTransactions() async throws {
        let fw = RecordingFirewall()
        try await fw.setUp(jails: [sshd])
        let a = IPAddress("192.0.2.7")!
        try await fw.ban([BanRequest(address: a, jail: "sshd", duration: .timeout(.seconds(600)))])
        try await fw.ban([BanRequest(address: a, jail: "sshd", duration: .permanent)])
        #expect(fw.sent.count == 3)
        #expect(fw.sent[1] == "add element inet portcullis addr-set-sshd { 192.0.2.7 timeout 10m }\n")
        #expect(
            fw.sent[2] == """
                add element inet portcullis addr-set-sshd { 192.0.2.7 }
                delete element inet portcullis addr-set-sshd { 192.0.2.7 }
                add element inet portcullis addr-set-sshd { 192.0.2.7 }

                """)
        let listed = try await fw.list(jail: "sshd")
        #expect(listed == [BannedEntry(address: a, jail: "sshd", timeout: nil, remaining: nil)])
        try await fw.unban([BanKey(address: a, jail: "sshd")])
        #expect(try await fw.list(jail: "sshd").isEmpty)
        try await fw.tearDown()
        #expect(fw.sent.last == "add table inet portcullis\ndelete table inet portcullis\n")
        #expect(fw.calls.count == 7)
    }

    @Test func unknownJailAndInjectedFailure() async throws {
        let fw = RecordingFirewall(configuration: FirewallConfiguration(syntax: .json))
        await #expect(throws: FirewallError.self) {
            try await fw.ban([BanRequest(address: IPAddress("192.0.2.1")!, jail: "nope", duration: .permanent)])
        }
        try await fw.setUp(jails: [sshd])
        fw.failNext(with: FirewallError(code: .nftables, message: "boom"))
        await #expect(throws: FirewallError.self) { try await fw.flush(jail: "sshd") }
        try await fw.flush(jail: "sshd")
        #expect(fw.sent.count == 2)
        #expect(fw.sent[1].hasPrefix("{\"nftables\": [{\"flush\": {\"set\""))
    }

    @Test func reloadDropsSetsOfRemovedJails() async throws {
        let fw = RecordingFirewall()
        try await fw.setUp(jails: [sshd, JailFirewall(name: "old", ports: .all)])
        try await fw.setUp(jails: [sshd])
        #expect(
            fw.sent[1].contains("delete set inet portcullis addr-set-old\ndelete set inet portcullis addr6-set-old\n"))
    }
}
