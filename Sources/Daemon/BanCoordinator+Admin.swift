import Core
import Jail

/// Never locking out the admin (see ``AdminGuard``): bans of the addresses of authenticated sessions are
/// withheld, with a log line saying why; `set JAIL banip --force` bans them anyway.
extension BanCoordinator {
    /// Installs the guard (before ``start(_:broken:)``).
    public func setAdminGuard(_ guard: AdminGuard?) {
        adminGuard = `guard`
    }

    /// Why `address` must not be banned in `jail` without `--force`; nil when it may be. `client` is the SSH
    /// client address of the process running a manual ban.
    func adminProtection(jail: String, _ address: IPAddress, client: IPAddress?) -> String? {
        if let client, client == address { return "it is the address of the SSH session running this command" }
        return adminGuard?.protection(of: address)
    }

    /// True (and logged) when the automatic ban of `address` in `jail` is withheld.
    func withheld(jail: String, _ address: IPAddress) -> Bool {
        guard let why = adminProtection(jail: jail, address, client: nil) else { return false }
        actionsLog.warning(
            "[\(jail)] Ban of \(address) withheld: \(why); add it to ignoreip, or ban it with `set \(jail) banip --force \(address)`"
        )
        return true
    }
}
