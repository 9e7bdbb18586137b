/// A command action's template rendered for `/bin/sh`: the script text and the values it refers to.
///
/// Values that can carry text from outside (log lines, user names, DNS names, every `<F-*>` capture) are never
/// written into the script. Each becomes a positional parameter of the shell (`/bin/sh -c SCRIPT sh V1 V2 …`),
/// copied into an exported variable on the script's first line, and the tag is replaced by a reference to that
/// variable written for the shell context the tag stands in — found by reading the template with the POSIX shell
/// grammar (quotes, `$(…)`, backquotes, `${…}`, `$((…))`, here-documents, comments, `case`):
///
/// | context                         | `<matches>` becomes                                   |
/// |---------------------------------|-------------------------------------------------------|
/// | unquoted word                   | `"${_pcl_1}"`                                         |
/// | `"…"`, unquoted here-document   | `${_pcl_1}`                                           |
/// | `'…'`, quoted here-document     | `${_pcl_1}`, left unexpanded (as fail2ban leaves `$f2bV_matches`) |
/// | backquotes                      | rewritten as `$(…)`, then as above                    |
/// | `$((…))`                        | the value when it is a number, else `0`               |
///
/// Whatever the context, the shell only ever *expands* a value; it never parses it, so no value can run as code
/// (unless the template itself re-reads expanded text as code: `eval "…<tag>…"`, `sh -c "…<tag>…"`). Text in single
/// quotes or in a quoted here-document is never expanded by this shell: it is often program text for another
/// interpreter (`sh -c '…'`, `eval '…'`, `ssh host '…'`, `awk '…'`, `sed '…'`, `python3 - <<'EOF'`), so a value
/// spliced into it would be parsed as code there. There the tag becomes the variable's name; the variables are
/// exported, so a nested shell expands it to the right text, and any other program sees the name. A mistake in the
/// reading of the context can only change the text an action receives, not what runs.
///
/// ```swift
/// let r = ActionScript.render(#"echo "<matches>" <ip>"#, values: ActionValues(["ip": "192.0.2.1"], untrusted: ["matches": "x'$(id)"]))
/// // r.script == "_pcl_1=${1}; export _pcl_1; set --\necho \"${_pcl_1}\" 192.0.2.1"
/// // r.arguments == ["x'$(id)"]
/// ```
public struct ActionScript: Sendable, Hashable {
    /// The script passed to `/bin/sh -c`.
    public var script: String
    /// The values the script refers to, passed as `$1`, `$2`, … .
    public var arguments: [String]

    /// The full argument vector: `/bin/sh -c SCRIPT sh ARG…`.
    public var argv: [String] { ["/bin/sh", "-c", script, "sh"] + arguments }

    /// The prefix of the variables that hold referenced values (`_pcl_1`, `_pcl_2`, …).
    public static let variablePrefix = "_pcl_"

    /// Renders `template` with `values`. Pure: no I/O, any input (fuzzed).
    public static func render(_ template: String, values: ActionValues) -> ActionScript {
        let registry = Registry(values: values)
        var renderer = ShellTemplateRenderer(input: Array(template.utf8), registry: registry, base: .script)
        let body = renderer.render()
        guard !registry.order.isEmpty else {
            return ActionScript(script: String(decoding: body, as: UTF8.self), arguments: [])
        }
        // One line that copies the parameters into named variables (functions in the template have their own
        // positional parameters) and clears them, so the template sees the same `$@` as without values. The
        // variables are exported: a nested shell (`sh -c '…${_pcl_1}…'`) expands them instead of parsing a value.
        let names = registry.order.indices.map { "\(variablePrefix)\($0 + 1)" }
        let prefix =
            registry.order.indices.map { "\(names[$0])=${\($0 + 1)}" }.joined(separator: " ") + "; export "
            + names.joined(separator: " ") + "; set --\n"
        return ActionScript(
            script: prefix + String(decoding: body, as: UTF8.self), arguments: registry.order.map(\.value))
    }

