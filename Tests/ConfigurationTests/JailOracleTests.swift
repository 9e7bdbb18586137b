import Foundation
import PortcullisTestKit
import Testing

@testable import Configuration

/// Every jail of /etc/fail2ban/jail.conf, enabled in a scratch copy, resolved by us and by fail2ban.
@Suite("Jail oracle", .blocking)
struct JailOracleTests {
    struct FilterResult: Decodable {
        var prefregex: String?
        var failregex: [String]
        var ignoreregex: [String]
        var maxlines: Int?
        var datepattern: String?
        var journalmatch: [[String]]
    }
    struct Expected: Decodable {
        var error: String?
        var convertError: String?
        var opts: [String: String]?
        var values: [String: String]?
        var actions: [ActionSpec]?
        var filter: FilterResult?
        var actionprops: [ActionProps]?
    }
    struct ActionSpec: Decodable {
        var name: String
        var arguments: [String: String]
        init(from decoder: Decoder) throws {
            var c = try decoder.unkeyedContainer()
            name = try c.decode(String.self)
            arguments = try c.decode([String: String].self)
        }
    }
    struct ActionProps: Decodable {
        var name: String
        var props: [[String]]
        init(from decoder: Decoder) throws {
            var c = try decoder.unkeyedContainer()
            name = try c.decode(String.self)
            props = try c.decode([[String]].self)
        }
    }

    /// Runs the oracle on a scratch copy of /etc/fail2ban (it writes jail.local there) and loads the same copy.
    /// The caller removes the copy (`tree.root`) when done.
    static func run(
        files: [String: String] = [:]
    ) throws -> (
        expected: [String: Expected], result: JailsLoadResult, tree: ConfigTree, order: [String]
    ) {
        let root = try Oracle.copyTree("/etc/fail2ban")
        for (path, text) in files {
            let full = root + "/" + path
            try FileManager.default.createDirectory(
                atPath: (full as NSString).deletingLastPathComponent, withIntermediateDirectories: true)
            try text.write(toFile: full, atomically: true, encoding: .utf8)
        }
        let data = try Oracle.run(jailOracleScript, files.isEmpty ? [root] : [root, "asis"])
        let expected = try JSONDecoder().decode([String: Expected].self, from: data)
        let tree = ConfigTree(root: root)
        let result = tree.loadJails()
        return (expected, result, tree, result.jails.map(\.name))
    }

    @Test("every action of every jail resolves as fail2ban resolves it")
    func allActions() throws {
        let (expected, result, tree, _) = try Self.run()
        defer { try? FileManager.default.removeItem(atPath: tree.root) }
        let (total, differences) = Self.compareActions(expected, result, tree, label: "Action oracle")
        #expect(total > 80)
        #expect(differences.isEmpty)
    }

    /// Resolves every action of every jail and compares commands, flags and tags with fail2ban's.
    static func compareActions(
        _ expected: [String: Expected], _ result: JailsLoadResult, _ tree: ConfigTree, label: String
    ) -> (total: Int, differences: [String]) {
        let byName = Dictionary(result.jails.map { ($0.name, $0) }, uniquingKeysWith: { a, _ in a })
        var total = 0
        var agree = 0
        var differences: [String] = []
        for (name, e) in expected.sorted(by: { $0.key < $1.key }) {
            guard let jail = byName[name], let props = e.actionprops else { continue }
            if props.count != jail.actions.count {
                differences.append("\(name): \(jail.actions.count) actions, fail2ban \(props.count)")
                continue
            }
            for (spec, want) in zip(jail.actions, props) {
                total += 1
                do {
                    let action = try tree.loadAction(spec, jail: jail)
                    var ours: [String: String] = action.tags
                    for (k, v) in action.commands { ours[k] = v.value }
                    for (k, v) in action.flags { ours[k] = v ? "true" : "false" }
                    for (cond, values) in action.conditionalTags {
                        for (k, v) in values { ours["\(k)?\(cond)"] = v }
                    }
                    let theirs = Dictionary(want.props.map { ($0[0], $0[1]) }, uniquingKeysWith: { a, _ in a })
                    var diffs: [String] = []
                    if action.name != want.name { diffs.append("actname: ours \(action.name) | f2b \(want.name)") }
                    for key in Set(ours.keys).union(theirs.keys).sorted() where ours[key] != theirs[key] {
                        diffs.append(
                            "\(key): ours \(ours[key].map { "'\($0)'" } ?? "nil") | f2b \(theirs[key].map { "'\($0)'" } ?? "nil")"
                        )
                    }
                    if diffs.isEmpty {
                        agree += 1
                    } else {
                        differences.append("\(name) \(want.name):\n  " + diffs.joined(separator: "\n  "))
                    }
                } catch {
                    differences.append("\(name) \(want.name): we fail: \(error)")
                }
            }
        }
        print("\(label): \(agree)/\(total) jail actions agree with fail2ban (every command, flag and tag value)")
        for d in differences.prefix(40) { print("DIFF " + d) }
        return (total, differences)
    }

