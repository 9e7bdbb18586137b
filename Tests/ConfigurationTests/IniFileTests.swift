import Testing

@testable import Configuration

@Suite("INI parsing")
struct IniFileTests {
    func parse(_ text: String) throws(ConfigError) -> IniFile { try IniFile.parse(text, path: "/t.conf") }

    func value(_ ini: IniFile, _ section: String, _ option: String) -> String? {
        ini.sections.last { $0.name == section }?.options.first { $0.name == option }?.value.text
    }

    @Test("key = value and key: value, names lower-cased, values trimmed")
    func basicOptions() throws {
        let ini = try parse("[Definition]\nFailRegex =  a b  \nother: c : d\nempty =\ncolon:\n")
        #expect(value(ini, "Definition", "failregex") == "a b")
        #expect(value(ini, "Definition", "other") == "c : d")
        #expect(value(ini, "Definition", "empty") == "")
        #expect(value(ini, "Definition", "colon") == "")
    }

    @Test("the first '=' or ':' separates name and value")
    func firstDelimiter() throws {
        let ini = try parse("[s]\nurl = http://x/?a=b\nk:v=w\n")
        #expect(value(ini, "s", "url") == "http://x/?a=b")
        #expect(value(ini, "s", "k") == "v=w")
    }

    @Test("comments: full lines with # or ;, inline only ';' after white space")
    func comments() throws {
        let ini = try parse("# top\n[s]\n; c\na = x ; comment\nb = x;y # not a comment\n  # indented comment\nc = 1\n")
        #expect(value(ini, "s", "a") == "x")
        #expect(value(ini, "s", "b") == "x;y # not a comment")
        #expect(value(ini, "s", "c") == "1")
    }

    @Test("indented continuation lines, inner empty lines kept, comments and trailing empty lines dropped")
    func continuation() throws {
        let ini = try parse("[s]\nv = one\n   two\n ; skipped\n\n\tthree\n\n\nw = 2\n")
        #expect(value(ini, "s", "v") == "one\ntwo\n\nthree")
        #expect(value(ini, "s", "w") == "2")
        let lines = ini.sections[0].options[0].value.lines
        #expect(lines.map(\.line) == [2, 3, 5, 6])
    }

    @Test("a repeated option or section in one file is a syntax error naming both lines, as fail2ban refuses it")
    func duplicates() throws {
        for (text, line, first) in [
            ("[s]\r\na = 1\r\na = 2\r\n", 3, 2), ("[s]\na = 1\nA = 2\n", 3, 2),
            ("[s]\na = 1\n[t]\nb = 3\n[s]\nc = 4\n", 5, 1), ("[DEFAULT]\na = 1\n[DEFAULT]\na = 2\n", 4, 2),
        ] {
            do {
                _ = try parse(text)
                Issue.record("accepted \(text.debugDescription)")
            } catch {
                #expect(error.code == .syntax)
                #expect(error.location == SourceLocation(file: "/t.conf", line: line), "\(error)")
                #expect(error.message.contains("line \(first)"), "\(error)")
            }
        }
        // [DEFAULT] may repeat (configparser keeps adding to it), and the same name in two sections is fine.
        let ini = try parse("[DEFAULT]\na = 1\n[s]\na = 2\n[DEFAULT]\nb = 3\n[t]\na = 4\r\n")
        #expect(value(ini, "s", "a") == "2")
        #expect(value(ini, "t", "a") == "4")
    }

    @Test("an option before any section is a syntax error naming the line")
    func noSection() {
        #expect(throws: ConfigError.self) { try parse("a = 1\n") }
        do {
            _ = try parse("\n\na = 1\n")
        } catch {
            #expect(error.code == .syntax)
            #expect(error.location == SourceLocation(file: "/t.conf", line: 3))
            #expect(error.description.hasPrefix("/t.conf:3: "))
        }
    }

    @Test("a line without '=' or ':' is a syntax error")
    func noDelimiter() {
        do {
            _ = try parse("[s]\na = 1\nthis is junk\n")
            Issue.record("expected an error")
        } catch {
            #expect(error.code == .syntax)
            #expect(error.location?.line == 3)
        }
    }
}
