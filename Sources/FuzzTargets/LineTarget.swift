import Configuration
import Core
import Filter

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// The line processor under every filter in the repository's `config/filter.d` and every stock filter in
/// `/etc/fail2ban/filter.d` (read at fuzz time, never copied), each also in its `aggressive` mode. The first two
/// bytes pick the filter; the rest is log lines. A failure's host must be text of the input or the canonical text of
/// its address (the log decides nothing else), a failure with an address must carry that address's text, and a line
/// over the length limit is skipped whole (`.tooLong`, no failure). Each line also goes through the same filter with
/// the prefilter off (`FilterOptions.prefilter`): both must give the same outcome and the same failures (a line the
/// prefilter rejects may be `.missed` where every regex ran into PCRE2's match limit without it: it cannot match).
///
/// The processors use `maxLineLength` 4 KiB instead of the daemon's 64 KiB: no line of a fuzz input can be longer
/// (`scripts/fuzz.sh` passes `-max_len=4096`), so every line gets the same verdict under either limit, and the
/// processor's buffers (three times the limit) then come from ASan's size-class allocator instead of a fresh
/// mmap/munmap per input, which was most of this target's time.
final class LineTarget {
    // SAFETY: libFuzzer calls the target from one thread; the processors are never shared between threads.
    nonisolated(unsafe) static let shared = LineTarget()

    /// Compiled filters; each input gets fresh processors, so multi-line state (the mlfid cache, buffered lines)
    /// never carries a host over from an earlier input and the "host is text of this input" check stays exact.
    let filters: [(name: String, filter: CompiledFilter, unfiltered: CompiledFilter)]
    /// The processors' line length limit (see the type's comment).
    static let maxLineLength = 4096

    init() {
        var made: [(String, CompiledFilter, CompiledFilter)] = []
        let options = FilterOptions(now: { 1_764_806_400 }, maxLineLength: Self.maxLineLength, dnsMode: .raw)
        var optionsOff = options
        optionsOff.prefilter = .off
        for root in [FuzzTargets.ownConfig, FuzzTargets.stockConfig] {
            let tree = ConfigTree(root: root)
            for name in confNames(in: root + "/filter.d") {
                for spec in [name, name + "[mode=aggressive]"] {
                    guard let definition = try? tree.loadFilter(spec), !definition.failregex.isEmpty,
                        let filter = try? CompiledFilter(definition, options: options),
                        let unfiltered = try? CompiledFilter(definition, options: optionsOff),
                        (try? filter.makeProcessor()) != nil
                    else { continue }
                    made.append(("\(root):\(spec)", filter, unfiltered))
                }
            }
        }
        if made.isEmpty { FuzzTargets.fail("line", "no filter loaded from config/ or /etc/fail2ban") }
        filters = made
    }

    func run(_ data: UnsafeRawBufferPointer) {
        guard data.count >= 2 else { return }
        let index = (Int(data[0]) << 8 | Int(data[1])) % filters.count
        let (name, filter, unfiltered) = filters[index]
        guard let processor = try? filter.makeProcessor(), let reference = try? unfiltered.makeProcessor() else {
            FuzzTargets.fail("line", "\(name): a processor could be made at start but not now")
        }
        let input = Array(data[2...])
        let text = String(validating: input, as: UTF8.self)
        for line in splitLines(UnsafeRawBufferPointer(rebasing: data[2...])) {
            let outcome = line.withUnsafeBufferPointer { processor.process($0) }
            let expected = line.withUnsafeBufferPointer { reference.process($0) }
            if outcome != expected, !(outcome == .missed && expected == .matchLimit) {
                FuzzTargets.fail("line", "\(name): \(outcome) with the prefilter, \(expected) without")
            }
            if processor.failures != reference.failures {
                FuzzTargets.fail("line", "\(name): the prefilter changed the failures of a line")
            }
            if (line.count > Self.maxLineLength) != (outcome == .tooLong) {
                FuzzTargets.fail("line", "\(name): a line of \(line.count) bytes gave \(outcome)")
            }
            if outcome == .tooLong, !processor.failures.isEmpty {
                FuzzTargets.fail("line", "\(name): a line over the limit produced failures")
            }
            for failure in processor.failures {
                // An address is reported in its canonical text (2001:db8::05 → 2001:db8::5), as fail2ban does.
                if let text, let host = failure.host, !text.contains(host), host != failure.address?.description {
                    FuzzTargets.fail("line", "\(name): host '\(host)' is not in the input")
                }
                if let address = failure.address, failure.subnet == nil {
                    guard let host = failure.host, IPAddress(host) == address else {
                        FuzzTargets.fail("line", "\(name): address \(address) is not the host '\(failure.host ?? "")'")
                    }
                }
            }
        }
    }
}

/// Names of the `*.conf` files in a directory, sorted (so filter numbers are stable across runs).
func confNames(in directory: String) -> [String] {
    guard let dir = opendir(directory) else { return [] }
    defer { closedir(dir) }
    var names: [String] = []
    while let entry = readdir(dir) {
        let name = withUnsafeBytes(of: entry.pointee.d_name) { raw in
            String(decoding: raw.prefix(while: { $0 != 0 }), as: UTF8.self)
        }
        if name.hasSuffix(".conf"), !name.hasPrefix(".") { names.append(String(name.dropLast(5))) }
    }
    return names.sorted()
}
