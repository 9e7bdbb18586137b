import Filter

/// The date detector. The first byte picks the set-up: fail2ban's default templates in one of a few log time
/// zones (a detector kept across inputs, as a jail keeps one), or (low two bits 3) the first line is a
/// `datepattern` compiled for this input. Every further line is matched; a match must lie inside the line,
/// name a template that exists and carry a finite time.
enum DateTarget {
    static let zones: [String?] = [nil, "UTC", "+0200", "CET", "UTC-1130", "-00:30"]
    nonisolated(unsafe) static var detectors: [DateDetector?] = zones.map {
        // Fixed clock: year inference must not depend on when the fuzzer runs.
        try? DateDetector(datePattern: nil, timeZone: $0, now: { 1_764_806_400 })
    }
    // SAFETY (detectors): libFuzzer calls the target from one thread.

    static func run(_ data: UnsafeRawBufferPointer) {
        guard let mode = data.first else { return }
        var lines = splitLines(UnsafeRawBufferPointer(rebasing: data[1...]))
        let detector: DateDetector
        if mode & 3 == 3 {
            guard !lines.isEmpty else { return }
            let pattern = String(decoding: lines.removeFirst(), as: UTF8.self)
            let zone = zones[Int(mode >> 2) % zones.count]
            guard let made = try? DateDetector(datePattern: pattern, timeZone: zone, now: { 1_764_806_400 }) else {
                return
            }
            detector = made
        } else {
            guard let shared = detectors[Int(mode >> 2) % zones.count] else {
                FuzzTargets.fail("date", "default detector does not build")
            }
            detector = shared
        }
        for line in lines {
            line.withUnsafeBufferPointer { buffer in
                guard let found = detector.match(buffer) else { return }
                guard found.range.lowerBound >= 0, found.range.upperBound <= buffer.count else {
                    FuzzTargets.fail("date", "match \(found.range) outside a line of \(buffer.count) bytes")
                }
                guard found.templateIndex >= 0, found.templateIndex < detector.templateNames.count else {
                    FuzzTargets.fail("date", "template index \(found.templateIndex) out of range")
                }
                guard found.time.isFinite else { FuzzTargets.fail("date", "time \(found.time) is not finite") }
            }
        }
    }
}

/// Splits at `\n` (the newline is not part of a line); at most 64 lines.
func splitLines(_ data: UnsafeRawBufferPointer) -> [[UInt8]] {
    var lines: [[UInt8]] = []
    var current: [UInt8] = []
    for byte in data {
        if byte == 0x0A {
            lines.append(current)
            current = []
            if lines.count == 63 { break }
        } else {
            current.append(byte)
        }
    }
    lines.append(current)
    return lines
}
