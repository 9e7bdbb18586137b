/// A value of the Python pickle subset fail2ban's control protocol uses.
///
/// Besides plain data, replies carry exceptions (`fail2ban.exceptions.UnknownJailException('sshd')`) and `str`
/// subclasses rebuilt through `builtins.str(...)`; both are a ``call(_:_:)`` of a ``global(module:name:)``.
public indirect enum PickleValue: Sendable, Hashable {
    /// `None`.
    case none
    /// `True` / `False`.
    case bool(Bool)
    /// An integer that fits 64 bits.
    case int(Int)
    /// A float.
    case float(Double)
    /// A `str`.
    case string(String)
    /// `bytes` / `bytearray` (and protocol-0 `str` from Python 2).
    case bytes([UInt8])
    /// A `list`.
    case list([PickleValue])
    /// A `tuple`.
    case tuple([PickleValue])
    /// A `dict`, in order.
    case dict([Pair])
    /// A `set` or `frozenset`.
    case set([PickleValue])
    /// A reference to a Python global, e.g. `builtins.str`.
    case global(module: String, name: String)
    /// `callable(*arguments)`: how pickle rebuilds objects such as exceptions.
    case call(PickleValue, [PickleValue])

    /// One dict entry.
    public struct Pair: Sendable, Hashable {
        /// The key.
        public var key: PickleValue
        /// The value.
        public var value: PickleValue
        /// Creates an entry.
        public init(_ key: PickleValue, _ value: PickleValue) {
            self.key = key
            self.value = value
        }
    }
}

/// Why a pickle could not be decoded or encoded: a code, a message and the byte offset.
public struct PickleError: Error, Sendable, Hashable, CustomStringConvertible {
    /// The kind of problem.
    public enum Code: String, Sendable, Hashable {
        /// The data ended inside an opcode or before `STOP`.
        case truncated
        /// An opcode outside the supported subset.
        case unsupportedOpcode
        /// An opcode found the stack in the wrong shape (missing mark, too few items, wrong container).
        case malformed
        /// A memo reference to an entry that was never stored.
        case badMemo
        /// Nesting deeper than the limit, or more values than the limit (a memo "bomb").
        case tooComplex
        /// A value the subset cannot represent (integer over 64 bits, invalid UTF-8, unknown global call).
        case invalidValue
        /// Bytes after `STOP`.
        case trailingData
    }

    /// The kind of problem.
    public var code: Code
    /// What is wrong, for a person.
    public var message: String
    /// Byte offset in the input where it was detected.
    public var offset: Int

    /// Creates an error.
    public init(_ code: Code, _ message: String, offset: Int) {
        self.code = code
        self.message = message
        self.offset = offset
    }

    /// `"pickle: <message> at byte <offset>"`.
    public var description: String { "pickle: \(message) at byte \(offset)" }
}

/// Decodes pickles (protocols 0–5, data opcodes plus `GLOBAL`/`STACK_GLOBAL`/`REDUCE`), never executing anything.
/// Malformed, hostile or oversized input yields a ``PickleError``, never a crash.
///
/// ```swift
/// let request = try PickleDecoder().decode(bytes)   // .list([.string("status"), .string("sshd")])
/// ```
public struct PickleDecoder: Sendable {
    /// Maximum container nesting.
    public var maxDepth: Int
    /// Maximum number of values in the decoded tree (memo references can otherwise multiply them).
    public var maxValues: Int

    /// A decoder with the given limits.
    public init(maxDepth: Int = 64, maxValues: Int = 1_000_000) {
        self.maxDepth = maxDepth
        self.maxValues = maxValues
    }

    /// Decodes one complete pickle; trailing bytes after `STOP` are an error.
    public func decode(_ bytes: some Collection<UInt8>) throws(PickleError) -> PickleValue {
        var machine = PickleMachine(Array(bytes), maxDepth: maxDepth, maxContainers: maxValues)
        // Break every container link iteratively, so hostile deep nesting never recurses in deinit.
        defer { machine.teardown() }
        let node = try machine.run()
        var budget = maxValues
        return try Self.materialize(node, depth: 0, maxDepth: maxDepth, budget: &budget, offset: machine.position)
    }

