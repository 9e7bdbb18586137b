import Core

/// A set as read back from the kernel (`nft -j list …`).
struct NFTListedSet: Sendable {
    /// The set name.
    var name: String
    /// `ipv4_addr`, `ipv6_addr`, …
    var type: String
    /// Set flags such as `timeout`.
    var flags: [String]
    /// The elements.
    var elements: [NFTListedElement]
}

/// One element read back: address (a prefix's network address), timeout and time left in whole seconds (nil =
/// none).
struct NFTListedElement: Sendable {
    var address: IPAddress
    var timeoutSeconds: Int?
    var expiresSeconds: Int?
    /// The prefix length of an interval set's prefix element.
    var prefixLength: Int? = nil
}

/// Parses libnftables JSON listings.
enum NFTListing {
    /// The sets in a JSON listing (of a set, a table or the ruleset), optionally only those of `table`.
    static func sets(fromJSON json: String, table: String) throws(FirewallError) -> [NFTListedSet] {
        guard let root = try? JSON.parse(json), let items = root["nftables"]?.arrayValue else {
            throw FirewallError(
                code: .unexpectedOutput, message: "cannot parse libnftables JSON listing: \(json.prefix(200))")
        }
        var sets: [NFTListedSet] = []
        for item in items {
            guard let set = item["set"], set["table"]?.stringValue == table, let name = set["name"]?.stringValue
            else { continue }
            var elements: [NFTListedElement] = []
            for raw in set["elem"]?.arrayValue ?? [] {
                if let text = raw.stringValue, let address = IPAddress(text) {
                    elements.append(NFTListedElement(address: address, timeoutSeconds: nil, expiresSeconds: nil))
                } else if let (address, length) = prefix(raw) {
                    elements.append(
                        NFTListedElement(
                            address: address, timeoutSeconds: nil, expiresSeconds: nil, prefixLength: length))
                } else if let elem = raw["elem"], let val = elem["val"] {
                    var element: NFTListedElement
                    if let text = val.stringValue, let address = IPAddress(text) {
                        element = NFTListedElement(address: address, timeoutSeconds: nil, expiresSeconds: nil)
                    } else if let (address, length) = prefix(val) {
                        element = NFTListedElement(
                            address: address, timeoutSeconds: nil, expiresSeconds: nil, prefixLength: length)
                    } else {
                        continue
                    }
                    element.timeoutSeconds = elem["timeout"]?.intValue
                    element.expiresSeconds = elem["expires"]?.intValue
                    elements.append(element)
                }
            }
            let flags: [String]
            if let list = set["flags"]?.arrayValue {
                flags = list.compactMap(\.stringValue)
            } else if let one = set["flags"]?.stringValue {
                flags = [one]
            } else {
                flags = []
            }
            sets.append(
                NFTListedSet(name: name, type: set["type"]?.stringValue ?? "", flags: flags, elements: elements))
        }
        return sets
    }

    /// `{"prefix": {"addr": "2001:db8:1:2::", "len": 64}}` as network address and length.
    static func prefix(_ value: JSON) -> (IPAddress, Int)? {
        guard let p = value["prefix"], let text = p["addr"]?.stringValue, let address = IPAddress(text),
            let length = p["len"]?.intValue, length >= 0, length <= address.bitWidth
        else { return nil }
        return (address, length)
    }

    /// True when a terse text listing of the table has the chain (and the forward chain when a jail bans forwarded
    /// connections), every jail's sets, and exactly the expected rules: each jail's number of rules on each of
    /// its sets over both chains, and no other rule in either chain (a foreign
    /// `accept`, or a ban rule replaced by one that does not reject or drop, voids every ban).
    static func isIntact(_ listing: String, ruleset: NFTRuleset, jails: [JailFirewall]) -> Bool {
        var lines: Set<Substring> = []
        var rulesPerSet: [Substring: Int] = [:]
        var inChain = false
        let chainHeader = "chain \(ruleset.configuration.chainName) {"
        let forwardHeader = "chain \(ruleset.forwardChainName) {"
        for line in listing.split(separator: "\n") {
            let trimmed = Substring(line.strippingEdges(" \t"))
            if inChain {
                if trimmed == "}" {
                    inChain = false
                } else if !trimmed.hasPrefix("type ") {
                    guard let set = banRuleSet(trimmed) else { return false }
                    rulesPerSet[set, default: 0] += 1
                }
                continue
            }
            if trimmed == chainHeader || trimmed == forwardHeader { inChain = true }
            lines.insert(trimmed)
        }
        guard lines.contains(Substring(chainHeader)) else { return false }
        if jails.contains(where: { $0.banForward == .yes }) && !lines.contains(Substring(forwardHeader)) {
            return false
        }
        var expected: [Substring: Int] = [:]
        for jail in jails {
            for kind in jail.scopes {
                for family in [IPAddress.Family.v4, .v6] {
                    let name = ruleset.setName(jail: jail.name, family: family, kind: kind)
                    guard lines.contains("set \(name) {") else { return false }
                    expected[Substring(name), default: 0] += ruleset.rules(for: jail, family: family, kind: kind).count
                }
            }
        }
        return rulesPerSet == expected.filter { $0.value > 0 }
    }

    /// The set a ban rule matches on (`… saddr @SET … reject …` or `… drop`); nil for any other rule.
    static func banRuleSet(_ rule: Substring) -> Substring? {
        let words = rule.split(separator: " ")
        guard let i = words.firstIndex(where: { $0.hasPrefix("@") }), i > 0, words[i - 1] == "saddr" else { return nil }
        let others = words.filter { $0.hasPrefix("@") }
        guard others.count == 1 else { return nil }
        let verdicts: Set<Substring> = ["accept", "return", "jump", "goto", "continue", "queue", "notrack"]
        guard !words.contains(where: verdicts.contains), words.contains("reject") || words.last == "drop" else {
            return nil
        }
        return words[i].dropFirst()
    }

    /// True when the text output of `list chains` shows `chain` inside `table inet TABLE`.
    static func hasChain(_ chain: String, table: String, inChainsListing text: String) -> Bool {
        var inTable = false
        for line in text.split(separator: "\n") {
            let trimmed = line.strippingEdges(" \t")
            if trimmed.hasPrefix("table ") {
                inTable = trimmed == "table inet \(table) {"
            } else if inTable && trimmed == "chain \(chain) {" {
                return true
            }
        }
        return false
    }

    /// True when the text output of `list tables` names `table inet NAME`.
    static func hasTable(_ name: String, inTextListing text: String) -> Bool {
        text.split(separator: "\n").contains { $0.strippingEdges(" \t") == "table inet \(name)" }
    }
}
