import Foundation
import PortcullisTestKit
import Testing

@testable import Configuration

/// Hand-written filters exercising the INI and substitution rules, resolved by us and by fail2ban's reader.
@Suite("INI rules against the oracle", .blocking)
struct IniOracleTests {
    static let files: [String: String] = [
        "filter.d/comments.conf": """
        [Definition]
        failregex = ^a <HOST> ; inline comment
            ^b;c <HOST>   # hash is kept
          ; an indented comment line
        \t^tab <HOST>

            ^after-empty <HOST>
        # a comment at column 0 inside the value
            ^after-comment <HOST>
        ignoreregex=^x
        prefregex: ^<F-CONTENT>.+</F-CONTENT>$
        """,
        "filter.d/known.conf": """
        [DEFAULT]
        d = base-default
        [Definition]
        failregex = ^one <HOST> %(d)s
        datepattern = {^LN-BEG}
        """,
        "filter.d/known.local": """
        [DEFAULT]
        d = local-default
        [Definition]
        failregex = %(known/failregex)s
                    ^two <HOST>
        """,
        "filter.d/known.d/b.conf": "[Definition]\ndatepattern = ^B\n",
        "filter.d/known.d/a.conf": "[Definition]\ndatepattern = ^A\nmaxlines = 3\n",
        "filter.d/known.d/a.local": "[Definition]\nmaxlines = 4\n",
        "filter.d/tags.conf": """
        [INCLUDES]
        before = tags-common.conf
        [Init]
        who = init-who
        [Definition]
        failregex = ^<who> <HOST> <pre> <lt_<logtype>/pre> %(__name__)s <known/who> <F-USER>x</F-USER>
                    <empty>
                    ^<nested> <ADDR>
        empty =
        nested = <who>-<d>
        journalmatch = _SYSTEMD_UNIT=x.service _COMM=x + "_COMM=y z"
        """,
        "filter.d/tags-common.conf": """
        [DEFAULT]
        logtype = file
        d = dflt
        pre = <lt_<logtype>/pre>
        [lt_file]
        pre = FILE-%(d)s
        [lt_short]
        pre = SHORT
        """,
        "filter.d/knowntag.conf": """
        [DEFAULT]
        d = dflt
        [Definition]
        over = first
        keep = kept
        failregex = ^<known/over> <known/keep> <known/d> <known/nothing> <HOST>
        ignoreregex =
        """,
        "filter.d/knowntag.local": """
        [Definition]
        over = second
        ignoreregex = ^ign
                      <known/ignoreregex>
        """,
        "filter.d/case.conf": """
        [Definition]
        FailRegex = ^Upper <HOST>
        MaxLines = 2
        [definition]
        failregex = ^lower-section <HOST>
        """,
        "filter.d/percent.conf": """
        [Definition]
        datepattern = ^%%Y-%%m-%%d %%H:%%M
        failregex = ^100%% <HOST>
        """,
    ]

    static let specs = [
        "comments", "known", "tags", #"tags[who="a, b", logtype=short]"#, "tags[d=arg]", "case", "percent", "knowntag",
    ]