    private static func materialize(
        _ node: Node, depth: Int, maxDepth: Int, budget: inout Int, offset: Int
    ) throws(PickleError) -> PickleValue {
        budget -= 1
        guard budget >= 0 else { throw PickleError(.tooComplex, "too many values", offset: offset) }
        guard depth <= maxDepth else {
            throw PickleError(.tooComplex, "nesting deeper than \(maxDepth)", offset: offset)
        }
        func all(_ nodes: [Node], _ budget: inout Int) throws(PickleError) -> [PickleValue] {
            var out: [PickleValue] = []
            out.reserveCapacity(nodes.count)
            for n in nodes {
                out.append(try materialize(n, depth: depth + 1, maxDepth: maxDepth, budget: &budget, offset: offset))
            }
            return out
        }
        switch node {
        case .value(let v): return v
        case .tuple(let items, _): return .tuple(try all(items, &budget))
        case .list(let box): return .list(try all(box.items, &budget))
        case .set(let box): return .set(try all(box.items, &budget))
        case .dict(let box):
            var pairs: [PickleValue.Pair] = []
            for (k, v) in box.pairs {
                let key = try materialize(k, depth: depth + 1, maxDepth: maxDepth, budget: &budget, offset: offset)
                let value = try materialize(v, depth: depth + 1, maxDepth: maxDepth, budget: &budget, offset: offset)
                pairs.append(PickleValue.Pair(key, value))
            }
            return .dict(pairs)
        case .call(let callable, let args, _):
            let c = try materialize(callable, depth: depth + 1, maxDepth: maxDepth, budget: &budget, offset: offset)
            let a = try all(args, &budget)
            // `builtins.str("x")` (a str subclass on the server) is just the string.
            if c == .global(module: "builtins", name: "str") || c == .global(module: "__builtin__", name: "str")
                || c == .global(module: "__builtin__", name: "unicode")
            {
                if a.count == 1, case .string = a[0] { return a[0] }
                if a.isEmpty { return .string("") }
            }
            return .call(c, a)
        case .mark:
            throw PickleError(.malformed, "mark left on the stack", offset: offset)
        }
    }
}

/// Mutable container used while decoding (lists are filled after being memoised, and may be shared).
private final class ListBox {
    var items: [Node] = []
    var depth = 1
}

private final class DictBox {
    var pairs: [(Node, Node)] = []
    var depth = 1
}

/// A decoding node; tuples and calls record their nesting depth, containers track it as items arrive.
private indirect enum Node {
    case value(PickleValue)
    case tuple([Node], Int)
    case list(ListBox)
    case set(ListBox)
    case dict(DictBox)
    case call(Node, [Node], Int)
    case mark

    var depth: Int {
        switch self {
        case .value, .mark: return 0
        case .tuple(_, let d), .call(_, _, let d): return d
        case .list(let box), .set(let box): return box.depth
        case .dict(let box): return box.depth
        }
    }
}

/// The pickle virtual machine: a stack, a mark stack and a memo.
private struct PickleMachine {
    let bytes: [UInt8]
    let maxDepth: Int
    let maxContainers: Int
    var position = 0
    var stack: [Node] = []
    var marks: [Int] = []
    var memo: [Int: Node] = [:]
    var lists: [ListBox] = []
    var dicts: [DictBox] = []

    init(_ bytes: [UInt8], maxDepth: Int, maxContainers: Int) {
        self.bytes = bytes
        self.maxDepth = maxDepth
        self.maxContainers = maxContainers
    }

    mutating func teardown() {
        for box in lists { box.items = [] }
        for box in dicts { box.pairs = [] }
        stack = []
        memo = [:]
    }

    mutating func newList() throws(PickleError) -> ListBox {
        guard lists.count + dicts.count < maxContainers else { throw fail(.tooComplex, "too many containers") }
        let box = ListBox()
        lists.append(box)
        return box
    }

    mutating func newDict() throws(PickleError) -> DictBox {
        guard lists.count + dicts.count < maxContainers else { throw fail(.tooComplex, "too many containers") }
        let box = DictBox()
        dicts.append(box)
        return box
    }

