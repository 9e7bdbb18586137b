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
}
