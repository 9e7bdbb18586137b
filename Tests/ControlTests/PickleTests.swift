import Foundation
import PortcullisTestKit
import Testing

@testable import Control

func bytes(hex: String) -> [UInt8] {
    var out: [UInt8] = []
    var it = hex.utf8.makeIterator()
    while let h = it.next(), let l = it.next() {
        out.append(UInt8(String(decoding: [h, l], as: UTF8.self), radix: 16)!)
    }
    return out
}

/// Values exercising every encoder branch (distinct strings only, so Python's memo matches ours byte for byte).
let sampleValues: [ControlValue] = [
    .null, true, false, 0, 255, 256, 65535, 65536, -1, -129, 2_147_483_647, -2_147_483_648, 2_147_483_648,
    -2_147_483_649, 4_294_967_296, -4_294_967_296, 549_755_813_888, -549_755_813_888, .int(Int.max), .int(Int.min),
    0.5, -2.25, 1e-05, 1e16, "", "pong", "héllo ✓ 😀", "quote ' and \" both", "it's", "tab\tnew\nline\\",
    .string(String(repeating: "x", count: 300)), .string(String(repeating: "y", count: 70_000)),
    [], ["a1"], ["b1", "b2"], .tuple([]), .tuple(["c1"]), .tuple(["d1", "d2", "d3"]), .tuple(["e1", "e2", "e3", "e4"]),
    [:], ["k1": "v1"], ["k2": 1, "k3": [true, .null]],
    .list((0..<2500).map { .int($0) }),
    .dict((0..<1500).map { ControlValue.Pair(.int($0), .int(-$0)) }),
    [.tuple(["Number of jail", 2]), .tuple(["Jail list", "sshd, web"])],
    [["sshd": ["192.0.2.1", "192.0.2.2"]], ["web": ["2001:db8::1"]]],
]

@Suite("Pickle codec", .blocking)
struct PickleTests {
    @Test("requests captured from the real fail2ban-client decode to their command")
    func goldenRequests() throws {
        for exchange in Golden.exchanges {
            let value = try PickleDecoder().decode(bytes(hex: exchange.request))
            #expect(try PickleWire.command(from: value) == exchange.command)
            // And our client writes the very same bytes.
            #expect(PickleWire.encodeRequest(exchange.command) == bytes(hex: exchange.request))
        }
    }

    @Test("reload requests keep the jail and options and drop the configuration stream")
    func goldenReloads() throws {
        for reload in Golden.reloads {
            let value = try PickleDecoder().decode(bytes(hex: reload.request))
            #expect(try PickleWire.command(from: value) == reload.expected)
        }
    }

    @Test("our replies are byte-identical to fail2ban-server's for the same values")
    func goldenReplies() throws {
        let strSubclass = "6275696c74696e73948c03737472"  // builtins.str(...) wrappers only Python writes
        for exchange in Golden.exchanges {
            let golden = bytes(hex: exchange.reply)
            let response = PickleWire.response(from: try PickleDecoder().decode(golden))
            let ours = PickleWire.encodeReply(response)
            #expect(try PickleDecoder().decode(ours) == PickleDecoder().decode(golden))
            if !exchange.reply.contains(strSubclass) {
                #expect(ours == golden, "reply to \(exchange.command)")
            }
        }
    }

    @Test("fail2ban's exceptions map to error codes and back")
    func exceptions() throws {
        let unknown = PickleWire.response(from: try PickleDecoder().decode(bytes(hex: Golden.exchanges[3].reply)))
        #expect(unknown == .failure(.unknownJail("nosuch")))
        for code in ControlError.Code.allCases {
            let error = ControlError(code, "message for \(code)")
            let back = PickleWire.response(from: try PickleDecoder().decode(PickleWire.encodeReply(.failure(error))))
            guard case .failure(let decoded) = back else {
                Issue.record("expected failure for \(code)")
                continue
            }
            #expect(decoded.message == error.message)
        }
    }

