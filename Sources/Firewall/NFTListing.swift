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

/// One element read back: address, timeout and time left in whole seconds (nil = none).
struct NFTListedElement: Sendable {
    var address: IPAddress
    var timeoutSeconds: Int?
    var expiresSeconds: Int?
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
                } else if let elem = raw["elem"], let text = elem["val"]?.stringValue, let address = IPAddress(text) {
                    elements.append(
                        NFTListedElement(
                            address: address, timeoutSeconds: elem["timeout"]?.intValue,
                            expiresSeconds: elem["expires"]?.intValue))
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

    /// True when a terse text listing of the table has the chain, every jail's two sets, and exactly the
    /// expected number of rules.
    static func isIntact(_ listing: String, ruleset: NFTRuleset, jails: [JailFirewall]) -> Bool {
        var lines: Set<Substring> = []
        var ruleLines = 0
        for line in listing.split(separator: "\n") {
            let trimmed = Substring(line.strippingEdges(" \t"))
            if trimmed.contains(" saddr @") { ruleLines += 1 } else { lines.insert(trimmed) }
        }
        guard lines.contains("chain \(ruleset.configuration.chainName) {") else { return false }
        var expectedRules = 0
        for jail in jails {
            for family in [IPAddress.Family.v4, .v6] {
                guard lines.contains("set \(ruleset.setName(jail: jail.name, family: family)) {") else { return false }
                expectedRules += ruleset.rules(for: jail, family: family).count
            }
        }
        return ruleLines == expectedRules
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