    func checked(_ depth: Int) throws(PickleError) -> Int {
        guard depth <= maxDepth else { throw fail(.tooComplex, "nesting deeper than \(maxDepth)") }
        return depth
    }

    mutating func tuple(_ items: [Node]) throws(PickleError) -> Node {
        .tuple(items, try checked(1 + (items.map(\.depth).max() ?? 0)))
    }

    func fail(_ code: PickleError.Code, _ message: String) -> PickleError {
        PickleError(code, message, offset: position)
    }

    mutating func byte() throws(PickleError) -> UInt8 {
        guard position < bytes.count else { throw fail(.truncated, "data ends early") }
        defer { position += 1 }
        return bytes[position]
    }

    mutating func take(_ n: Int) throws(PickleError) -> ArraySlice<UInt8> {
        guard n >= 0, n <= bytes.count - position else {
            throw fail(.truncated, "data ends early (need \(n) bytes, \(bytes.count - position) left)")
        }
        defer { position += n }
        return bytes[position..<position + n]
    }

    mutating func uint(_ n: Int) throws(PickleError) -> UInt64 {
        var v: UInt64 = 0
        for (i, b) in try take(n).enumerated() { v |= UInt64(b) << (8 * UInt64(i)) }
        return v
    }

    mutating func length(_ n: Int) throws(PickleError) -> Int {
        let v = try uint(n)
        guard v <= UInt64(bytes.count - position) else {
            throw fail(.truncated, "length \(v) exceeds the remaining \(bytes.count - position) bytes")
        }
        return Int(v)
    }

    mutating func line() throws(PickleError) -> String {
        guard let end = bytes[position...].firstIndex(of: 0x0A) else { throw fail(.truncated, "unterminated line") }
        defer { position = end + 1 }
        return String(decoding: bytes[position..<end], as: UTF8.self)
    }

    /// Protocol 0 text: Latin-1 bytes with `\uXXXX` / `\UXXXXXXXX` escapes, up to a newline.
    mutating func rawUnicodeEscape() throws(PickleError) -> String {
        guard let end = bytes[position...].firstIndex(of: 0x0A) else { throw fail(.truncated, "unterminated line") }
        let raw = bytes[position..<end]
        position = end + 1
        var out = String.UnicodeScalarView()
        var i = raw.startIndex
        while i < raw.endIndex {
            let b = raw[i]
            if b == 0x5C, i + 1 < raw.endIndex, raw[i + 1] == 0x75 || raw[i + 1] == 0x55 {
                let width = raw[i + 1] == 0x75 ? 4 : 8
                guard raw.endIndex - (i + 2) >= width,
                    let v = UInt32(String(decoding: raw[(i + 2)..<(i + 2 + width)], as: UTF8.self), radix: 16),
                    let scalar = Unicode.Scalar(v)
                else { throw fail(.invalidValue, "bad escape in text") }
                out.append(scalar)
                i += 2 + width
            } else {
                out.append(Unicode.Scalar(b))
                i += 1
            }
        }
        return String(out)
    }

    func utf8(_ slice: ArraySlice<UInt8>) throws(PickleError) -> String {
        guard let s = String(validating: slice, as: UTF8.self) else {
            throw fail(.invalidValue, "string is not valid UTF-8")
        }
        return s
    }

    mutating func pop() throws(PickleError) -> Node {
        guard let top = stack.popLast() else { throw fail(.malformed, "stack underflow") }
        if case .mark = top { throw fail(.malformed, "unexpected mark") }
        if let m = marks.last, stack.count < m { throw fail(.malformed, "pop below mark") }
        return top
    }

    mutating func popToMark() throws(PickleError) -> [Node] {
        guard let m = marks.popLast() else { throw fail(.malformed, "no mark") }
        guard m < stack.count, case .mark = stack[m] else { throw fail(.malformed, "mark lost") }
        let items = Array(stack[(m + 1)...])
        stack.removeSubrange(m...)
        return items
    }

    mutating func push(_ v: PickleValue) { stack.append(.value(v)) }

