import Foundation
import PortcullisTestKit
import Testing

@testable import Configuration

@Suite("TimeSpan", .blocking)
struct TimeSpanTests {
    @Test(
        "abbreviations",
        arguments: [
            ("600", 600.0), ("10m", 600), ("1h30m", 5400), ("1d", 86400), ("1w", 604800), ("1mo", 2_629_800),
            ("1y", 31_557_600), ("-1", -1), ("1.5h", 5400), ("1h 30m", 5400), ("2 days", 172_800), ("10 minutes", 600),
            ("3weeks", 1_814_400), ("1H", 3600), ("  7d ", 604_800), ("-10m", -600), ("+5m", 300), ("1d12h", 129_600),
            ("1m 1", 61), (".5h", 1800),
        ])
    func valid(_ text: String, _ seconds: Double) throws {
        #expect(try TimeSpan.parse(text).seconds == seconds)
    }

    @Test("rejected forms name the location", arguments: ["", "abc", "1hr", "1e3", "10 parsecs", "1h*", "0x10"])
    func invalid(_ text: String) {
        let loc = SourceLocation(file: "/etc/fail2ban/jail.local", line: 7)
        #expect {
            try TimeSpan.parse(text, location: loc)
        } throws: {
            let e = $0 as? ConfigError
            return e?.code == .badValue && e?.location == loc
                && e?.description.hasPrefix("/etc/fail2ban/jail.local:7: ") == true
        }
    }

    @Test("permanent and description")
    func permanent() throws {
        #expect(try TimeSpan.parse("-1").isPermanent)
        #expect(try !TimeSpan.parse("1s").isPermanent)
        #expect(try TimeSpan.parse("10m").description == "600")
        #expect(try TimeSpan.parse("1.5").description == "1.5")
    }

    @Test("agrees with fail2ban's MyTime.str2seconds")
    func oracle() throws {
        let inputs = [
            "600", "10m", "1h30m", "1d", "1w", "1mo", "1y", "-1", "1.5h", "1h 30m", "1 hour", "2 days", "3weeks",
            "1min", "5sec", "10s", "1month", "2years", "1H", "30M", "1D", "1ye", "1yea", "10 minutes", "1d12h",
            "-10m", "+5m", "1.5", "abc", "", "1h-30m", "1h+30m", "1hour30", "90", "  7d ", "5 m", "1ms", "1mi",
            "1mon", "4mo2w", "1we", "1wee", "1da", "1ho", "1hou", "1hr", "1se", "1seco", "1yr", "1days", "1dd",
            "1weeks", "1 y", "- 1", "1 - 1", "1.", ".5h", "1e3", "0x10", "1 fortnight",
        ]
        let data = try Oracle.run(timeOracleScript, inputs)
        let expected = try JSONDecoder().decode([Double?].self, from: data)
        var agree = 0
        for (input, want) in zip(inputs, expected) {
            let ours = try? TimeSpan.parse(input).seconds
            if let ours, let want, abs(ours - want) < 1e-6 || ours == want {
                agree += 1
            } else if ours == nil, want == nil {
                agree += 1
            } else {
                Issue.record("'\(input)': ours \(String(describing: ours)), fail2ban \(String(describing: want))")
            }
        }
        print("TimeSpan oracle: \(agree)/\(inputs.count) inputs agree with fail2ban")
    }
}
