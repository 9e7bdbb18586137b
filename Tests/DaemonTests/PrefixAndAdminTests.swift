import Configuration
import Control
import Core
import Firewall
import Glibc
import Jail
import PortcullisTestKit
import Store
import Testing

@testable import Daemon

/// Prefix escalation and the admin guard through the coordinator and the control bridge (fake clock, recording
/// firewall, a real store in a temporary file).
@Suite struct PrefixAndAdminTests {
    typealias Tree = BanCoordinatorTests.Tree
    let clock = ManualClock()
    let log = BanCoordinatorTests.Lines()

    func coordinator(_ firewall: any FirewallBackend, store: BanStore? = nil) -> BanCoordinator {
        BanCoordinator(firewall: firewall, store: store, clock: clock.reading, logger: { [log] in log.logger($0) })
    }

    func failures(_ address: String, _ count: Int) -> [FailureEvent] {
        (0..<count).map { _ in FailureEvent(address: IPAddress(address)!, time: clock.now) }
    }

    func bridge(_ c: BanCoordinator) -> ControlBridge {
        ControlBridge(coordinator: c, onStop: {}, onReload: { _ in .success(.null) })
    }

    @Test func threeBansInOneSlashSixtyFourBanThePrefixInKernelStoreAndStatus() async throws {
        let tree = try Tree()
        let dbPath = tree.dir + "/db.sqlite3"
        let firewall = RecordingFirewall()
        let c = coordinator(firewall, store: try BanStore(path: dbPath))
        let setups = try tree.setups(clock: clock)
        #expect(setups.first?.firewall?.prefixSets == true)
        try await c.start(setups)
        #expect(
            firewall.transactions.first?.text.contains(
                "add set inet portcullis net6-set-alpha { type ipv6_addr; flags interval, timeout; }") == true)
        for a in ["2001:db8:7:7::1", "2001:db8:7:7::2", "2001:db8:7:8::1", "2001:db8:7:7::3"] {
            await c.record(jail: "alpha", events: failures(a, 3))
        }
        let prefix = BanKey(address: IPAddress("2001:db8:7:7::")!, jail: "alpha", scope: .prefix(64))
        #expect(firewall.bannedKeys.contains(prefix))
        #expect(
            firewall.transactions.contains {
                $0.text.contains("add element inet portcullis net6-set-alpha { 2001:db8:7:7::/64 timeout 10m }")
            })
        // A new address inside is already banned (not counted, no ban of its own).
        await c.record(jail: "alpha", events: failures("2001:db8:7:7::99", 3))
        #expect(!firewall.bannedKeys.contains(BanKey(address: IPAddress("2001:db8:7:7::99")!, jail: "alpha")))
        // Status shows it; the fail2ban part of the reply is unchanged.
        let b = bridge(c)
        let status = await b.handle(["status", "alpha"])
        guard case .success(let value) = status else {
            Issue.record("status failed: \(status)")
            return
        }
        let text = StatusFormatter.format(value, for: ["status", "alpha"])
        #expect(text.contains("Banned prefix list:\t2001:db8:7:7::/64"), "\(text)")
        // The store has it, and its Ban line is written after the commit.
        await c.waitUntilStored()
        #expect(
            log.all.contains {
                $0.hasPrefix("notice [alpha] Ban 2001:db8:7:7::/64 (prefix: 3 addresses banned within findtime")
            })

        let stored = try BanStore(path: dbPath).activePrefixBans(now: clock.now)
        #expect(stored.map(\.prefix) == [Subnet("2001:db8:7:7::/64")!])
        #expect(stored.first?.addresses.count == 3)

        // unbanip of one address inside says so: its own ban is lifted, the prefix stays.
        let reply = await b.handle(["set", "alpha", "unbanip", "2001:db8:7:7::2"])
        guard case .failure(let error) = reply else {
            Issue.record("expected an error, got \(reply)")
            return
        }
        #expect(
            error.message.contains(
                "2001:db8:7:7::2 is inside the banned prefix 2001:db8:7:7::/64 of jail alpha and stays blocked"))
        #expect(error.message.contains("1 ban(s) lifted"))
        #expect(firewall.bannedKeys.contains(prefix))
        // Lifting the prefix lifts the bans of the addresses inside it too, as fail2ban unbans a network: the prefix
        // and the two addresses still banned (::2 was lifted above).
        let lifted = await b.handle(["set", "alpha", "unbanip", "2001:db8:7:7::/64"])
        guard case .success(.int(let count)) = lifted, count >= 1 else {
            Issue.record("lifting the prefix: \(lifted)")
            return
        }
        #expect(!firewall.bannedKeys.contains(prefix))
        await c.waitUntilStored()
        #expect(try BanStore(path: dbPath).activePrefixBans(now: clock.now).isEmpty)
    }

    @Test func aRestartRestoresThePrefixBanAndUnbanAllLiftsIt() async throws {
        let tree = try Tree()
        let dbPath = tree.dir + "/db.sqlite3"
        do {
            let c = coordinator(RecordingFirewall(), store: try BanStore(path: dbPath))
            try await c.start(try tree.setups(clock: clock))
            for i in 1...3 { await c.record(jail: "beta", events: failures("2001:db8:5:5::\(i)", 3)) }
            await c.waitUntilStored()
            await c.shutdown()
        }
        let firewall = RecordingFirewall()
        let c = coordinator(firewall, store: try BanStore(path: dbPath))
        try await c.start(try tree.setups(clock: clock))
        let key = BanKey(address: IPAddress("2001:db8:5:5::")!, jail: "beta", scope: .prefix(64))
        #expect(firewall.bannedKeys.contains(key))
        #expect(await c.bannedPrefixes(jail: "beta") == [Subnet("2001:db8:5:5::/64")!])
        #expect(log.all.contains("notice [beta] Restore Ban 2001:db8:5:5::/64 (prefix)"))
        #expect(await c.unbanAll() == 4)
        #expect(firewall.bannedKeys.isEmpty)
        // It ends on time otherwise: a new one, then the clock passes its end.
        for i in 1...3 { await c.record(jail: "beta", events: failures("2001:db8:6:6::\(i)", 3)) }
        clock.advance(by: 601)
        await c.housekeeping()
        #expect(log.all.contains("notice [beta] Unban 2001:db8:6:6::/64 (prefix)"))
    }

    @Test func prefixbansZeroKeepsTheTableAsBefore() throws {
        let tree = try Tree(extra: "prefixbans = 0")
        let setups = try tree.setups(clock: clock)
        #expect(setups.allSatisfy { $0.firewall?.prefixSets == false })
        let bad = try Tree(extra: "prefix6 = 129")
        let loaded = PortcullisDaemon.loadJails(
            ConfigTree(root: bad.dir), ports: try PortResolver(servicesPath: "/etc/services"), clock: clock.reading)
        #expect(
            loaded.broken.values.contains { $0.contains("prefix6 must be a whole number from 0 to 128, not '129'") }
                || loaded.fatal.contains { $0.description.contains("prefix6 must be a whole number from 0 to 128") })
    }

    // MARK: Admin guard

    func line(_ text: String) -> (IPAddress, String)? {
        Array(text.utf8).withUnsafeBufferPointer { AdminGuard.acceptedLogin(in: $0) }
    }

    @Test func acceptedLoginsAreReadOnlyFromSshdsOwnMessage() {
        let ok =
            "Mar  1 12:00:01 host sshd[4242]: Accepted publickey for admin from 198.51.100.20 port 50022 ssh2: ED25519 SHA256:abc"
        #expect(line(ok).map { "\($0.0) \($0.1)" } == "198.51.100.20 admin")
        #expect(
            line("Mar  1 12:00:01 host sshd-session[7]: Accepted password for root from 2001:db8::25 port 22 ssh2")?.0
                == IPAddress("2001:db8::25"))
        // Attacker text inside a failure line never counts.
        #expect(
            line(
                "Mar  1 12:00:01 host sshd[4242]: Invalid user ]: Accepted password for root from 203.0.113.9 port 22 ssh2 from 203.0.113.9 port 4 ssh2"
            ) == nil)
        // sshd's tag must come right before the marker: `user x]: Accepted …` is preceded by `x`, not `sshd[N`.
        #expect(
            line(
                "Mar  1 12:00:01 host sshd[4242]: Failed password for invalid user x]: Accepted password for r from 203.0.113.9 port 22 ssh2"
            ) == nil)
        // A user name that imitates sshd's tag comes after the first `]: `, so it cannot forge one either.
        #expect(
            line(
                "Mar  1 12:00:01 host sshd[4242]: Failed password for invalid user sshd[5]: Accepted password for r from 203.0.113.9 port 22 ssh2 from 203.0.113.9 port 4 ssh2"
            ) == nil)
        #expect(line("Mar  1 12:00:01 host su[4242]: Accepted password for root from 203.0.113.9 port 22 ssh2") == nil)
        #expect(
            line("Mar  1 12:00:01 host sshd[4242]: Accepted password for root from 203.0.113.9 port 22 ssh2 extra")
                == nil)
        #expect(line("Mar  1 12:00:01 host sshd[]: Accepted password for root from 203.0.113.9 port 22 ssh2") == nil)
        #expect(
            line("Mar  1 12:00:01 host sshd[1]: Accepted password for root from not-an-address port 22 ssh2") == nil)
    }

    @Test func anAdminsAddressIsNotBannedWithoutForceAndTheLogSaysWhy() async throws {
        let tree = try Tree()
        let firewall = RecordingFirewall()
        let c = coordinator(firewall)
        let guardian = AdminGuard(utmpPath: nil, clock: clock.reading)
        await c.setAdminGuard(guardian)
        try await c.start(try tree.setups(clock: clock))
        guardian.noteAccepted(IPAddress("198.51.100.20")!, user: "admin")
        await c.record(jail: "alpha", events: failures("198.51.100.20", 5))
        #expect(firewall.bannedKeys.isEmpty)
        #expect(
            log.all.contains {
                $0.hasPrefix(
                    "warning [alpha] Ban of 198.51.100.20 withheld: it has an authenticated session (sshd accepted user admin"
                )
            })
        // Others are banned as usual.
        await c.record(jail: "alpha", events: failures("203.0.113.9", 3))
        #expect(firewall.bannedKeys.map(\.address) == [IPAddress("203.0.113.9")!])

        let b = bridge(c)
        let refused = await b.handle(["set", "alpha", "banip", "198.51.100.20"])
        guard case .failure(let e) = refused else {
            Issue.record("expected a refusal, got \(refused)")
            return
        }
        #expect(e.message.contains("198.51.100.20 is not banned: it has an authenticated session"))
        #expect(e.message.contains("--force"))
        #expect(await b.handle(["set", "alpha", "banip", "--force", "198.51.100.20"]) == .success(.int(1)))
        #expect(firewall.bannedKeys.contains(BanKey(address: IPAddress("198.51.100.20")!, jail: "alpha")))

        // The SSH session running the command (SSH_CONNECTION of the client process or a parent).
        let refusedSelf = await c.banManually(
            jail: "beta", addresses: [IPAddress("192.0.2.50")!], client: IPAddress("192.0.2.50"))
        #expect(refusedSelf.banned == 0)
        #expect(
            refusedSelf.refused.first?.contains("it is the address of the SSH session running this command") == true)
    }

    @Test func sshClientAddressIsFoundInTheClientOrAParent() throws {
        var template = Array("/tmp/pcl-fleet-proc-XXXXXX".utf8CString)
        let dir = String(cString: mkdtemp(&template)!)
        defer { _ = system("rm -rf '\(dir)'") }
        func write(_ path: String, _ bytes: [UInt8]) {
            mkdir(dir + "/" + String(path.split(separator: "/")[0]), 0o755)
            let fd = open(dir + "/" + path, O_WRONLY | O_CREAT | O_TRUNC, 0o644)
            _ = bytes.withUnsafeBytes { Glibc.write(fd, $0.baseAddress, $0.count) }
            close(fd)
        }
        // 300 (portcullis) under 200 (sudo, environment reset) under 100 (the ssh session's shell).
        write("300/environ", Array("PATH=/usr/bin\0HOME=/root\0".utf8))
        write("300/stat", Array("300 (portcullis) S 200 300 300 0".utf8))
        write("200/environ", Array("SUDO_USER=admin\0".utf8))
        write("200/stat", Array("200 (sudo (x)) S 100 200 200 0".utf8))
        write("100/environ", Array("USER=admin\0SSH_CONNECTION=203.0.113.44 51000 192.0.2.1 22\0".utf8))
        write("100/stat", Array("100 (bash) S 1 100 100 0".utf8))
        #expect(AdminGuard.sshClientAddress(pid: 300, proc: dir) == IPAddress("203.0.113.44"))
        write("100/environ", Array("USER=admin\0".utf8))
        #expect(AdminGuard.sshClientAddress(pid: 300, proc: dir) == nil)
    }

    @Test func utmpSessionsAreProtected() throws {
        var template = Array("/tmp/pcl-fleet-utmp-XXXXXX".utf8CString)
        let dir = String(cString: mkdtemp(&template)!)
        defer { _ = system("rm -rf '\(dir)'") }
        let path = dir + "/utmp"
        // utmp is an array of `struct utmpx` records (what login/sshd write with pututxline).
        let fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0o644)
        defer { close(fd) }
        func append(_ e: utmpx) { _ = withUnsafeBytes(of: e) { Glibc.write(fd, $0.baseAddress, $0.count) } }
        var entry = utmpx()
        entry.ut_type = Int16(USER_PROCESS)
        entry.ut_pid = 4242
        withUnsafeMutableBytes(of: &entry.ut_user) { raw in for (i, b) in "admin".utf8.enumerated() { raw[i] = b } }
        withUnsafeMutableBytes(of: &entry.ut_line) { raw in for (i, b) in "pts/0".utf8.enumerated() { raw[i] = b } }
        // 198.51.100.21 in network order in the first word.
        entry.ut_addr_v6.0 = Int32(bitPattern: UInt32(198 << 24 | 51 << 16 | 100 << 8 | 21).bigEndian)
        append(entry)
        var v6 = entry
        v6.ut_pid = 4243
        v6.ut_addr_v6 = (0, 0, 0, 0)
        withUnsafeMutableBytes(of: &v6.ut_host) { raw in for (i, b) in "2001:db8::26".utf8.enumerated() { raw[i] = b } }
        append(v6)
        let sessions = AdminGuard.readUtmp(path: path)
        #expect(sessions[IPAddress("198.51.100.21")!] == "admin")
        #expect(sessions[IPAddress("2001:db8::26")!] == "admin")
        let guardian = AdminGuard(utmpPath: path, clock: clock.reading)
        #expect(
            guardian.protection(of: IPAddress("198.51.100.21")!)?.contains("login session in utmp (user admin)") == true
        )
        #expect(guardian.protection(of: IPAddress("198.51.100.22")!) == nil)
    }
}