    mutating func memoStore(_ index: Int) throws(PickleError) {
        guard let top = stack.last else { throw fail(.malformed, "memo store with empty stack") }
        if case .mark = top { throw fail(.malformed, "memo store of a mark") }
        guard memo.count < 10_000_000 else { throw fail(.tooComplex, "memo too large") }
        memo[index] = top
    }

    mutating func memoGet(_ index: Int) throws(PickleError) {
        guard let node = memo[index] else { throw fail(.badMemo, "memo entry \(index) was never stored") }
        stack.append(node)
    }

    mutating func append(_ items: [Node]) throws(PickleError) {
        guard let target = stack.last else { throw fail(.malformed, "append without a list") }
        switch target {
        case .list(let box), .set(let box):
            box.depth = try checked(max(box.depth, 1 + (items.map(\.depth).max() ?? 0)))
            box.items.append(contentsOf: items)
        default: throw fail(.malformed, "append to a non-list")
        }
    }

    mutating func setItems(_ items: [Node]) throws(PickleError) {
        guard items.count % 2 == 0 else { throw fail(.malformed, "odd number of dict items") }
        guard let target = stack.last, case .dict(let box) = target else {
            throw fail(.malformed, "set item on a non-dict")
        }
        box.depth = try checked(max(box.depth, 1 + (items.map(\.depth).max() ?? 0)))
        var i = 0
        while i < items.count {
            box.pairs.append((items[i], items[i + 1]))
            i += 2
        }
    }

    mutating func int(fromText text: String) throws(PickleError) -> PickleValue {
        var t = Substring(text)
        if t.hasSuffix("L") { t = t.dropLast() }
        if t == "00" { return .bool(false) }
        if t == "01" { return .bool(true) }
        guard let v = Int(t) else { throw fail(.invalidValue, "bad integer literal '\(text.prefix(40))'") }
        return .int(v)
    }

    mutating func long(_ n: Int) throws(PickleError) -> PickleValue {
        let raw = Array(try take(n))
        guard !raw.isEmpty else { return .int(0) }
        // Little-endian two's complement; must fit Int64.
        let negative = raw.last! & 0x80 != 0
        var significant = raw
        while significant.count > 8, significant.last == (negative ? 0xFF : 0x00) { significant.removeLast() }
        guard significant.count <= 8 else { throw fail(.invalidValue, "integer wider than 64 bits") }
        var v: UInt64 = negative ? UInt64.max : 0
        for (i, b) in significant.enumerated() {
            v &= ~(UInt64(0xFF) << (8 * UInt64(i)))
            v |= UInt64(b) << (8 * UInt64(i))
        }
        let signed = Int64(bitPattern: v)
        guard (signed < 0) == negative else { throw fail(.invalidValue, "integer wider than 64 bits") }
        return .int(Int(signed))
    }

