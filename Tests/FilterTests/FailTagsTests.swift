import Configuration
import Core
import PortcullisTestKit
import Testing

@testable import Filter

/// Each address tag accepts what fail2ban's accepts: checked line by line against fail2ban.
@Suite(.enabled(if: Oracle.available), .blocking) struct FailTagsTests {
    static let subjects = [
        "192.0.2.1", "::ffff:192.0.2.1", "::ffff:ffff:192.0.2.1", "[192.0.2.1]", "[192.0.2.1]:22", "2001:db8::1",
        "[2001:db8::1]", "[2001:db8::1]:22", "2001:DB8:0:0:0:0:0:1", "fe80::1%eth0", "::1", "1::", "::",
        "1:2:3:4:5:6:7:8", "1:2:3:4:5:6:7:8:9", "192.030.0.6", "999.1.2.3", "1.2.3.4.5", "1.2.3", "example.com",
        "host_name-1.example", "a.b.c^d", "-bad-.", "192.0.2.1/24", "[2001:db8::]/32", "2001:db8::/48", "x",
    ]

    static let tags = ["<HOST>", "<ADDR>", "<IP4>", "<IP6>", "<DNS>", "<SUBNET>", "<F-ID/>", "<F-IP4/>"]

    @Test(arguments: tags) func tagAcceptsWhatFail2banAccepts(tag: String) throws {
        for anchored in [false, true] {
            let regex = "^ from " + tag + (anchored ? "$" : "")
            let lines = Self.subjects.map { "2024-05-01 12:00:00 from \($0)" }
            let def = FilterConfiguration(name: "t", file: "t.conf", failregex: [ConfigValue(regex)])
            let problems = try Differential.compare(def, spec: ["failregex": [regex]], lines: lines)
            #expect(problems.isEmpty, "\(regex):\n\(problems.joined(separator: "\n"))")
        }
    }

    @Test func tagGroupNames() {
        #expect(FailTags.expand("<F-USER>a</F-USER>") == "(?P<user>a)")
        #expect(FailTags.expand("<F-ID>a</F-ID>") == "(?P<fid>a)")
        #expect(FailTags.expand("<F-PORT>a</F-PORT>") == "(?P<fport>a)")
        #expect(FailTags.expand("<F-ALT_USER1>a</F-ALT_USER1>") == "(?P<alt_user1>a)")
        #expect(FailTags.expand("<F-MLFID>a</F-MLFID>") == "(?P<mlfid>a)")
        #expect(FailTags.expand("<F-NOFAIL>a</F-NOFAIL>") == "(?P<nofail>a)")
        #expect(FailTags.expand("<F-MLFFORGET>a</F-MLFFORGET>") == "(?P<mlfforget>a)")
        #expect(FailTags.expand("<F-MLFGAINED>a</F-MLFGAINED>") == "(?P<mlfgained>a)")
        #expect(FailTags.expand("<F-CONTENT>a</F-CONTENT>") == "(?P<content>a)")
        // Not tags: lower case, dashes, spaces.
        #expect(FailTags.expand("<F-Foo>a</F-Foo>") == "<F-Foo>a</F-Foo>")
        #expect(FailTags.expand("<host> < HOST >") == "<host> < HOST >")
        #expect(FailTags.expand("<F-HOST/>") == "<F-HOST/>")
        #expect(FailTags.expand("<SKIPLINES><SKIPLINES>").contains("skiplines1"))
        #expect(FailTags.expand("<HOST>", useDNS: false) == FailTags.addr)
    }

    @Test func fieldsAndAlternativeGroups() throws {
        let regex =
            #"^ user (?:<F-USER>\d+</F-USER>|<F-ALT_USER>\S+</F-ALT_USER>) port <F-PORT>\d+</F-PORT> (?:id <F-ID>\S+</F-ID> )?from <HOST>$"#
        let lines = [
            "2024-05-01 12:00:00 user bob port 22 from 192.0.2.1",
            "2024-05-01 12:00:01 user 1000 port 22 from 192.0.2.2",
            "2024-05-01 12:00:02 user bob port 22 id conn-7 from 192.0.2.3",
            "2024-05-01 12:00:03 user bob port 22 id 192.0.2.4 from 192.0.2.4",
            "2024-05-01 12:00:04 user bob port 22 from ::ffff:192.0.2.5",
        ]
        let def = FilterConfiguration(name: "t", file: "t.conf", failregex: [ConfigValue(regex)])
        let problems = try Differential.compare(def, spec: ["failregex": [regex]], lines: lines)
        #expect(problems.isEmpty, "\(problems.joined(separator: "\n"))")

        let p = try CompiledFilter.testing(def).makeProcessor()
        p.process(lines[2])
        let f = try #require(p.failures.first)
        #expect(f.fields["user"] == "bob" && f.fields["fport"] == "22")
        #expect(f.host == "conn-7" && f.id == "conn-7" && f.address == nil)
        p.process(lines[4])
        #expect(p.failures.first?.address == IPAddress("192.0.2.5"))
    }

    @Test func idOnlyAndHostNameFailures() throws {
        let regex = #"^ (?:token <F-ID>\S+</F-ID>|from <HOST>)$"#
        let lines = ["2024-05-01 12:00:00 token abc", "2024-05-01 12:00:01 from mail.example.org"]
        let def = FilterConfiguration(name: "t", file: "t.conf", failregex: [ConfigValue(regex)])
        #expect(try Differential.compare(def, spec: ["failregex": [regex]], lines: lines).isEmpty)
    }

    @Test func hostNamesResolveThroughThePluggableResolver() throws {
        let def = FilterConfiguration(name: "t", file: "t.conf", failregex: [ConfigValue("^ from <HOST>$")])
        let options = FilterOptions(
            dnsMode: .yes,
            resolver: { name in
                name == "mail.example.org" ? [IPAddress("192.0.2.25")!, IPAddress("2001:db8::25")!] : []
            })
        let p = try CompiledFilter.testing(def, options: options).makeProcessor()
        #expect(p.process("2024-05-01 12:00:01 from mail.example.org") == .matched)
        #expect(p.failures.map(\.address) == [IPAddress("192.0.2.25"), IPAddress("2001:db8::25")])
        #expect(p.process("2024-05-01 12:00:01 from unknown.example.org") == .missed)
        #expect(p.failures.isEmpty)

        let noDNS = try CompiledFilter.testing(def, options: FilterOptions(dnsMode: .no)).makeProcessor()
        #expect(noDNS.process("2024-05-01 12:00:01 from mail.example.org") == .missed)
        #expect(noDNS.process("2024-05-01 12:00:01 from 192.0.2.1") == .matched)
    }
}