    @Test("all jails of jail.conf resolve as fail2ban resolves them")
    func allJails() throws {
        let (expected, result, tree, _) = try Self.run()
        defer { try? FileManager.default.removeItem(atPath: tree.root) }
        #expect(expected.count > 50)
        let differences = Self.compare(expected, result, label: "Jail oracle")
        #expect(differences.isEmpty)
    }

    /// Compares every expected jail with ours; prints the agreement count and returns the differences.
    static func compare(_ expected: [String: Expected], _ result: JailsLoadResult, label: String) -> [String] {
        var agree = 0
        var differences: [String] = []
        let byName = Dictionary(result.jails.map { ($0.name, $0) }, uniquingKeysWith: { a, _ in a })
        for (name, e) in expected.sorted(by: { $0.key < $1.key }) {
            var diffs: [String] = []
            if e.error != nil {
                if result.errors[name] == nil { diffs.append("fail2ban rejects it, we load it") }
            } else if let err = result.errors[name] {
                diffs.append("we fail: \(err)")
            } else if let jail = byName[name], let opts = e.opts {
                func cmp(_ what: String, _ ours: String?, _ theirs: String?) {
                    if ours != theirs { diffs.append("\(what): ours \(ours ?? "nil") | f2b \(theirs ?? "nil")") }
                }
                cmp("enabled", jail.enabled ? "true" : "false", opts["enabled"])
                cmp("backend", jail.backend, opts["backend"])
                cmp("maxretry", String(jail.maxretry), opts["maxretry"])
                cmp("maxmatches", String(jail.maxmatches), opts["maxmatches"])
                cmp("findtime", jail.values["findtime"], opts["findtime"])
                cmp("bantime", jail.values["bantime"], opts["bantime"])
                cmp("ignorecommand", jail.ignorecommand, opts["ignorecommand"])
                cmp("filter", jail.filterSpec, opts["filter"])
                cmp("logencoding", jail.logencoding, opts["logencoding"])
                cmp("usedns", jail.usedns, opts["usedns"])
                cmp("action", jail.values["action"], opts["action"])
                cmp("logpath", jail.values["logpath"], opts["logpath"])
                let theirPaths = (opts["logpath"] ?? "").split(separator: "\n").map { $0.trimmedWhitespace() }.filter {
                    !$0.isEmpty
                }
                cmp("logpath list", jail.logpath.joined(separator: "|"), theirPaths.joined(separator: "|"))
                for (key, value) in e.values ?? [:] { cmp(key, jail.values[key], value) }
                cmp("port field", jail.port, e.values?["port"])
                cmp("chain field", jail.chain, e.values?["chain"])
                let ours = jail.actions.map { "\($0.name) \($0.arguments.sorted { $0.key < $1.key })" }
                let theirs = (e.actions ?? []).map { "\($0.name) \($0.arguments.sorted { $0.key < $1.key })" }
                if ours != theirs { diffs.append("actions: ours \(ours) | f2b \(theirs)") }
                if let f = e.filter, let mine = jail.filter {
                    cmp("prefregex", mine.prefregex?.value, f.prefregex)
                    if mine.failregex.map(\.value) != f.failregex {
                        diffs.append("failregex differs: ours \(mine.failregex.map(\.value)) | f2b \(f.failregex)")
                    }
                    if mine.ignoreregex.map(\.value) != f.ignoreregex { diffs.append("ignoreregex differs") }
                    if mine.maxlines != f.maxlines { diffs.append("maxlines differs") }
                    cmp("datepattern", mine.datepattern?.value, f.datepattern)
                    if mine.journalmatch != f.journalmatch { diffs.append("journalmatch differs") }
                } else if e.filter != nil {
                    diffs.append("we resolved no filter")
                }
            } else {
                diffs.append("jail missing from our result")
            }
            if diffs.isEmpty {
                agree += 1
            } else {
                differences.append("\(name):\n  " + diffs.joined(separator: "\n  "))
            }
        }
        print("\(label): \(agree)/\(expected.count) jails agree with fail2ban (options, values, action specs, filter)")
        for d in differences.prefix(40) { print("DIFF " + d) }
        return differences
    }