    mutating func run() throws(PickleError) -> Node {
        while true {
            let op = try byte()
            switch op {
            case 0x80:  // PROTO
                let version = try byte()
                guard version <= 5 else { throw fail(.unsupportedOpcode, "pickle protocol \(version)") }
            case 0x95:  // FRAME: the frame is just the following bytes
                _ = try length(8)
            case 0x2E:  // STOP
                let result = try pop()
                guard stack.isEmpty else { throw fail(.malformed, "values left on the stack at STOP") }
                guard position == bytes.count else { throw fail(.trailingData, "bytes after STOP") }
                return result
            case 0x28:  // MARK
                marks.append(stack.count)
                stack.append(.mark)
            case 0x30: _ = try pop()  // POP
            case 0x31: _ = try popToMark()  // POP_MARK
            case 0x32:  // DUP
                let top = try pop()
                stack.append(top)
                stack.append(top)
            case 0x4E: push(.none)  // NONE
            case 0x88: push(.bool(true))  // NEWTRUE
            case 0x89: push(.bool(false))  // NEWFALSE
            case 0x4B: push(.int(Int(try byte())))  // BININT1
            case 0x4D: push(.int(Int(try uint(2))))  // BININT2
            case 0x4A: push(.int(Int(Int32(bitPattern: UInt32(try uint(4))))))  // BININT
            case 0x8A: push(try long(Int(try byte())))  // LONG1
            case 0x8B:  // LONG4
                let n = try length(4)
                push(try long(n))
            case 0x49: push(try int(fromText: try line()))  // INT
            case 0x4C: push(try int(fromText: try line()))  // LONG
            case 0x47:  // BINFLOAT (big-endian)
                var v: UInt64 = 0
                for b in try take(8) { v = v << 8 | UInt64(b) }
                push(.float(Double(bitPattern: v)))
            case 0x46:  // FLOAT
                let text = try line()
                guard let d = Double(text) else { throw fail(.invalidValue, "bad float literal") }
                push(.float(d))
            case 0x8C: push(.string(try utf8(try take(Int(try byte())))))  // SHORT_BINUNICODE
            case 0x58: push(.string(try utf8(try take(try length(4)))))  // BINUNICODE
            case 0x8D: push(.string(try utf8(try take(try length(8)))))  // BINUNICODE8
            case 0x56: push(.string(try rawUnicodeEscape()))  // UNICODE
            case 0x43: push(.bytes(Array(try take(Int(try byte())))))  // SHORT_BINBYTES
            case 0x42: push(.bytes(Array(try take(try length(4)))))  // BINBYTES
            case 0x8E, 0x96: push(.bytes(Array(try take(try length(8)))))  // BINBYTES8, BYTEARRAY8
            case 0x55: push(.bytes(Array(try take(Int(try byte())))))  // SHORT_BINSTRING
            case 0x54: push(.bytes(Array(try take(try length(4)))))  // BINSTRING
            case 0x53:  // STRING: a quoted Python 2 literal; accept the simple form
                var text = try line()
                if text.count >= 2, let q = text.first, q == "'" || q == "\"", text.last == q {
                    text = String(text.dropFirst().dropLast())
                }
                push(.bytes(Array(text.utf8)))
            case 0x5D: stack.append(.list(try newList()))  // EMPTY_LIST
            case 0x29: push(.tuple([]))  // EMPTY_TUPLE
            case 0x7D: stack.append(.dict(try newDict()))  // EMPTY_DICT
            case 0x8F: stack.append(.set(try newList()))  // EMPTY_SET
            case 0x6C:  // LIST
                let items = try popToMark()
                stack.append(.list(try newList()))
                try append(items)
            case 0x74: stack.append(try tuple(try popToMark()))  // TUPLE
            case 0x85: stack.append(try tuple([try pop()]))  // TUPLE1
            case 0x86:  // TUPLE2
                let b = try pop()
                let a = try pop()
                stack.append(try tuple([a, b]))
            case 0x87:  // TUPLE3
                let c = try pop()
                let b = try pop()
                let a = try pop()
                stack.append(try tuple([a, b, c]))
            case 0x91:  // FROZENSET
                let items = try popToMark()
                stack.append(.set(try newList()))
                try append(items)
            case 0x64:  // DICT
                let items = try popToMark()
                stack.append(.dict(try newDict()))
                try setItems(items)
            case 0x61: try append([try pop()])  // APPEND
            case 0x65, 0x90: try append(try popToMark())  // APPENDS, ADDITEMS
            case 0x73:  // SETITEM
                let v = try pop()
                let k = try pop()
                try setItems([k, v])
            case 0x75: try setItems(try popToMark())  // SETITEMS
            case 0x94: try memoStore(memo.count)  // MEMOIZE
            case 0x71: try memoStore(Int(try byte()))  // BINPUT
            case 0x72: try memoStore(Int(try uint(4)))  // LONG_BINPUT
            case 0x70:  // PUT
                guard let i = Int(try line()) else { throw fail(.malformed, "bad PUT index") }
                try memoStore(i)
            case 0x68: try memoGet(Int(try byte()))  // BINGET
            case 0x6A: try memoGet(Int(try uint(4)))  // LONG_BINGET
            case 0x67:  // GET
                guard let i = Int(try line()) else { throw fail(.malformed, "bad GET index") }
                try memoGet(i)
            case 0x63:  // GLOBAL
                let module = try line()
                let name = try line()
                push(.global(module: module, name: name))
            case 0x93:  // STACK_GLOBAL
                let name = try pop()
                let module = try pop()
                guard case .value(.string(let n)) = name, case .value(.string(let m)) = module else {
                    throw fail(.malformed, "STACK_GLOBAL needs two strings")
                }
                push(.global(module: m, name: n))
            case 0x52:  // REDUCE
                let args = try pop()
                let callable = try pop()
                let items: [Node]
                switch args {
                case .tuple(let t, _): items = t
                case .value(.tuple(let t)): items = t.map { .value($0) }
                default: throw fail(.malformed, "REDUCE needs an argument tuple")
                }
                let depth = try checked(1 + max(callable.depth, args.depth))
                stack.append(.call(callable, items, depth))
            default:
                throw fail(
                    .unsupportedOpcode,
                    "unsupported opcode 0x\(String(op, radix: 16, uppercase: true))")
            }
            guard stack.count <= 1_000_000 else { throw fail(.tooComplex, "stack too deep") }
        }
    }
}