    /// Tag values referenced by the script, numbered in order of first use.
    final class Registry {
        let values: ActionValues
        var order: [(tag: String, value: String)] = []
        var index: [String: Int] = [:]
        init(values: ActionValues) { self.values = values }

        /// What a tag becomes: nil when the tag is unknown (it stays as written).
        func resolve(_ name: String) -> Replacement? {
            if let v = values.trusted[name] {
                return ShellEscape.isPlain(v) ? .inline(v) : reference(name, v)
            }
            if let v = values.untrusted[name] { return reference(name, v) }
            if name.hasPrefix("F-"), name.count > 2,
                name.utf8.dropFirst(2).allSatisfy({ ShellEscape.isCaptureNameByte($0) })
            {
                // fail2ban: every `<F-NAME>` is the ticket's captured field, empty when the filter has none.
                let key = ActionValues.captureKey(name)
                guard let v = values.captures[key], !v.isEmpty else { return .inline("") }
                return reference("F-" + key, v)
            }
            return nil
        }

        func reference(_ tag: String, _ value: String) -> Replacement {
            if let i = index[tag] { return .reference(i + 1, value) }
            order.append((tag, value))
            index[tag] = order.count - 1
            return .reference(order.count, value)
        }
    }

    enum Replacement {
        /// Written into the script as it is (trusted and plain).
        case inline(String)
        /// Parameter number and its value.
        case reference(Int, String)
    }
}

/// The values of an action's runtime tags.
///
/// `trusted` values come from Portcullis itself or its configuration (`ip`, `family`, `bantime`, `name`, …): they
/// are written into the script when they consist of plain characters (as `ShellEscape.isPlain`), else referenced.
/// `untrusted` values (`matches`, `ip-host`, `fid`, …) and `captures` (`<F-USER>` → `captures["user"]`) are always
/// referenced.
public struct ActionValues: Sendable, Hashable {
    /// Values Portcullis produced or the administrator wrote.
    public var trusted: [String: String]
    /// Values carrying text from outside.
    public var untrusted: [String: String]
    /// The filter's captured fields by fail2ban name (`user`, `fid`, `fport`, …), for `<F-*>` tags.
    public var captures: [String: String]

    /// Values by kind.
    public init(_ trusted: [String: String] = [:], untrusted: [String: String] = [:], captures: [String: String] = [:])
    {
        self.trusted = trusted
        self.untrusted = untrusted
        self.captures = captures
    }

    /// The capture key of an `<F-NAME>` tag, as fail2ban maps it: lower case, `id` → `fid`, `port` → `fport`.
    public static func captureKey(_ tag: String) -> String {
        let name = String(tag.dropFirst(2)).lowercased()
        switch name {
        case "id": return "fid"
        case "port": return "fport"
        default: return name
        }
    }
}

/// Reads a shell template with the POSIX grammar and writes it out with every tag replaced for its context.
struct ShellTemplateRenderer {
    enum Base { case script, heredocBody }

    private enum CasePhase { case expectWord, expectIn, pattern, body }

    private struct ScriptState {
        /// True inside `$(…)` (ends at an unmatched `)`), false at the top level.
        var substitution: Bool
        var parenDepth = 0
        var inWord = false
        var plainWord = true
        var word: [UInt8] = []
        var commandStart = true
        var cases: [CasePhase] = []
    }

    private enum Frame {
        case script(ScriptState)
        case double
        case single
        case brace(quoted: Bool)
        case arithmetic(depth: Int)
        case heredocBody
        case comment
    }

    private struct PendingHeredoc {
        var delimiter: [UInt8]
        var quoted: Bool
        var stripTabs: Bool
    }

    let input: [UInt8]
    let registry: ActionScript.Registry
    private var pos = 0
    private var out: [UInt8] = []
    private var stack: [Frame]
    private var pending: [PendingHeredoc] = []

