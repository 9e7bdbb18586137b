import Control
import Core

/// The pickle decoder (fail2ban-client's framing): any bytes decode or throw `PickleError`, never trap; a decoded
/// value re-encodes (every protocol 2…5) and decodes back to the same value; the request and reply mappings
/// the server applies never trap.
enum PickleTarget {
    static func run(_ data: UnsafeRawBufferPointer) {
        let decoded: PickleValue
        do {
            decoded = try PickleDecoder().decode(data)
        } catch {
            return
        }
        _ = try? PickleWire.command(from: decoded)
        _ = PickleWire.controlValue(decoded)
        _ = PickleWire.response(from: decoded)
        var budget = 20_000
        guard isSmall(decoded, budget: &budget), !hasNaN(decoded) else { return }
        for version in UInt8(2)...5 {
            let bytes = PickleEncoder(protocol: version).encode(decoded)
            let again: PickleValue
            do {
                again = try PickleDecoder().decode(bytes)
            } catch {
                FuzzTargets.fail("pickle", "re-encoded value (protocol \(version)) does not decode: \(error)")
            }
            if again != decoded {
                FuzzTargets.fail("pickle", "protocol \(version) round trip changed the value: \(decoded) -> \(again)")
            }
        }
    }

    /// True when the value has at most `budget` nodes (memo references can make a small pickle a huge tree).
    static func isSmall(_ value: PickleValue, budget: inout Int) -> Bool {
        budget -= 1
        guard budget >= 0 else { return false }
        switch value {
        case .list(let items), .tuple(let items), .set(let items):
            for item in items where !isSmall(item, budget: &budget) { return false }
        case .dict(let pairs):
            for pair in pairs where !isSmall(pair.key, budget: &budget) || !isSmall(pair.value, budget: &budget) {
                return false
            }
        case .call(let callable, let args):
            guard isSmall(callable, budget: &budget) else { return false }
            for arg in args where !isSmall(arg, budget: &budget) { return false }
        default: break
        }
        return true
    }

    /// NaN is not equal to itself, so values holding one cannot be compared after a round trip.
    static func hasNaN(_ value: PickleValue) -> Bool {
        switch value {
        case .float(let d): return d.isNaN
        case .list(let items), .tuple(let items), .set(let items): return items.contains(where: hasNaN)
        case .dict(let pairs): return pairs.contains { hasNaN($0.key) || hasNaN($0.value) }
        case .call(let callable, let args): return hasNaN(callable) || args.contains(where: hasNaN)
        default: return false
        }
    }
}

/// Portcullis's JSON-lines control protocol: a request line parses to a command or a `ControlError`; any JSON
/// value re-encodes and parses back to the same value; a reply line always yields a response.
enum JSONTarget {
    static func run(_ data: UnsafeRawBufferPointer) {
        let bytes = Array(data)
        _ = try? JSONWire.command(fromLine: bytes)
        _ = JSONWire.response(fromLine: bytes)
        guard let value = try? JSON.parse(bytes) else { return }
        let text = value.encoded()
        let again: JSON
        do {
            again = try JSON.parse(text)
        } catch {
            FuzzTargets.fail("json", "encoded value does not parse: \(error) in \(text)")
        }
        if again != value { FuzzTargets.fail("json", "round trip changed the value: \(value) -> \(again)") }
        let control = JSONValue.controlValue(value)
        _ = JSONValue.encode(control)
        _ = PickleEncoder().encode(PickleWire.pickle(control))
    }
}

/// Address parsing: text parses to nil or an address whose text form parses back to the same address;
/// `IPAddress(bytes:)` agrees with `IPAddress(_:)`; subnets parse to a network that contains its address.
enum AddressTarget {
    static func run(_ data: UnsafeRawBufferPointer) {
        let bytes = Array(data)
        let text = String(decoding: bytes, as: UTF8.self)
        let fromBytes = IPAddress(bytes: bytes)
        if let address = IPAddress(text) {
            guard let again = IPAddress(address.description), again == address else {
                FuzzTargets.fail("address", "\(text) -> \(address) does not parse back")
            }
            if let fromBytes, fromBytes != address {
                FuzzTargets.fail("address", "\(text): bytes parser gives \(fromBytes), text parser \(address)")
            }
        }
        if let subnet = Subnet(text) {
            guard subnet.contains(subnet.network) else {
                FuzzTargets.fail("address", "\(text) -> \(subnet) does not contain its own network")
            }
            guard let again = Subnet(subnet.description), again == subnet else {
                FuzzTargets.fail("address", "\(text) -> \(subnet) does not parse back")
            }
        }
    }
}