/// Encodes values as a pickle that Python's `pickle.loads` reads; with protocol 5 the bytes match what Python's
/// `pickle.dumps(value, 5)` writes for values without shared sub-objects.
///
/// ```swift
/// let bytes = PickleEncoder().encode(.tuple([.int(0), .string("pong")]))
/// ```
public struct PickleEncoder: Sendable {
    /// The pickle protocol written (2…5).
    public var version: UInt8

    /// An encoder for a protocol (clamped to 2…5).
    public init(protocol version: UInt8 = 5) {
        self.version = min(max(version, 2), 5)
    }

    /// Encodes a value as a complete pickle (header, frame, `STOP`).
    public func encode(_ value: PickleValue) -> [UInt8] {
        var body: [UInt8] = []
        var memo = 0
        write(value, into: &body, memo: &memo)
        body.append(0x2E)  // STOP
        var out: [UInt8] = [0x80, version]
        if version >= 4, body.count >= 4 {
            out.append(0x95)
            appendLittleEndian(UInt64(body.count), bytes: 8, to: &out)
        }
        out += body
        return out
    }

    private func appendLittleEndian(_ v: UInt64, bytes n: Int, to out: inout [UInt8]) {
        for i in 0..<n { out.append(UInt8(truncatingIfNeeded: v >> (8 * UInt64(i)))) }
    }

    private func memoize(_ out: inout [UInt8], _ memo: inout Int) {
        if version >= 4 {
            out.append(0x94)
        } else if memo < 256 {
            out += [0x71, UInt8(memo)]
        } else {
            out.append(0x72)
            appendLittleEndian(UInt64(memo), bytes: 4, to: &out)
        }
        memo += 1
    }

    private func writeString(_ s: String, into out: inout [UInt8], memo: inout Int) {
        let utf8 = Array(s.utf8)
        if version >= 4, utf8.count < 256 {
            out += [0x8C, UInt8(utf8.count)]
        } else if utf8.count <= UInt32.max {
            out.append(0x58)
            appendLittleEndian(UInt64(utf8.count), bytes: 4, to: &out)
        } else {
            out.append(0x8D)
            appendLittleEndian(UInt64(utf8.count), bytes: 8, to: &out)
        }
        out += utf8
        memoize(&out, &memo)
    }

    private func writeInt(_ i: Int, into out: inout [UInt8]) {
        if i >= 0, i < 256 {
            out += [0x4B, UInt8(i)]
        } else if i >= 0, i < 65536 {
            out.append(0x4D)
            appendLittleEndian(UInt64(i), bytes: 2, to: &out)
        } else if i >= Int(Int32.min), i <= Int(Int32.max) {
            out.append(0x4A)
            appendLittleEndian(UInt64(UInt32(bitPattern: Int32(i))), bytes: 4, to: &out)
        } else {
            // LONG1: minimal little-endian two's complement, as Python's encode_long writes it.
            let magnitudeBits = UInt.bitWidth - i.magnitude.leadingZeroBitCount  // Python's int.bit_length()
            var n = magnitudeBits / 8 + 1
            let raw = UInt64(bitPattern: Int64(i))
            var bytes = (0..<8).map { UInt8(truncatingIfNeeded: raw >> (8 * UInt64($0))) }
            if n > 8 { bytes.append(i < 0 ? 0xFF : 0x00) }
            n = min(n, bytes.count)
            var chosen = Array(bytes[0..<n])
            if i < 0, chosen.count > 1, chosen[chosen.count - 1] == 0xFF, chosen[chosen.count - 2] & 0x80 != 0 {
                chosen.removeLast()
            }
            out += [0x8A, UInt8(chosen.count)]
            out += chosen
        }
    }

