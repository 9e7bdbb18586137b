import Testing

@testable import Configuration

/// Issue 7 item 3: no configured number may trap. `bantime = 9223372036854775807` or `300000000000y` trapped
/// ("Double value cannot be converted to Int"); every such value is now an error naming file, line and option.
@Suite("Configured numbers are range-checked")
struct NumberBoundsTests {
    static let hugeTimes = [
        "9223372036854775807", "300000000000y", "-9223372036854775807", "1" + String(repeating: "0", count: 400),
        "1" + String(repeating: "0", count: 400) + " - 1" + String(repeating: "0", count: 400),
        "99999999999999999999w", "1000000000000.5", "40000y",
    ]

    @Test("huge, overflowing and NaN-producing time values are errors naming the location", arguments: hugeTimes)
    func hugeTimeSpan(_ text: String) {
        let location = SourceLocation(file: "/etc/portcullis/jail.local", line: 7)
        #expect(throws: ConfigError.self) { try TimeSpan.parse(text, location: location) }
        do {
            _ = try TimeSpan.parse(text, location: location)
        } catch {
            #expect(error.code == .badValue)
            #expect(error.location?.line == 7)
            #expect(error.message.contains(text.prefix(20)))
        }
    }

    @Test("the edges of the range still parse", arguments: ["1000000000000", "-1000000000000", "31000y", "-1", "0"])
    func edges(_ text: String) throws {
        let t = try TimeSpan.parse(text)
        #expect(abs(t.seconds) <= 1e12)
    }

    @Test(
        "a jail with a bad number is refused with file, line and option; the others load",
        arguments: [
            ("bantime", "9223372036854775807"), ("bantime", "300000000000y"), ("findtime", "1e999"),
            ("findtime", "nan"), ("bantime.maxtime", "inf"), ("bantime.rndtime", "99999999999999999y"),
            ("bantime.factor", "nan"), ("bantime.factor", "inf"), ("bantime.factor", "-infinity"),
            ("bantime.factor", "1e999"), ("bantime.multipliers", "1 2 nan"), ("bantime.multipliers", "1 inf"),
            ("maxretry", "99999999999999999999999"), ("maxretry", "-"), ("maxretry", "-5"), ("maxmatches", "-5"),
        ])
    func badJailValue(_ option: String, _ value: String) throws {
        let t = try TempTree()
        defer { t.remove() }
        try t.write("filter.d/f.conf", "[Definition]\nfailregex = ^<HOST>\n")
        try t.write(
            "jail.conf",
            "[DEFAULT]\nfilter = f\nlogpath = /var/log/x.log\n[good]\nenabled = true\n[bad]\nenabled = true\n\(option) = \(value)\n"
        )
        let result = t.tree.loadJails()
        #expect(result.jails.contains { $0.name == "good" })
        let e = try #require(result.errors["bad"], "\(option) = \(value) was accepted")
        #expect(e.code == .badValue)
        #expect(e.location?.line == 8, "\(e)")
        #expect(e.location?.file.hasSuffix("jail.conf") == true)
        #expect(e.message.contains(option), "\(e.message)")
    }

    @Test("fail2ban.conf: dbpurgeage and dbmaxmatches out of range are errors naming the option")
    func mainConfiguration() throws {
        for (option, value) in [
            ("dbpurgeage", "300000000000y"), ("dbpurgeage", "1e999"), ("dbmaxmatches", "-1"),
            ("dbmaxmatches", "99999999999999999999999"),
        ] {
            let t = try TempTree()
            defer { t.remove() }
            try t.write("fail2ban.conf", "[Definition]\n\(option) = \(value)\n")
            do {
                _ = try t.tree.loadMain()
                Issue.record("\(option) = \(value) was accepted")
            } catch {
                #expect(error.code == .badValue)
                #expect(error.message.contains(option), "\(error.message)")
                #expect(error.location?.line == 2)
            }
        }
    }
}
