import Core
import Testing

@testable import Fleet

/// `[fleet]` parsing and the shared table's row and payload checks (no PostgreSQL needed; the real thing runs in
/// tests/fleet/fleet_test.py).
@Suite struct FleetConfigurationTests {
    @Test func noSectionMeansNoFleet() throws {
        #expect(try FleetConfiguration.parse(["loglevel": "INFO"]) == nil)
    }

    @Test func aFullSection() throws {
        let c = try #require(
            try FleetConfiguration.parse([
                "fleet.url": " postgresql://portcullis@/portcullis?host=/run/postgresql ", "fleet.name": "web1",
                "fleet.jails": "sshd, postfix", "fleet.trust": "web2 web3", "fleet.escalate-after": "3",
                "fleet.password-file": "/etc/portcullis/fleet.password",
            ]))
        #expect(c.url == "postgresql://portcullis@/portcullis?host=/run/postgresql")
        #expect(c.name == "web1" && c.jails == ["sshd", "postfix"] && c.trust == ["web2", "web3"])
        #expect(c.escalateAfter == 3 && c.passwordFile == "/etc/portcullis/fleet.password")
    }

    @Test func mistakesAreClearErrors() {
        func message(_ values: [String: String]) -> String {
            do {
                _ = try FleetConfiguration.parse(values)
                return ""
            } catch {
                return error.message
            }
        }
        #expect(message(["fleet.name": "a"]).contains("[fleet] has no url"))
        #expect(message(["fleet.url": "postgresql:///x"]).contains("needs name ="))
        #expect(
            message([
                "fleet.url": "postgresql:///x", "fleet.name": "a", "fleet.escalate-after": "two",
                "fleet.@escalate-after": "/etc/portcullis/portcullis.conf:9",
            ])
                == "/etc/portcullis/portcullis.conf:9: escalate-after must be a whole number of hosts (0 = never), not 'two'"
        )
        #expect(message(["fleet.url": "postgresql:///x", "fleet.name": "two words"]).contains("no spaces"))
    }

    @Test func rowsThatAreNotOursAreRefused() {
        let good: [String?] = ["7", "web2", "sshd", "203.0.113.9", "ban", "1700000000.5", nil]
        let r = FleetService.record(good, id: 7)
        #expect(
            r
                == FleetRecord(
                    id: 7, host: "web2", jail: "sshd", address: IPAddress("203.0.113.9")!, kind: .ban,
                    time: 1_700_000_000.5, end: nil))
        var bad = good
        bad[3] = "203.0.113.999"
        #expect(FleetService.record(bad, id: 7) == nil)
        bad = good
        bad[4] = "drop table"
        #expect(FleetService.record(bad, id: 7) == nil)
        bad = good
        bad[5] = "nan"
        #expect(FleetService.record(bad, id: 7) == nil)
        bad = good
        bad[6] = "-5"
        #expect(FleetService.record(bad, id: 7) == nil)
        #expect(FleetService.record(Array(good.prefix(5)), id: 7) == nil)
    }

    @Test func onlyOurNotificationsAreOurs() {
        #expect(FleetService.isOurs("portcullis_fleet", "v1 42 web1"))
        #expect(!FleetService.isOurs("portcullis_fleet", "hello"))
        #expect(!FleetService.isOurs("portcullis_fleet", "v2 42 web1"))
        #expect(!FleetService.isOurs("other", "v1 42 web1"))
    }
}