    init(input: [UInt8], registry: ActionScript.Registry, base: Base) {
        self.input = input
        self.registry = registry
        switch base {
        case .script: stack = [.script(ScriptState(substitution: false))]
        case .heredocBody: stack = [.heredocBody]
        }
        out.reserveCapacity(input.count + 16)
    }

    // MARK: Driving

    mutating func render() -> [UInt8] {
        while pos < input.count {
            if input[pos] == UInt8(ascii: "<"), let (name, end) = tag(at: pos), let r = registry.resolve(name) {
                emitTag(r, name: name)
                pos = end
                continue
            }
            step()
        }
        finishWord()
        return out
    }

    /// The tag starting at `at` (fail2ban's `<([^ <>]+)>`): its name and the index after it.
    private func tag(at start: Int) -> (String, Int)? { Self.tag(in: input, at: start) }

    static func tag(in input: [UInt8], at start: Int) -> (String, Int)? {
        var i = start + 1
        while i < input.count {
            let c = input[i]
            if c == UInt8(ascii: ">") {
                return i > start + 1 ? (String(decoding: input[(start + 1)..<i], as: UTF8.self), i + 1) : nil
            }
            if c == UInt8(ascii: "<") || c == UInt8(ascii: " ") { return nil }
            i += 1
            if i - start > 256 { return nil }
        }
        return nil
    }

    private func isTag(at i: Int) -> Bool {
        guard i < input.count, input[i] == UInt8(ascii: "<"), let (name, _) = tag(at: i) else { return false }
        return registry.resolve(name) != nil
    }

    // MARK: Tags

    private mutating func emitTag(_ r: ActionScript.Replacement, name: String) {
        switch r {
        case .inline(let text):
            if case .arithmetic = stack.last!, !Self.isNumber(text) {
                emit("0")
            } else if inHeredoc, !text.isEmpty, !isArithmetic {
                // In a here-document body even a trusted value is referenced: a line that became the delimiter
                // would end the body early.
                emitTag(registry.reference(name, text), name: name)
                return
            } else {
                emit(text)
            }
            markWord(plain: false)
        case .reference(let n, let value):
            let v = "${\(ActionScript.variablePrefix)\(n)}"
            switch context {
            case .unquoted: emit("\"" + v + "\"")
            case .quoted: emit(v)
            // Never spliced into single quotes: that text may be code for another interpreter. The name stays;
            // a nested shell expands the exported variable.
            case .single: emit(v)
            case .arithmetic: emit(Self.isNumber(value) ? value : "0")
            }
            markWord(plain: false)
        }
    }

    private enum Context { case unquoted, quoted, single, arithmetic }

    private var inHeredoc: Bool {
        if case .heredocBody = stack.first! { return true }
        return false
    }

    private var isArithmetic: Bool {
        if case .arithmetic = stack.last! { return true }
        return false
    }

    private var context: Context {
        switch stack.last! {
        case .script: return .unquoted
        case .double, .heredocBody, .comment: return .quoted
        case .single: return .single
        case .arithmetic: return .arithmetic
        case .brace(let quoted): return quoted ? .quoted : .unquoted
        }
    }

    static func isNumber(_ s: String) -> Bool {
        var bytes = Substring(s).utf8[...]
        if bytes.first == UInt8(ascii: "-") { bytes = bytes.dropFirst() }
        return !bytes.isEmpty && bytes.count <= 18 && bytes.allSatisfy { $0 >= 48 && $0 <= 57 }
    }

    // MARK: Output

    private mutating func emit(_ s: String) { out.append(contentsOf: s.utf8) }
    private mutating func emit(_ b: UInt8) { out.append(b) }

    // MARK: Grammar

