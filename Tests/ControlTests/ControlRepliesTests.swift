import Testing

@testable import Control

@Suite("ControlReplies")
struct ControlRepliesTests {
    @Test("dropped command actions show in the Actions section only when there are some")
    func droppedActions() {
        func status(_ dropped: Int) -> ControlValue {
            ControlReplies.jailStatus(
                currentlyFailed: 0, totalFailed: 0, source: .files([]), currentlyBanned: 0, totalBanned: 0,
                bannedAddresses: [], actionsDropped: dropped)
        }
        let normal = StatusFormatter.format(status(0), for: ["status", "j"])
        let dropped = StatusFormatter.format(status(7), for: ["status", "j"])
        #expect(!normal.contains("dropped"))
        #expect(dropped.hasSuffix("`- Command actions dropped:\t7"))
    }

    @Test("a journal jail's status prints like fail2ban 1.0.2's (captured from a real systemd-backend jail)")
    func journalStatus() {
        let value = ControlReplies.jailStatus(
            currentlyFailed: 0, totalFailed: 0, source: .journal([["_SYSTEMD_UNIT=ssh.service"], ["_COMM=sshd"]]),
            currentlyBanned: 0, totalBanned: 0, bannedAddresses: [])
        #expect(
            StatusFormatter.format(value, for: ["status", "jsd"])
                == """
                Status for the jail: jsd
                |- Filter
                |  |- Currently failed:\t0
                |  |- Total failed:\t0
                |  `- Journal matches:\t_SYSTEMD_UNIT=ssh.service + _COMM=sshd
                `- Actions
                   |- Currently banned:\t0
                   |- Total banned:\t0
                   `- Banned IP list:\t
                """)
        #expect(
            StatusFormatter.format(
                ControlReplies.journalMatch([["_SYSTEMD_UNIT=ssh.service"], ["_COMM=sshd"]]),
                for: ["get", "jsd", "journalmatch"])
                == "Current match filter:\n_SYSTEMD_UNIT=ssh.service + _COMM=sshd")
    }

    @Test("file status, server status and banned replies have the wire bytes fail2ban-server sends")
    func sameBytesAsFail2ban() throws {
        func reply(_ command: [String]) throws -> [UInt8] {
            bytes(hex: try #require(Golden.exchanges.first { $0.command == command }).reply)
        }
        #expect(
            PickleWire.encodeReply(.success(ControlReplies.serverStatus(jails: ["sshd", "web"])))
                == (try reply(["status"])))
        let sshd = ControlReplies.jailStatus(
            currentlyFailed: 0, totalFailed: 0, source: .files(["/tmp/f2bcap/auth.log"]), currentlyBanned: 0,
            totalBanned: 0, bannedAddresses: [])
        #expect(PickleWire.encodeReply(.success(sshd)) == (try reply(["status", "sshd"])))
        #expect(
            PickleWire.encodeReply(.failure(ControlReplies.invalidCommand))
                == (try reply(["get", "sshd", "nosuchprop"])))
        #expect(PickleWire.encodeReply(.failure(ControlReplies.incompleteCommand)) == (try reply(["get", "sshd"])))
        // The captured `banned` reply wraps addresses in str subclasses; compare decoded values.
        let banned = ControlReplies.banned(byJail: [("sshd", ["192.0.2.1", "192.0.2.2"]), ("web", ["2001:db8::1"])])
        #expect(PickleWire.response(from: try PickleDecoder().decode(try reply(["banned"]))) == .success(banned))
        #expect(
            StatusFormatter.format(ControlReplies.banned(jailsPerAddress: [["sshd"], []]), for: ["banned", "a", "b"])
                == "[['sshd'], []]")
    }
}