    @Test("hand-written edge cases resolve as fail2ban resolves them")
    func edgeCases() throws {
        let t = try TempTree()
        defer { t.remove() }
        for (path, text) in Self.files { try t.write(path, text) }
        let data = try Oracle.run(filterOracleScript, [t.root] + Self.specs)
        let expected = try JSONDecoder().decode([FilterOracleTests.Expected].self, from: data)
        #expect(expected.count == Self.specs.count)
        var agree = 0
        for e in expected {
            #expect(e.error == nil, "fail2ban failed on \(e.spec): \(e.error ?? "")")
            let f: FilterConfiguration
            do { f = try t.tree.loadFilter(e.spec) } catch {
                Issue.record("we fail on \(e.spec): \(error)")
                continue
            }
            let before = agree
            #expect(f.failregex.map(\.value) == e.failregex, "\(e.spec) failregex")
            #expect(f.ignoreregex.map(\.value) == e.ignoreregex, "\(e.spec) ignoreregex")
            #expect(f.prefregex?.value == e.prefregex, "\(e.spec) prefregex")
            #expect(f.datepattern?.value == e.datepattern, "\(e.spec) datepattern")
            #expect(f.maxlines == e.maxlines, "\(e.spec) maxlines")
            #expect(f.journalmatch == e.journalmatch, "\(e.spec) journalmatch")
            if f.failregex.map(\.value) == e.failregex, f.ignoreregex.map(\.value) == e.ignoreregex,
                f.prefregex?.value == e.prefregex, f.datepattern?.value == e.datepattern, f.maxlines == e.maxlines,
                f.journalmatch == e.journalmatch
            {
                agree = before + 1
            }
        }
        print("INI edge-case oracle: \(agree)/\(expected.count) hand-written filters agree with fail2ban")
    }
}

extension IniOracleTests {
    @Test("cross-section references and arguments, as fail2ban")
    func crossSection() throws {
        let t = try TempTree()
        defer { t.remove() }
        try t.write(
            "filter.d/x.conf",
            """
            [DEFAULT]
            d = dflt
            [lt_file]
            pre = FILE-%(d)s
            d = sect
            [Definition]
            failregex = %(lt_file/pre)s <lt_file/pre> %(d)s <d> %(lt_file/d)s <lt_file/d>
              %(default/d)s <default/d> <known/d> %(known/d)s
            """)
        let specs = ["x", "x[d=arg]"]
        let data = try Oracle.run(filterOracleScript, [t.root] + specs)
        let expected = try JSONDecoder().decode([FilterOracleTests.Expected].self, from: data)
        for e in expected {
            let ours = try t.tree.loadFilter(e.spec).failregex.map(\.value)
            #expect(ours == e.failregex, "\(e.spec): ours \(ours) f2b \(e.failregex ?? [])")
        }
    }
}

extension IniOracleTests {
    @Test("nesting depth: 9 levels of %(…)s resolve, 10 are an error, as in fail2ban")
    func depthLimit() throws {
        let t = try TempTree()
        defer { t.remove() }
        for n in [9, 10] {
            var text = "[Definition]\n"
            for i in 1...n { text += "a\(i) = %(a\(i + 1))s\n" }
            text += "a\(n + 1) = end\nfailregex = %(a1)s <HOST>\n"
            try t.write("filter.d/d\(n).conf", text)
        }
        let data = try Oracle.run(filterOracleScript, [t.root, "d9", "d10"])
        let expected = try JSONDecoder().decode([FilterOracleTests.Expected].self, from: data)
        #expect(expected.count == 2)
        for e in expected {
            if e.error != nil {
                #expect { try t.tree.loadFilter(e.spec) } throws: {
                    ($0 as? ConfigError)?.code == .interpolationLoop
                        && ($0 as? ConfigError)?.location
                            == SourceLocation(file: t.root + "/filter.d/\(e.spec).conf", line: 13)
                }
            } else {
                #expect(try t.tree.loadFilter(e.spec).failregex.map(\.value) == e.failregex)
            }
        }
        #expect(expected.map { $0.error == nil } == [true, false])
    }

    @Test("include loops end; a file including itself is read once")
    func includeLoop() throws {
        let t = try TempTree()
        defer { t.remove() }
        try t.write("filter.d/a.conf", "[INCLUDES]\nbefore = b.conf\n[Definition]\nfailregex = ^a <HOST> %(x)s\n")
        try t.write("filter.d/b.conf", "[INCLUDES]\nbefore = a.conf\nafter = b.conf\n[Definition]\nx = from-b\n")
        let f = try t.tree.loadFilter("a")
        #expect(f.failregex.map(\.value) == ["^a <HOST> from-b"])
    }
}