    @Test("Swift encodes → Python pickle.loads reads the same value (protocols 2–5)", .enabled(if: Python.available))
    func pythonReadsOurs() throws {
        for version: UInt8 in 2...5 {
            var input: [UInt8] = []
            for value in sampleValues {
                let data = PickleEncoder(protocol: version).encode(PickleWire.pickle(value))
                input += Array("\(data.count)\n".utf8) + data
            }
            let script = """
                import sys, pickle
                data = sys.stdin.buffer.read()
                out = []
                while data:
                    n, _, rest = data.partition(b'\\n')
                    n = int(n)
                    out.append(repr(pickle.loads(rest[:n])))
                    data = rest[n:]
                sys.stdout.write('\\x00'.join(out))
                """
            let reprs = String(decoding: try Python.run(script, input: input), as: UTF8.self)
                .split(separator: "\0", omittingEmptySubsequences: false).map(String.init)
            #expect(reprs == sampleValues.map(PythonRepr.render), "protocol \(version)")
        }
    }

    @Test("Python pickle.dumps (protocols 0–5) → Swift decodes the same value", .enabled(if: Python.available))
    func weReadPython() throws {
        let literals = sampleValues.map(PythonRepr.render).joined(separator: "\0")
        let script = """
            import sys, pickle, ast
            values = [ast.literal_eval(s) for s in sys.stdin.read().split('\\x00')]
            out = b''
            for proto in range(6):
                for v in values:
                    d = pickle.dumps(v, proto)
                    out += str(len(d)).encode() + b'\\n' + d
            sys.stdout.buffer.write(out)
            """
        var data = try Python.run(script, input: Array(literals.utf8))[...]
        var decoded: [ControlValue] = []
        while let newline = data.firstIndex(of: 0x0A) {
            let n = Int(String(decoding: data[..<newline], as: UTF8.self))!
            let body = data[(newline + 1)..<(newline + 1 + n)]
            decoded.append(PickleWire.controlValue(try PickleDecoder().decode(body)))
            data = data[(newline + 1 + n)...]
        }
        #expect(decoded.count == sampleValues.count * 6)
        for (i, value) in decoded.enumerated() {
            let expected = sampleValues[i % sampleValues.count]
            #expect(PythonRepr.render(value) == PythonRepr.render(expected), "protocol \(i / sampleValues.count)")
        }
    }