    private mutating func step() {
        let c = input[pos]
        switch stack.last! {
        case .script: stepScript(c)
        case .double: stepDouble(c)
        case .single:
            emit(c)
            pos += 1
            if c == UInt8(ascii: "'") { stack.removeLast() }
        case .brace(let quoted): stepBrace(c, quoted: quoted)
        case .arithmetic(let depth): stepArithmetic(c, depth: depth)
        case .heredocBody: stepHeredocBody(c)
        case .comment:
            if c == UInt8(ascii: "\n") {
                stack.removeLast()  // the newline is the script's (it may start here-document bodies)
            } else {
                emit(c)
                pos += 1
            }
        }
    }

    /// `$(`, `$((`, `${` and backquotes, common to every context that expands; true when handled.
    private mutating func stepExpansion(_ c: UInt8, quoted: Bool) -> Bool {
        if c == UInt8(ascii: "`") {
            convertBackquote(inDouble: quoted)
            return true
        }
        guard c == UInt8(ascii: "$"), pos + 1 < input.count else { return false }
        let n = input[pos + 1]
        if n == UInt8(ascii: "(") {
            if pos + 2 < input.count, input[pos + 2] == UInt8(ascii: "(") {
                emit("$((")
                pos += 3
                stack.append(.arithmetic(depth: 0))
            } else {
                emit("$(")
                pos += 2
                stack.append(.script(ScriptState(substitution: true)))
            }
            return true
        }
        if n == UInt8(ascii: "{") {
            emit("${")
            pos += 2
            stack.append(.brace(quoted: quoted))
            return true
        }
        return false
    }

    private mutating func stepScript(_ c: UInt8) {
        switch c {
        case UInt8(ascii: "\\"):
            if isTag(at: pos + 1) {
                pos += 1  // `\<tag>`: the backslash only kept `<` literal; the value is literal anyway
                return
            }
            markWord(plain: false)
            emit(c)
            pos += 1
            if pos < input.count {
                emit(input[pos])
                pos += 1
            }
        case UInt8(ascii: "'"):
            markWord(plain: false)
            emit(c)
            pos += 1
            stack.append(.single)
        case UInt8(ascii: "\""):
            markWord(plain: false)
            emit(c)
            pos += 1
            stack.append(.double)
        case UInt8(ascii: "`"), UInt8(ascii: "$"):
            markWord(plain: false)
            if !stepExpansion(c, quoted: false) {
                emit(c)
                pos += 1
            }
        case UInt8(ascii: "#") where !currentScript.inWord:
            stack.append(.comment)
            emit(c)
            pos += 1
        case UInt8(ascii: " "), UInt8(ascii: "\t"):
            finishWord()
            emit(c)
            pos += 1
        case UInt8(ascii: "\n"):
            finishWord()
            updateScript { $0.commandStart = true }
            emit(c)
            pos += 1
            if !pending.isEmpty { readHeredocBodies() }
        case UInt8(ascii: ";"), UInt8(ascii: "&"), UInt8(ascii: "|"):
            finishWord()
            if c == UInt8(ascii: ";"), pos + 1 < input.count, input[pos + 1] == UInt8(ascii: ";") {
                updateScript { s in if s.cases.last == .body { s.cases[s.cases.count - 1] = .pattern } }
                emit(";;")
                pos += 2
            } else {
                emit(c)
                pos += 1
            }
            updateScript { $0.commandStart = true }
        case UInt8(ascii: "("):
            finishWord()
            updateScript { s in
                if s.cases.last != .pattern { s.parenDepth += 1 }
                s.commandStart = true
            }
            emit(c)
            pos += 1
        case UInt8(ascii: ")"):
            finishWord()
            var s = currentScript
            if s.cases.last == .pattern {
                s.cases[s.cases.count - 1] = .body
                s.commandStart = true
                setScript(s)
            } else if s.parenDepth > 0 {
                s.parenDepth -= 1
                s.commandStart = false
                setScript(s)
            } else if s.substitution {
                stack.removeLast()
                afterNested()
            }
            emit(c)
            pos += 1
        case UInt8(ascii: "<"), UInt8(ascii: ">"):
            finishWord()
            if c == UInt8(ascii: "<"), pos + 1 < input.count, input[pos + 1] == UInt8(ascii: "<"),
                !(pos + 2 < input.count && input[pos + 2] == UInt8(ascii: "<"))
            {
                readHeredocOperator()
            } else {
                emit(c)
                pos += 1
            }
        default:
            markWord(plain: Self.isPlainWordByte(c), byte: c)
            emit(c)
            pos += 1
        }
    }

