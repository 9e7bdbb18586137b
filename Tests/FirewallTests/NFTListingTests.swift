import Core
import Testing

@testable import Firewall

@Suite struct NFTListingTests {
    @Test func parsesElementsWithAndWithoutTimeouts() throws {
        let json = """
            {"nftables": [{"metainfo": {"version": "1.0.6", "json_schema_version": 1}}, \
            {"set": {"family": "inet", "name": "addr-set-sshd", "table": "portcullis", "type": "ipv4_addr", \
            "handle": 2, "flags": ["timeout"], "elem": [{"elem": {"val": "192.0.2.1", "timeout": 20, "expires": 19}}, \
            "192.0.2.2", {"elem": {"val": "2001:db8::1", "timeout": 3600, "expires": 1799}}, "not-an-address"]}}, \
            {"set": {"family": "inet", "name": "other", "table": "someone-else", "type": "ipv4_addr", "elem": ["192.0.2.9"]}}]}
            """
        let sets = try NFTListing.sets(fromJSON: json, table: "portcullis")
        #expect(sets.count == 1)
        let set = try #require(sets.first)
        #expect(set.name == "addr-set-sshd")
        #expect(set.type == "ipv4_addr")
        #expect(set.flags == ["timeout"])
        #expect(
            set.elements.map(\.address) == [
                IPAddress("192.0.2.1")!, IPAddress("192.0.2.2")!, IPAddress("2001:db8::1")!,
            ])
        #expect(set.elements.map(\.timeoutSeconds) == [20, nil, 3600])
        #expect(set.elements.map(\.expiresSeconds) == [19, nil, 1799])
    }

    @Test func rejectsGarbage() {
        #expect(throws: FirewallError.self) { try NFTListing.sets(fromJSON: "table inet x {", table: "x") }
    }

    @Test func tableListing() {
        #expect(NFTListing.hasTable("portcullis", inTextListing: "table ip nat\ntable inet portcullis\n"))
        #expect(!NFTListing.hasTable("portcullis", inTextListing: "table ip portcullis\ntable inet portcullis2\n"))
    }

    @Test func chainListing() {
        let listing = """
            table ip other {
            	chain bans {
            	}
            }
            table inet portcullis {
            	chain input {
            		type filter hook input priority filter - 1; policy accept;
            	}
            	chain bans {
            		type filter hook input priority filter - 1; policy accept;
            	}
            }
            table inet empty {
            }
            """
        #expect(NFTListing.hasChain("bans", table: "portcullis", inChainsListing: listing))
        #expect(NFTListing.hasChain("input", table: "portcullis", inChainsListing: listing))
        #expect(!NFTListing.hasChain("bans", table: "empty", inChainsListing: listing))
        #expect(!NFTListing.hasChain("x", table: "portcullis", inChainsListing: listing))
        #expect(!NFTListing.hasChain("bans", table: "portcullis", inChainsListing: ""))
    }

    @Test func intactNeedsChainSetsAndEveryRule() {
        let ruleset = NFTRuleset(configuration: FirewallConfiguration())
        let sshd = JailFirewall(name: "sshd", ports: .ports([PortRange(22)]))
        let listing = """
            table inet portcullis {
            \tset addr-set-sshd {
            \t\ttype ipv4_addr
            \t\tflags timeout
            \t}

            \tset addr6-set-sshd {
            \t\ttype ipv6_addr
            \t\tflags timeout
            \t}

            \tchain bans {
            \t\ttype filter hook input priority filter - 1; policy accept;
            \t\ttcp dport 22 ip saddr @addr-set-sshd reject with tcp reset
            \t\ttcp dport 22 ip6 saddr @addr6-set-sshd reject with tcp reset
            \t}
            }
            """
        #expect(NFTListing.isIntact(listing, ruleset: ruleset, jails: [sshd]))
        let noRule = listing.replacingOccurrences(
            of: "\t\ttcp dport 22 ip6 saddr @addr6-set-sshd reject with tcp reset\n", with: "")
        #expect(!NFTListing.isIntact(noRule, ruleset: ruleset, jails: [sshd]))
        let noSet = listing.replacingOccurrences(of: "set addr6-set-sshd {", with: "set something {")
        #expect(!NFTListing.isIntact(noSet, ruleset: ruleset, jails: [sshd]))
        let noChain = listing.replacingOccurrences(of: "chain bans {", with: "chain input {")
        #expect(!NFTListing.isIntact(noChain, ruleset: ruleset, jails: [sshd]))
        #expect(!NFTListing.isIntact(listing, ruleset: ruleset, jails: [sshd, JailFirewall(name: "x", ports: .all)]))
        // A foreign rule in the chain, or a ban rule that no longer rejects, is damage too.
        let extraAccept = listing.replacingOccurrences(
            of: "policy accept;\n", with: "policy accept;\n\t\taccept\n")
        #expect(!NFTListing.isIntact(extraAccept, ruleset: ruleset, jails: [sshd]))
        let acceptSet = listing.replacingOccurrences(
            of: "tcp dport 22 ip saddr @addr-set-sshd reject with tcp reset",
            with: "tcp dport 22 ip saddr @addr-set-sshd accept")
        #expect(!NFTListing.isIntact(acceptSet, ruleset: ruleset, jails: [sshd]))
        // A jail that bans forwarded connections needs the forward chain and its rules as well.
        let forwarding = JailFirewall(name: "sshd", ports: .ports([PortRange(22)]), banForward: .yes)
        #expect(!NFTListing.isIntact(listing, ruleset: ruleset, jails: [forwarding]))
        let withForward = listing.replacingOccurrences(
            of: "\t}\n}",
            with: """
                \t}

                \tchain bans-forward {
                \t\ttype filter hook forward priority filter - 1; policy accept;
                \t\ttcp dport 22 ip saddr @addr-set-sshd reject with tcp reset
                \t\ttcp dport 22 ip6 saddr @addr6-set-sshd reject with tcp reset
                \t}
                }
                """)
        #expect(NFTListing.isIntact(withForward, ruleset: ruleset, jails: [forwarding]))
        let forwardAccept = withForward.replacingOccurrences(
            of:
                "priority filter - 1; policy accept;\n\t\ttcp dport 22 ip saddr @addr-set-sshd reject with tcp reset\n\t\ttcp dport 22 ip6",
            with: "priority filter - 1; policy accept;\n\t\taccept\n\t\ttcp dport 22 ip6")
        #expect(forwardAccept != withForward)
        #expect(!NFTListing.isIntact(forwardAccept, ruleset: ruleset, jails: [forwarding]))
        let duplicated = listing.replacingOccurrences(
            of: "\t\ttcp dport 22 ip saddr @addr-set-sshd reject with tcp reset\n",
            with: "\t\ttcp dport 22 ip saddr @addr-set-sshd reject with tcp reset\n\t\tip saddr 192.0.2.0/24 accept\n")
        #expect(!NFTListing.isIntact(duplicated, ruleset: ruleset, jails: [sshd]))
    }
}
