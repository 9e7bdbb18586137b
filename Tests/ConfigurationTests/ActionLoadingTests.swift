import Testing

@testable import Configuration

@Suite("Action loading")
struct ActionLoadingTests {
    func makeTree() throws -> TempTree {
        let t = try TempTree()
        try t.write("filter.d/f.conf", "[Definition]\nfailregex = ^x <HOST>\n")
        try t.write(
            "action.d/a.conf",
            """
            [INCLUDES]
            before = a-common.conf
            [Definition]
            actionstart = start <name> <port> <logpath> <known/port> <common> <fam>
            actionban = <tool> ban <ip> from <name> after <failures> for <bantime> <F-USER> <family> <undefined>
            actionunban = <tool> unban <ip> <helper>
            actioncheck =
            actionstart_on_demand = true
            helper = H-<port>
            [Init]
            name = default
            port = 22
            fam = v4
            tool = iptables
            [Init?family=inet6]
            tool = ip6tables
            """)
        try t.write("action.d/a-common.conf", "[Definition]\ncommon = CM\n")
        try t.write(
            "jail.conf",
            """
            [j]
            enabled = true
            filter = f
            logpath = /var/log/j.log
            action = a
                     a[name=j-second, port="80,443"]
                     a[actname=third]
            """)
        return t
    }

    @Test("commands resolved with arguments, [Init], jail values; runtime and per-family tags kept")
    func resolve() throws {
        let t = try makeTree()
        defer { t.remove() }
        let result = t.tree.loadJails()
        let jail = try #require(result.jails.first)
        #expect(jail.actions.count == 3)
        let first = try t.tree.loadAction(jail.actions[0], jail: jail)
        #expect(first.name == "a")
        #expect(first.actionstart?.value == "start j 22 /var/log/j.log 22 CM v4")
        #expect(
            first.actionban?.value
                == "<tool> ban <ip> from j after <failures> for <bantime> <F-USER> <family> <undefined>")
        #expect(first.actionunban?.value == "<tool> unban <ip> H-22")
        #expect(first.actioncheck?.value == "")
        #expect(first.actionstop == nil)
        #expect(first.flags == ["actionstart_on_demand": true])
        #expect(first.tags["tool"] == "iptables")
        #expect(first.tags["name"] == "j")
        #expect(first.conditionalTags == ["family=inet6": ["tool": "ip6tables"]])
        #expect(first.actionstart?.location == SourceLocation(file: t.root + "/action.d/a.conf", line: 4))

        let second = try t.tree.loadAction(jail.actions[1], jail: jail)
        #expect(second.name == "a-second")
        #expect(second.actionstart?.value == "start j-second 80,443 /var/log/j.log 22 CM v4")
        let third = try t.tree.loadAction(#"a[actname=third]"#, jail: jail)
        #expect(third.name == "third")
    }

    @Test("unknown action, Python action and bad flag are errors, not crashes")
    func errors() throws {
        let t = try makeTree()
        defer { t.remove() }
        try t.write("action.d/py.py", "# a python action\n")
        try t.write("action.d/flag.conf", "[Definition]\nactionban = x\nnorestored = sometimes\n")
        let jail = try #require(t.tree.loadJails().jails.first)
        #expect { try t.tree.loadAction("nothere", jail: jail) } throws: { ($0 as? ConfigError)?.code == .notFound }
        #expect { try t.tree.loadAction("py", jail: jail) } throws: { ($0 as? ConfigError)?.code == .notFound }
        #expect { try t.tree.loadAction("flag", jail: jail) } throws: {
            ($0 as? ConfigError)?.code == .badValue && ($0 as? ConfigError)?.location?.line == 3
        }
        #expect { try t.tree.loadAction("a[port=", jail: jail) } throws: { ($0 as? ConfigError)?.code == .badValue }
    }
}
