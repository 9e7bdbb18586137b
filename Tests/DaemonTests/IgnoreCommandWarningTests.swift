import PortcullisTestKit
import Testing

@testable import Daemon

/// `ignorecommand` is read but never run: a jail that relies on it (fail2ban's apache-fakegooglebot shape) would
/// ban the addresses it is meant to spare, silently. The jail must say so when it starts.
@Suite struct IgnoreCommandWarningTests {
    @Test("a jail with ignorecommand warns that it is not run")
    func warns() throws {
        let tree = try BanCoordinatorTests.Tree(extra: "ignorecommand = /usr/local/bin/is-friend <ip>")
        let setups = try tree.setups(clock: ManualClock())
        #expect(!setups.isEmpty)
        for s in setups {
            #expect(s.warnings.contains { $0.contains("ignorecommand") && $0.contains("not run") }, "\(s.warnings)")
        }
    }

    @Test("no warning without ignorecommand")
    func quietWithout() throws {
        let tree = try BanCoordinatorTests.Tree()
        for s in try tree.setups(clock: ManualClock()) {
            #expect(!s.warnings.contains { $0.contains("ignorecommand") })
        }
    }
}