    static let edgeFiles: [String: String] = [
        "jail.local": """
        [DEFAULT]
        bantime = 1h30m
        ignoreip = 127.0.0.1/8 ::1
                   192.0.2.0/24, 198.51.100.7

        [sshd]
        enabled = true
        port = %(known/port)s,2222
        maxretry = 3
        mode = aggressive

        [pcl-multi]
        enabled = true
        filter = sshd[mode=ddos, publickey=invalid]
        logpath = /var/log/a.log
                  /var/log/b*.log
        action = iptables-multiport[name=pcl, port="22,80", protocol=tcp]
                 sendmail-whois[name=pcl, dest="root@localhost", sender="f2b@localhost",
                                sendername="Fail2Ban, Inc"]
        bantime = 1d12h
        findtime = 90
        bantime.increment = true
        bantime.factor = 2
        bantime.multipliers = 1 2 4 8
        bantime.maxtime = 1w
        ignoreself = false

        [pcl-override]
        enabled = true
        filter = sshd
        logpath = /dev/null
        failregex = ^custom <HOST> <_daemon>
                    ^second <ADDR>
        datepattern = ^%%Y-%%m-%%d
        journalmatch = _SYSTEMD_UNIT=x.service + _COMM=x
        maxlines = 3
        usedns = no
        action = %(action_mwl)s
        """,
        "jail.d/pcl.conf": """
        [pcl-dotd]
        enabled = true
        filter = postfix[mode=rbl]
        port = smtp
        logpath = /dev/null
        action = %(action_)s[name=%(__name__)s-x, protocol="udp"]
                 %(action_)s
        """,
        "jail.d/pcl.local": """
        [pcl-dotd]
        maxretry = 2
        findtime = 2h
        """,
    ]

    @Test("hand-written jail.local / jail.d edge cases resolve as fail2ban resolves them")
    func edgeCases() throws {
        let (expected, result, tree, _) = try Self.run(files: Self.edgeFiles)
        defer { try? FileManager.default.removeItem(atPath: tree.root) }
        #expect(Set(expected.keys) == ["sshd", "pcl-multi", "pcl-override", "pcl-dotd"])
        #expect(Self.compare(expected, result, label: "Jail edge-case oracle").isEmpty)
        let (total, differences) = Self.compareActions(expected, result, tree, label: "Action edge-case oracle")
        #expect(total >= 7)
        #expect(differences.isEmpty)
        let byName = Dictionary(result.jails.map { ($0.name, $0) }, uniquingKeysWith: { a, _ in a })
        for (name, e) in expected {
            guard let jail = byName[name], let props = e.actionprops else { continue }
            #expect(jail.actionConfigurations.map(\.name) == props.map(\.name), "\(name)")
        }
    }
}