    @Test("protocol 5 bytes match Python's pickle.dumps exactly", .enabled(if: Python.available))
    func byteIdenticalToPython() throws {
        let literals = sampleValues.map(PythonRepr.render).joined(separator: "\0")
        let script = """
            import sys, pickle, ast
            values = [ast.literal_eval(s) for s in sys.stdin.read().split('\\x00')]
            sys.stdout.write('\\n'.join(pickle.dumps(v, 5).hex() for v in values))
            """
        let hexes = String(decoding: try Python.run(script, input: Array(literals.utf8)), as: UTF8.self)
            .split(separator: "\n").map(String.init)
        #expect(hexes.count == sampleValues.count)
        for (value, hex) in zip(sampleValues, hexes) {
            // Python frames big payloads in 64 KiB pieces; compare the rest exactly.
            if hex.count > 2 * 60_000 { continue }
            #expect(
                PickleEncoder().encode(PickleWire.pickle(value)) == bytes(hex: hex),
                "\(PythonRepr.render(value).prefix(60))")
        }
    }

    @Test("every truncation of a valid pickle is an error, never a crash")
    func truncations() {
        for exchange in Golden.exchanges + [Golden.Exchange(command: [], request: Golden.reloads[0].request, reply: "")]
        {
            let full = bytes(hex: exchange.request)
            for cut in 0..<full.count {
                #expect(throws: PickleError.self) { try PickleDecoder().decode(full[..<cut]) }
            }
        }
    }

    @Test("random corruption of valid pickles never crashes")
    func fuzz() {
        var rng = SplitMix(seed: 0x5EED)
        let seeds =
            Golden.exchanges.flatMap { [bytes(hex: $0.request), bytes(hex: $0.reply)] }
            + Golden.reloads.map { bytes(hex: $0.request) }
        var decoded = 0
        for round in 0..<20_000 {
            var data = seeds[round % seeds.count]
            for _ in 0..<(1 + Int(rng.next() % 4)) {
                let i = Int(rng.next() % UInt64(data.count))
                switch rng.next() % 3 {
                case 0: data[i] = UInt8(truncatingIfNeeded: rng.next())
                case 1: data.remove(at: i)
                default: data.insert(UInt8(truncatingIfNeeded: rng.next()), at: i)
                }
            }
            if (try? PickleDecoder().decode(data)) != nil { decoded += 1 }
        }
        // Some mutations stay valid (e.g. changed string bytes); most are rejected.
        #expect(decoded < 20_000)
    }

    @Test("hostile pickles are refused with a specific error")
    func hostile() {
        func code(_ data: [UInt8]) -> PickleError.Code? {
            do {
                _ = try PickleDecoder().decode(data)
                return nil
            } catch { return error.code }
        }
        // Memo bomb: each level is a list holding the previous one twice → 2^60 nodes.
        var bomb: [UInt8] = [0x80, 0x05, 0x5D, 0x94, 0x30]
        for level in 0..<60 { bomb += [0x28, 0x68, UInt8(level), 0x68, UInt8(level), 0x6C, 0x94, 0x30] }
        bomb += [0x68, 60, 0x2E]
        // Lists nested 100 000 deep.
        var deep: [UInt8] = [0x80, 0x05]
        for _ in 0..<100_000 { deep += [0x5D] }
        for _ in 0..<99_999 { deep += [0x61] }
        deep += [0x2E]
        // Tuples nested 100 000 deep.
        var deepTuple: [UInt8] = [0x80, 0x05, 0x29]
        for _ in 0..<100_000 { deepTuple += [0x85] }
        deepTuple += [0x2E]
        // A list containing itself.
        let recursive: [UInt8] = [0x80, 0x05, 0x5D, 0x94, 0x68, 0x00, 0x61, 0x2E]
        #expect(code(bomb) == .tooComplex)
        #expect(code(deep) == .tooComplex)
        #expect(code(deepTuple) == .tooComplex)
        #expect(code(recursive) == .tooComplex)
        #expect(code([0x80, 0x05, 0x68, 0x07, 0x2E]) == .badMemo)
        #expect(code([0x80, 0x05, 0x81, 0x2E]) == .unsupportedOpcode)  // NEWOBJ
        #expect(code([0x80, 0x05, 0x8A, 0x09] + [UInt8](repeating: 0x11, count: 9) + [0x2E]) == .invalidValue)
        #expect(code([0x80, 0x05, 0x8C, 0x02, 0xC3, 0x28, 0x2E]) == .invalidValue)  // bad UTF-8
        #expect(code([0x80, 0x05, 0x4E, 0x2E, 0x00]) == .trailingData)
        #expect(code([0x80, 0x05, 0x61, 0x2E]) == .malformed)
        #expect(code([0x80, 0x05, 0x58, 0xFF, 0xFF, 0xFF, 0x7F, 0x41]) == .truncated)
        #expect(code([0x80, 0x05, 0x4E, 0x4E, 0x2E]) == .malformed)
        #expect(code([]) == .truncated)
    }

    @Test("requests that are not lists of strings are refused")
    func badRequests() throws {
        let cases: [PickleValue] = [
            .string("status"), .int(1), .list([]), .list([.dict([])]),
            .list([.string("x"), .list([.string("a"), .list([])])]),
        ]
        for value in cases {
            #expect(throws: ControlError.self) { try PickleWire.command(from: value) }
        }
        #expect(
            try PickleWire.command(from: .list([.string("set"), .string("j"), .string("maxretry"), .int(5)]))
                == ["set", "j", "maxretry", "5"])
        #expect(
            try PickleWire.command(from: .tuple([.string("echo"), .bool(true), .none, .float(0.5)]))
                == ["echo", "True", "None", "0.5"])
    }
}