    private mutating func stepDouble(_ c: UInt8) {
        switch c {
        case UInt8(ascii: "\""):
            emit(c)
            pos += 1
            stack.removeLast()
        case UInt8(ascii: "\\"):
            if isTag(at: pos + 1) {
                emit("\\\\")  // `"\<tag>"`: the backslash stays a backslash before the value
                pos += 1
                return
            }
            emit(c)
            pos += 1
            if pos < input.count {
                emit(input[pos])
                pos += 1
            }
        default:
            if !stepExpansion(c, quoted: true) {
                emit(c)
                pos += 1
            }
        }
    }

    private mutating func stepHeredocBody(_ c: UInt8) {
        if c == UInt8(ascii: "\\") {
            if isTag(at: pos + 1) {
                emit("\\\\")
                pos += 1
                return
            }
            emit(c)
            pos += 1
            if pos < input.count {
                emit(input[pos])
                pos += 1
            }
        } else if !stepExpansion(c, quoted: true) {
            emit(c)
            pos += 1
        }
    }

    private mutating func stepBrace(_ c: UInt8, quoted: Bool) {
        switch c {
        case UInt8(ascii: "}"):
            emit(c)
            pos += 1
            stack.removeLast()
        case UInt8(ascii: "\\"):
            emit(c)
            pos += 1
            if pos < input.count {
                emit(input[pos])
                pos += 1
            }
        case UInt8(ascii: "'") where !quoted:
            emit(c)
            pos += 1
            stack.append(.single)
        case UInt8(ascii: "\""):
            emit(c)
            pos += 1
            stack.append(.double)
        default:
            if !stepExpansion(c, quoted: quoted) {
                emit(c)
                pos += 1
            }
        }
    }

    private mutating func stepArithmetic(_ c: UInt8, depth: Int) {
        switch c {
        case UInt8(ascii: "("):
            stack[stack.count - 1] = .arithmetic(depth: depth + 1)
            emit(c)
            pos += 1
        case UInt8(ascii: ")"):
            if depth == 0, pos + 1 < input.count, input[pos + 1] == UInt8(ascii: ")") {
                emit("))")
                pos += 2
                stack.removeLast()
            } else {
                stack[stack.count - 1] = .arithmetic(depth: max(0, depth - 1))
                emit(c)
                pos += 1
            }
        default:
            if !stepExpansion(c, quoted: false) {
                emit(c)
                pos += 1
            }
        }
    }

    // MARK: Backquotes

    /// `` `body` `` becomes `$(body)`, with the backslashes that backquotes remove removed first.
    private mutating func convertBackquote(inDouble: Bool) {
        var i = pos + 1
        var body: [UInt8] = []
        while i < input.count, input[i] != UInt8(ascii: "`") {
            if input[i] == UInt8(ascii: "\\"), i + 1 < input.count {
                let n = input[i + 1]
                if n == UInt8(ascii: "$") || n == UInt8(ascii: "`") || n == UInt8(ascii: "\\")
                    || (inDouble && n == UInt8(ascii: "\""))
                {
                    body.append(n)
                } else {
                    body.append(input[i])
                    body.append(n)
                }
                i += 2
                continue
            }
            body.append(input[i])
            i += 1
        }
        pos = min(i + 1, input.count)
        var inner = ShellTemplateRenderer(input: body, registry: registry, base: .script)
        let rendered = inner.render()
        emit("$(")
        if rendered.first == UInt8(ascii: "(") { emit(" ") }
        out.append(contentsOf: rendered)
        if rendered.contains(UInt8(ascii: "#")) || rendered.contains(UInt8(ascii: "\n")) { emit("\n") }
        emit(")")
    }

