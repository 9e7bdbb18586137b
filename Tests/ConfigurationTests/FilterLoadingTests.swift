import Testing

@testable import Configuration

@Suite("Filter loading")
struct FilterLoadingTests {
    @Test("includes, .local, .d/ order and known/ values")
    func layering() throws {
        let t = try TempTree()
        defer { t.remove() }
        try t.write("filter.d/common.conf", "[INCLUDES]\nafter = common.local\n[DEFAULT]\n_daemon = \\S+\nsfx = C\n")
        try t.write(
            "filter.d/x.conf",
            """
            [INCLUDES]
            before = common.conf
            [Definition]
            kv = base
            failregex = ^<_daemon> <HOST> %(kv)s %(sfx)s
                        ^second <F-USER>.+</F-USER> from <HOST>
            ignoreregex =
            """)
        try t.write("filter.d/x.d/b.conf", "[Definition]\nkv = d-b\n")
        try t.write("filter.d/x.d/a.conf", "[Definition]\nkv = d-a\n")
        try t.write("filter.d/x.local", "[Definition]\nkv = local-%(known/kv)s\n")
        let f = try t.tree.loadFilter("x")
        #expect(f.failregex.map(\.value) == [#"^\S+ <HOST> local-d-b C"#, "^second <F-USER>.+</F-USER> from <HOST>"])
        #expect(f.failregex[0].location == SourceLocation(file: t.root + "/filter.d/x.conf", line: 5))
        #expect(f.failregex[1].location?.line == 6)
        #expect(f.ignoreregex.isEmpty)
        #expect(f.file == t.root + "/filter.d/x.conf")
    }

    @Test("arguments override [Init]; [Init] overrides [Definition]; tags resolve recursively")
    func argumentsAndTags() throws {
        let t = try TempTree()
        defer { t.remove() }
        try t.write(
            "filter.d/m.conf",
            """
            [Init]
            maxlines = 2
            [Definition]
            mode = normal
            maxlines = 1
            re-normal = ^normal <HOST>
            re-aggressive = <re-normal>
                            ^aggr <ADDR>
            failregex = <re-<mode>>
            journalmatch = _SYSTEMD_UNIT=m.service + _COMM=m
            """)
        let normal = try t.tree.loadFilter("m")
        #expect(normal.failregex.map(\.value) == ["^normal <HOST>"])
        #expect(normal.maxlines == 2)
        #expect(normal.journalmatch == [["_SYSTEMD_UNIT=m.service"], ["_COMM=m"]])
        let aggressive = try t.tree.loadFilter("m[mode=aggressive, maxlines=\"5\"]")
        #expect(aggressive.failregex.map(\.value) == ["^normal <HOST>", "^aggr <ADDR>"])
        #expect(aggressive.arguments == ["mode": "aggressive", "maxlines": "5"])
        #expect(aggressive.maxlines == 5)
        #expect(aggressive.values["mode"] == "aggressive")
    }

    @Test("a jail's failregex and datepattern replace the filter's, verbatim")
    func overrides() throws {
        let t = try TempTree()
        defer { t.remove() }
        try t.write("filter.d/o.conf", "[Definition]\n_d = od\nfailregex = ^a <HOST>\ndatepattern = {^LN-BEG}\n")
        let f = try t.tree.loadFilter("o", overrides: ["failregex": "^<_d> <HOST>\n^b <HOST>", "datepattern": "^%%Y"])
        #expect(f.failregex.map(\.value) == ["^<_d> <HOST>", "^b <HOST>"])
        #expect(f.datepattern?.value == "^%%Y")
    }

    @Test("a filter given as a path reads its .local sibling")
    func byPath() throws {
        let t = try TempTree()
        defer { t.remove() }
        try t.write("elsewhere/p.conf", "[Definition]\nfailregex = ^p <HOST>\n")
        try t.write("elsewhere/p.local", "[Definition]\nfailregex = ^q <HOST>\n")
        let f = try t.tree.loadFilter(t.root + "/elsewhere/p.conf")
        #expect(f.failregex.map(\.value) == ["^q <HOST>"])
    }

    @Test("unknown filter → notFound")
    func unknownFilter() throws {
        let t = try TempTree()
        defer { t.remove() }
        #expect { try t.tree.loadFilter("nope") } throws: { ($0 as? ConfigError)?.code == .notFound }
    }

    @Test("missing .conf include → error naming the including file and line; missing .local include is fine")
    func missingInclude() throws {
        let t = try TempTree()
        defer { t.remove() }
        try t.write(
            "filter.d/i.conf", "[INCLUDES]\nafter = opt.local\n\nbefore = gone.conf\n[Definition]\nfailregex = x\n")
        do {
            _ = try t.tree.loadFilter("i")
            Issue.record("expected an error")
        } catch {
            #expect(error.code == .missingInclude)
            #expect(error.location == SourceLocation(file: t.root + "/filter.d/i.conf", line: 4))
        }
    }

    @Test("an interpolation loop → error with location, no crash")
    func interpolationLoop() throws {
        let t = try TempTree()
        defer { t.remove() }
        try t.write("filter.d/l.conf", "[Definition]\na = %(b)s\nb = %(a)s\nfailregex = x %(a)s\n")
        do {
            _ = try t.tree.loadFilter("l")
            Issue.record("expected an error")
        } catch {
            #expect(error.code == .interpolationLoop)
            #expect(error.location?.line == 4)
        }
    }

    @Test("a tag loop → error")
    func tagLoop() throws {
        let t = try TempTree()
        defer { t.remove() }
        try t.write("filter.d/l.conf", "[Definition]\na = <b>\nb = x<a>\nfailregex = <a>\n")
        #expect { try t.tree.loadFilter("l") } throws: { ($0 as? ConfigError)?.code == .interpolationLoop }
    }

    @Test("undefined %(name)s → missingOption; bad % → badInterpolation; bad maxlines → badValue")
    func badValues() throws {
        let t = try TempTree()
        defer { t.remove() }
        try t.write("filter.d/u.conf", "[Definition]\nfailregex = %(nothere)s\n")
        try t.write("filter.d/p.conf", "[Definition]\nfailregex = 100%\n")
        try t.write("filter.d/n.conf", "[Definition]\nmaxlines = many\n")
        #expect { try t.tree.loadFilter("u") } throws: { ($0 as? ConfigError)?.code == .missingOption }
        #expect { try t.tree.loadFilter("p") } throws: { ($0 as? ConfigError)?.code == .badInterpolation }
        #expect { try t.tree.loadFilter("n") } throws: {
            ($0 as? ConfigError)?.code == .badValue && ($0 as? ConfigError)?.location?.line == 2
        }
    }

    @Test("syntax error in a filter → error with file and line")
    func syntaxError() throws {
        let t = try TempTree()
        defer { t.remove() }
        try t.write("filter.d/s.conf", "[Definition]\nfailregex = x\ngarbage line\n")
        do {
            _ = try t.tree.loadFilter("s")
            Issue.record("expected an error")
        } catch {
            #expect(error.code == .syntax)
            #expect(error.description.hasPrefix(t.root + "/filter.d/s.conf:3: "))
        }
    }
}