    private func writeItems(
        _ items: [PickleValue], single: UInt8, batch: UInt8, into out: inout [UInt8], memo: inout Int
    ) {
        var index = 0
        while index < items.count {
            let chunk = items[index..<min(index + 1000, items.count)]
            if chunk.count == 1 {
                write(chunk.first!, into: &out, memo: &memo)
                out.append(single)
            } else {
                out.append(0x28)  // MARK
                for item in chunk { write(item, into: &out, memo: &memo) }
                out.append(batch)
            }
            index += chunk.count
        }
    }

    private func write(_ value: PickleValue, into out: inout [UInt8], memo: inout Int) {
        switch value {
        case .none: out.append(0x4E)
        case .bool(let b): out.append(b ? 0x88 : 0x89)
        case .int(let i): writeInt(i, into: &out)
        case .float(let d):
            out.append(0x47)
            let bits = d.bitPattern
            for shift in stride(from: 56, through: 0, by: -8) {
                out.append(UInt8(truncatingIfNeeded: bits >> UInt64(shift)))
            }
        case .string(let s): writeString(s, into: &out, memo: &memo)
        case .bytes(let b):
            if b.count < 256 {
                out += [0x43, UInt8(b.count)]
            } else {
                out.append(0x42)
                appendLittleEndian(UInt64(b.count), bytes: 4, to: &out)
            }
            out += b
            memoize(&out, &memo)
        case .list(let items):
            out.append(0x5D)
            memoize(&out, &memo)
            writeItems(items, single: 0x61, batch: 0x65, into: &out, memo: &memo)
        case .set(let items):
            out.append(0x8F)
            memoize(&out, &memo)
            if !items.isEmpty {
                out.append(0x28)
                for item in items { write(item, into: &out, memo: &memo) }
                out.append(0x90)
            }
        case .tuple(let items):
            if items.isEmpty {
                out.append(0x29)
                return
            }
            if items.count <= 3 {
                for item in items { write(item, into: &out, memo: &memo) }
                out.append([0x85, 0x86, 0x87][items.count - 1])
            } else {
                out.append(0x28)
                for item in items { write(item, into: &out, memo: &memo) }
                out.append(0x74)
            }
            memoize(&out, &memo)
        case .dict(let pairs):
            out.append(0x7D)
            memoize(&out, &memo)
            var index = 0
            while index < pairs.count {
                let chunk = pairs[index..<min(index + 1000, pairs.count)]
                if chunk.count == 1 {
                    write(chunk.first!.key, into: &out, memo: &memo)
                    write(chunk.first!.value, into: &out, memo: &memo)
                    out.append(0x73)
                } else {
                    out.append(0x28)
                    for pair in chunk {
                        write(pair.key, into: &out, memo: &memo)
                        write(pair.value, into: &out, memo: &memo)
                    }
                    out.append(0x75)
                }
                index += chunk.count
            }
        case .global(let module, let name):
            if version >= 4 {
                writeString(module, into: &out, memo: &memo)
                writeString(name, into: &out, memo: &memo)
                out.append(0x93)
            } else {
                out.append(0x63)
                out += Array("\(module)\n\(name)\n".utf8)
            }
            memoize(&out, &memo)
        case .call(let callable, let args):
            write(callable, into: &out, memo: &memo)
            write(.tuple(args), into: &out, memo: &memo)
            out.append(0x52)
            memoize(&out, &memo)
        }
    }
}
