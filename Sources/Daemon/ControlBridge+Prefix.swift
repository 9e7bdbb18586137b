import Control
import Core

extension ControlBridge {
    /// `status JAIL` entries beyond fail2ban's: the banned prefixes, when there are any.
    func extraStatus(jail: String) async -> [(String, ControlValue)] {
        var extra: [(String, ControlValue)] = []
        let prefixes = await coordinator.bannedPrefixes(jail: jail)
        if !prefixes.isEmpty { extra.append(("Banned prefix list", Self.strings(prefixes.map(\.description)))) }
        let fleet = await coordinator.fleetStatus(jail: jail)
        if !fleet.isEmpty {
            extra.append(("Fleet bans", .int(fleet.count)))
            extra.append(("Fleet ban list", Self.strings(fleet)))
        }
        return extra
    }

    /// `unban ADDR…` and `set JAIL unbanip ADDR…`: addresses, and networks (`2001:db8:1:2::/64`) for prefix bans.
    /// Like fail2ban, an address that is not banned counts 0. An address still blocked afterwards by a prefix ban
    /// covering it is an error that says so and how to lift the prefix (its own ban, if any, is lifted).
    func unban(words: ArraySlice<String>, jail: String?) async -> ControlResponse {
        var addresses: [IPAddress] = []
        var prefixes: [Subnet] = []
        for w in words {
            if w.contains("/") {
                guard let p = Subnet(w) else {
                    return .failure(ControlError(.invalidArgument, "'\(w)' is not an IPv4 or IPv6 network"))
                }
                prefixes.append(p)
            } else if let a = IPAddress(w) {
                addresses.append(a)
            } else if jail != nil {
                return .failure(ControlError(.invalidArgument, "'\(w)' is not an IPv4 or IPv6 address"))
            }
        }
        var count = await coordinator.unban(addresses, jail: jail)
        for p in prefixes { count += await coordinator.unban(prefix: p, jail: jail) }
        var still: [String] = []
        for a in addresses {
            for (name, p) in await coordinator.prefixBans(covering: a, jail: jail) {
                still.append(
                    "\(a) is inside the banned prefix \(p) of jail \(name) and stays blocked; lift the prefix with "
                        + "`portcullis set \(name) unbanip \(p)`")
            }
        }
        if !still.isEmpty {
            let lifted = count > 0 ? "\(count) ban(s) lifted, but " : ""
            return .failure(ControlError(.failed, lifted + still.joined(separator: "; ")))
        }
        return .success(.int(count))
    }
}