    // MARK: Here-documents

    private mutating func readHeredocOperator() {
        emit("<<")
        pos += 2
        var stripTabs = false
        if pos < input.count, input[pos] == UInt8(ascii: "-") {
            stripTabs = true
            emit("-")
            pos += 1
        }
        while pos < input.count, input[pos] == UInt8(ascii: " ") || input[pos] == UInt8(ascii: "\t") {
            emit(input[pos])
            pos += 1
        }
        // The delimiter word. A tag in it stands for a fixed word (`PCL_TAG_matches`), never a value: the shell
        // compares body lines with the delimiter before expanding them, so a value there could end the body where
        // this reading does not, and what follows would run as commands.
        var raw: [UInt8] = []
        var delimiter: [UInt8] = []
        var quoted = false
        func tagWord(at i: Int) -> ([UInt8], Int)? {
            guard input[i] == UInt8(ascii: "<"), let (name, end) = Self.tag(in: input, at: i),
                registry.resolve(name) != nil
            else { return nil }
            let word =
                "PCL_TAG_"
                + String(
                    name.unicodeScalars.map { s in
                        s.properties.isAlphabetic && s.isASCII || ("0"..."9").contains(s) ? Character(s) : "_"
                    })
            return (Array(word.utf8), end)
        }
        while pos < input.count {
            let c = input[pos]
            if let (word, end) = tagWord(at: pos) {
                raw += word
                delimiter += word
                pos = end
                continue
            }
            if c == UInt8(ascii: "'") || c == UInt8(ascii: "\"") {
                quoted = true
                raw.append(c)
                pos += 1
                while pos < input.count, input[pos] != c {
                    if let (word, end) = tagWord(at: pos) {
                        raw += word
                        delimiter += word
                        pos = end
                        continue
                    }
                    if c == UInt8(ascii: "\""), input[pos] == UInt8(ascii: "\\"), pos + 1 < input.count {
                        raw.append(input[pos])
                        pos += 1
                    }
                    raw.append(input[pos])
                    delimiter.append(input[pos])
                    pos += 1
                }
                if pos < input.count { raw.append(input[pos]) }
                pos = min(pos + 1, input.count)
                continue
            }
            if c == UInt8(ascii: "\\"), pos + 1 < input.count {
                quoted = true
                raw += [c, input[pos + 1]]
                delimiter.append(input[pos + 1])
                pos += 2
                continue
            }
            if Self.isWordBreak(c) { break }
            raw.append(c)
            delimiter.append(c)
            pos += 1
        }
        out.append(contentsOf: raw)
        pending.append(PendingHeredoc(delimiter: delimiter, quoted: quoted, stripTabs: stripTabs))
        markWord(plain: false)
    }

    /// At the newline that ends the line of `<<` operators: each body in turn, up to its delimiter line.
    private mutating func readHeredocBodies() {
        let queue = pending
        pending = []
        for doc in queue {
            let bodyStart = pos
            var bodyEnd = input.count
            var next = input.count
            var lineStart = pos
            while lineStart < input.count {
                var lineEnd = lineStart
                while lineEnd < input.count, input[lineEnd] != UInt8(ascii: "\n") { lineEnd += 1 }
                var check = lineStart
                if doc.stripTabs { while check < lineEnd, input[check] == UInt8(ascii: "\t") { check += 1 } }
                if input[check..<lineEnd].elementsEqual(doc.delimiter) {
                    bodyEnd = lineStart
                    next = lineEnd
                    break
                }
                lineStart = lineEnd + 1
            }
            let body = Array(input[bodyStart..<min(bodyEnd, input.count)])
            if !doc.quoted {
                var inner = ShellTemplateRenderer(input: body, registry: registry, base: .heredocBody)
                out.append(contentsOf: inner.render())
            } else {
                copyHeredocBody(body)
            }
            // The delimiter line itself (its newline is read by the script as usual).
            if bodyEnd < input.count { out.append(contentsOf: input[bodyEnd..<next]) }
            pos = next
        }
    }

