import Core
import Foundation
import PortcullisTestKit
import Testing

@testable import Configuration
@testable import Daemon

/// Every stock fail2ban action (`/etc/fail2ban/action.d/*.conf`, read at test time) loaded as Portcullis loads
/// it, every command phase rendered with hostile values for both families: `sh -n` accepts each script, and run
/// (as `nobody`, with firewall, mail and network tools replaced by stubs) no payload executes.
@Suite(.blocking, .serialized) struct StockActionTemplateTests {
    static let actionDirectory = "/etc/fail2ban/action.d"
    static let phases = [
        "actionstart", "actionstop", "actioncheck", "actionban", "actionunban", "actionflush", "actionrepair",
        "actionreban", "actionprolong", "actionreload",
    ]
    /// Real, harmless tools the templates need to get as far as using their values (`touch` is the payload's).
    static let realTools = [
        "touch", "cat", "grep", "sed", "awk", "tr", "head", "tail", "date", "mkdir", "rm", "cut", "sort", "uniq",
        "wc", "xargs", "id", "env", "expr", "true", "false", "od", "uname", "basename", "dirname", "mktemp", "tee",
        "perl", "ls",
    ]
    /// Tools replaced by a stub that records nothing and succeeds.
    static let stubTools = [
        "iptables", "ip6tables", "iptables-save", "ip6tables-save", "iptables-restore", "nft", "ipset", "firewall-cmd",
        "ufw", "ipfw", "pfctl", "shorewall", "shorewall6", "apf", "csf", "route", "ip", "ss", "conntrack", "curl",
        "wget", "mail", "sendmail", "whois", "dig", "geoiplookup", "apprise", "nginx", "logger", "sleep", "npfctl",
        "ipf", "ipfstat", "nsupdate", "systemctl", "service", "blacklist", "netsh", "pkill", "kill", "host",
        "nslookup", "mutt", "xarf", "dshield", "smtp", "python", "python3", "badips", "sudo",
    ]

    /// A configuration tree on the stock action.d and filter.d with one jail.
    static func makeTree(_ dir: String) throws -> (ConfigTree, JailConfiguration) {
        let root = dir + "/etc"
        try FileManager.default.createDirectory(atPath: root, withIntermediateDirectories: true)
        symlink(actionDirectory, root + "/action.d")
        symlink("/etc/fail2ban/filter.d", root + "/filter.d")
        try """
        [t]
        enabled = true
        filter = sshd
        logpath = \(dir)/auth.log
        port = ssh
        protocol = tcp
        """.write(toFile: root + "/jail.conf", atomically: true, encoding: .utf8)
        let tree = ConfigTree(root: root)
        let result = tree.loadJails()
        let jail = try #require(result.jails.first { $0.name == "t" }, "jail t: \(result.errors)")
        return (tree, jail)
    }

    static func stockActions() -> [String] {
        ((try? FileManager.default.contentsOfDirectory(atPath: actionDirectory)) ?? [])
            .filter { $0.hasSuffix(".conf") }.map { String($0.dropLast(5)) }.sorted()
    }

    static func makeTools(_ dir: String) throws -> String {
        let bin = dir + "/bin"
        try FileManager.default.createDirectory(atPath: bin, withIntermediateDirectories: true)
        for tool in realTools {
            for prefix in ["/usr/bin/", "/bin/", "/usr/sbin/"] where Corpus.exists(prefix + tool) {
                symlink(prefix + tool, bin + "/" + tool)
                break
            }
        }
        for tool in stubTools where !Corpus.exists(bin + "/" + tool) {
            try "#!/bin/sh\nexit 0\n".write(toFile: bin + "/" + tool, atomically: true, encoding: .utf8)
            chmod(bin + "/" + tool, 0o755)
        }
        chmod(bin, 0o755)
        return bin
    }

    @Test("every stock action.d template renders to a script sh -n accepts and that runs no payload")
    func stockTemplates() throws {
        let names = Self.stockActions()
        try #require(names.count >= 40, "stock fail2ban actions not found in \(Self.actionDirectory)")
        try #require(Corpus.exists("/usr/bin/setpriv"), "setpriv (util-linux) is needed to run templates as nobody")
        let dir = try Corpus.makeDirectory()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let (tree, jail) = try Self.makeTree(dir)
        let bin = try Self.makeTools(dir)
        let marker = dir + "/pwned"
        let hostile = Corpus.hostileValues(marker: marker)

        var loaded = 0
        var scripts = 0
        var runs = 0
        var loadErrors: [String] = []
        var leftover: Set<String> = []
        for name in names {
            let action: ActionConfiguration
            do {
                action = try tree.loadAction(name, jail: jail)
            } catch {
                loadErrors.append("\(name): \(error)")
                continue
            }
            loaded += 1
            var commands: [String: String] = [:]
            for (k, v) in action.commands { commands[k] = v.value }
            let command = CommandAction(
                name: action.name, commands: commands, timeout: 10, staticTags: action.tags,
                conditionalTags: action.conditionalTags)
            for phase in Self.phases where commands[phase].map({ !$0.allSatisfy(\.isWhitespace) }) == true {
                for address in ["192.0.2.7", "2001:db8::7"] {
                    // Runs of every hostile value for ban and unban; three for the other phases.
                    let full = (phase == "actionban" || phase == "actionunban") && address == "192.0.2.7"
                    let values = full ? hostile : Array(hostile.prefix(3))
                    var checked: Set<String> = []
                    for value in values {
                        let ticket = ActionTicket(
                            address: IPAddress(address), time: 1_733_280_000, bantime: 600, failures: 3, bancount: 1,
                            matches: ["line one " + value, value], captures: ["user": value, "fid": value])
                        var v = ticket.values(base: ["name": "t", "port": "ssh", "protocol": "tcp"])
                        v.untrusted["ip-host"] = value
                        guard let rendered = command.script(phase, values: v) else { continue }
                        let script = rendered.script
                        #expect(!script.contains(marker), "\(name) \(phase): a value reached the script text")
                        #expect(!script.contains("<F-"), "\(name) \(phase): an <F-*> tag left unsubstituted")
                        let bytes = Array(script.utf8)
                        for i in bytes.indices where bytes[i] == UInt8(ascii: "<") {
                            if let (tag, _) = ShellTemplateRenderer.tag(in: bytes, at: i) {
                                leftover.insert("\(name): <\(tag)>")
                            }
                        }
                        if checked.insert(script).inserted {
                            scripts += 1
                            let syntax = Corpus.run(["/bin/sh", "-n", "-c", script])
                            #expect(syntax == 0, "\(name) \(phase) (\(address)): sh -n rejects\n\(script)")
                        }
                        runs += 1
                        Corpus.run(
                            [
                                "/usr/bin/setpriv", "--reuid=65534", "--regid=65534", "--clear-groups",
                                "/usr/bin/timeout", "10",
                            ] + rendered.argv,
                            environment: ["PATH=\(bin)", "HOME=\(dir)", "TMPDIR=\(dir)"])
                        #expect(
                            !Corpus.exists(marker),
                            "\(name) \(phase) (\(address)) ran the payload of \(value.debugDescription)\n\(script)")
                        unlink(marker)
                    }
                }
            }
        }
        #expect(loadErrors.isEmpty, "stock actions Portcullis cannot load: \(loadErrors)")
        #expect(loaded >= 40)
        print("tags left as written: \(leftover.sorted())")
        print(
            "stock action.d: \(loaded) actions, \(scripts) distinct scripts checked by sh -n, \(runs) runs with hostile values"
        )
    }
}
