import Testing

@testable import Configuration

@Suite("Jail loading")
struct JailLoadingTests {
    /// A small tree: one filter, one action, jail.conf with DEFAULT and two jails.
    func makeTree() throws -> TempTree {
        let t = try TempTree()
        try t.write("filter.d/f.conf", "[Init]\nmode = normal\n[Definition]\nfailregex = ^<mode> <HOST>\n")
        try t.write(
            "action.d/a.conf", "[Definition]\nactionban = ban <ip> <name> <port>\n[Init]\nport = 22\nname = default\n")
        try t.write(
            "jail.conf",
            """
            [INCLUDES]
            before = paths.conf
            [DEFAULT]
            bantime = 1h30m
            findtime = 10m
            maxretry = 5
            maxmatches = %(maxretry)s
            enabled = false
            mode = normal
            filter = %(__name__)s[mode=%(mode)s]
            port = 0:65535
            protocol = tcp
            chain = <known/chain>
            banaction = a
            action_ = %(banaction)s[port="%(port)s", protocol="%(protocol)s"]
            action = %(action_)s
            ignoreip = 127.0.0.1/8 ::1, 198.18.0.0/15
            [f]
            port = ssh
            logpath = %(f_log)s
                      /var/log/other*.log tail
            [g]
            filter = f[mode=aggressive]
            logpath = /var/log/g.log
            bantime = -1
            action_ = %(default/action_)s[name=%(__name__)s-tcp]
            """)
        try t.write("paths.conf", "[DEFAULT]\nf_log = /var/log/f.log\n")
        return t
    }

    @Test("DEFAULT inheritance, %(__name__)s, typed values, lists")
    func typedValues() throws {
        let t = try makeTree()
        defer { t.remove() }
        try t.write("jail.local", "[f]\nenabled = true\nport = %(known/port)s,2222\nmaxretry = 3\n")
        let result = t.tree.loadJails()
        #expect(result.errors.isEmpty)
        #expect(result.jails.map(\.name) == ["f", "g"])
        let f = try #require(result.jails.first { $0.name == "f" })
        #expect(f.enabled)
        #expect(f.filterSpec == "f[mode=normal]")
        #expect(f.filter?.failregex.map(\.value) == ["^normal <HOST>"])
        #expect(f.logpath == ["/var/log/f.log", "/var/log/other*.log"])
        #expect(f.logpathTail == ["/var/log/other*.log"])
        #expect(f.port == "ssh,2222")
        #expect(f.maxretry == 3)
        #expect(f.maxmatches == 3)
        #expect(f.bantime.seconds == 5400)
        #expect(f.findtime.seconds == 600)
        #expect(f.ignoreip == ["127.0.0.1/8", "::1", "198.18.0.0/15"])
        #expect(f.chain == "<known/chain>")
        #expect(f.actions == [try Spec.parse(#"a[port="ssh,2222", protocol="tcp"]"#)])
        #expect(f.actionConfigurations.map(\.actionban?.value) == ["ban <ip> f ssh,2222"])
        #expect(f.locations["maxretry"] == SourceLocation(file: t.root + "/jail.local", line: 4))
        let g = try #require(result.jails.first { $0.name == "g" })
        #expect(!g.enabled)
        #expect(g.filter == nil)
        #expect(g.bantime.isPermanent)
        #expect(g.actions.first?.arguments["name"] == "g-tcp")
        #expect(g.actions.first?.arguments["port"] == "0:65535")
    }

    @Test("jail.d: *.conf before jail.local, *.local last")
    func dotD() throws {
        let t = try makeTree()
        defer { t.remove() }
        try t.write("jail.d/b.conf", "[g]\nenabled = true\nmaxretry = 7\n")
        try t.write("jail.d/a.conf", "[g]\nmaxretry = 6\n")
        try t.write("jail.local", "[g]\nmaxretry = 8\nfindtime = 1d\n")
        try t.write("jail.d/z.local", "[g]\nmaxretry = 9\n")
        let g = try #require(t.tree.loadJails().jails.first { $0.name == "g" })
        #expect(g.enabled)
        #expect(g.maxretry == 9)
        #expect(g.findtime.seconds == 86400)
        #expect(g.filter?.failregex.map(\.value) == ["^aggressive <HOST>"])
    }

    @Test("a broken jail gets its own error with file and line; the others still load")
    func brokenJail() throws {
        let t = try makeTree()
        defer { t.remove() }
        try t.write(
            "jail.local",
            """
            [f]
            enabled = true
            [g]
            enabled = true
            bantime = forever
            [h]
            enabled = true
            filter = nosuchfilter
            [i]
            enabled = true
            maxretry = %(undefined)s
            [j]
            enabled = maybe
            [k]
            enabled = true
            action = nosuchaction
            [disabled-broken]
            bantime = forever
            """)
        let result = t.tree.loadJails()
        #expect(result.jails.map(\.name).sorted() == ["disabled-broken", "f"])
        let g = try #require(result.errors["g"])
        #expect(g.code == .badValue)
        #expect(g.location == SourceLocation(file: t.root + "/jail.local", line: 5))
        #expect(g.description.contains("bantime"))
        #expect(result.errors["h"]?.code == .notFound)
        #expect(result.errors["h"]?.location?.line == 8)
        #expect(result.errors["i"]?.code == .missingOption)
        #expect(result.errors["j"]?.code == .badValue)
        #expect(result.errors["k"]?.code == .notFound)
        #expect(result.enabled.map(\.name) == ["f"])
    }

    @Test("a syntax error in jail.local is reported once, with file and line")
    func syntaxError() throws {
        let t = try makeTree()
        defer { t.remove() }
        try t.write("jail.local", "[f]\nenabled = true\nnot an option line\n")
        let result = t.tree.loadJails()
        #expect(result.jails.isEmpty)
        #expect(result.errors[""]?.code == .syntax)
        #expect(result.errors[""]?.location == SourceLocation(file: t.root + "/jail.local", line: 3))
    }

    @Test("a jail's own failregex/datepattern/maxlines replace the filter's")
    func jailOverrides() throws {
        let t = try makeTree()
        defer { t.remove() }
        try t.write("jail.local", "[f]\nenabled = true\nfailregex = ^jail <HOST>\n  ^<mode>2 <HOST>\nmaxlines = 4\n")
        let f = try #require(t.tree.loadJails().jails.first { $0.name == "f" })
        #expect(f.filter?.failregex.map(\.value) == ["^jail <HOST>", "^<mode>2 <HOST>"])
        #expect(f.filter?.maxlines == 4)
        #expect(f.maxlines == 4)
    }
}