    /// A quoted body: literal text, never expanded by this shell (it is often a script for another program:
    /// `sh <<'EOF'`, `python3 - <<'EOF'`). A tag leaves the name of its exported variable, a plain trusted value
    /// itself.
    private mutating func copyHeredocBody(_ body: [UInt8]) {
        var i = 0
        while i < body.count {
            if body[i] == UInt8(ascii: "<"), let (name, end) = Self.tag(in: body, at: i), let r = registry.resolve(name)
            {
                switch r {
                case .reference(let n, _): emit("${\(ActionScript.variablePrefix)\(n)}")
                case .inline(let t): emit(t)
                }
                i = end
                continue
            }
            emit(body[i])
            i += 1
        }
    }

    // MARK: Words and `case`

    private var currentScript: ScriptState {
        if case .script(let s) = stack.last! { return s }
        return ScriptState(substitution: false)
    }

    private mutating func setScript(_ s: ScriptState) {
        if case .script = stack.last! { stack[stack.count - 1] = .script(s) }
    }

    private mutating func updateScript(_ body: (inout ScriptState) -> Void) {
        guard case .script(var s) = stack.last! else { return }
        body(&s)
        stack[stack.count - 1] = .script(s)
    }

    /// After a nested frame closed back into a script: it continues the word in progress there.
    private mutating func afterNested() { markWord(plain: false) }

    private mutating func markWord(plain: Bool, byte: UInt8? = nil) {
        updateScript { s in
            s.inWord = true
            if !plain { s.plainWord = false }
            if let byte, s.plainWord { s.word.append(byte) }
        }
    }

    private mutating func finishWord() {
        updateScript { s in
            guard s.inWord else { return }
            let w = s.plainWord ? String(decoding: s.word, as: UTF8.self) : "\u{0}"
            s.inWord = false
            s.plainWord = true
            s.word = []
            let wasStart = s.commandStart
            s.commandStart = Self.reserved.contains(w)
            switch s.cases.last {
            case .expectWord: s.cases[s.cases.count - 1] = .expectIn
            case .expectIn:
                if w == "in" {
                    s.cases[s.cases.count - 1] = .pattern
                    s.commandStart = false
                }
            case .pattern: if w == "esac" { s.cases.removeLast() }
            case .body:
                if wasStart, w == "esac" {
                    s.cases.removeLast()
                } else if wasStart, w == "case" {
                    s.cases.append(.expectWord)
                }
            case nil:
                if wasStart, w == "case" { s.cases.append(.expectWord) }
            }
        }
    }

    private static let reserved: Set<String> = [
        "then", "do", "else", "elif", "if", "while", "until", "!", "{", "}", "time",
    ]

    static func isPlainWordByte(_ c: UInt8) -> Bool {
        (c >= 48 && c <= 57) || (c >= 65 && c <= 90) || (c >= 97 && c <= 122) || c == UInt8(ascii: "_")
            || c == UInt8(ascii: "!") || c == UInt8(ascii: "{") || c == UInt8(ascii: "}")
    }

    static func isWordBreak(_ c: UInt8) -> Bool {
        switch c {
        case UInt8(ascii: " "), UInt8(ascii: "\t"), UInt8(ascii: "\n"), UInt8(ascii: ";"), UInt8(ascii: "&"),
            UInt8(ascii: "|"), UInt8(ascii: "<"), UInt8(ascii: ">"), UInt8(ascii: "("), UInt8(ascii: ")"):
            return true
        default:
            return false
        }
    }
}
