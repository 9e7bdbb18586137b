import Testing

@testable import Filter

/// The shared-template cache of `DateDetector` (one PCRE2 compile per datepattern) stays bounded: the date fuzz
/// target compiles a new datepattern on a quarter of its inputs, and a long run grew it past libFuzzer's 2 GiB
/// limit; reloads with edited patterns would grow it the same way. Detectors made before it starts over keep
/// working.
@Suite struct DateTemplateCacheTests {
    static let now = 1_124_013_600.0  // 2005-08-14 10:00:00 UTC

    func match(_ detector: DateDetector, _ line: String) -> DateMatch? {
        var s = line
        return s.withUTF8 { detector.match($0) }
    }

    @Test func cacheStaysBoundedAndOldDetectorsKeepWorking() throws {
        let first = try DateDetector(datePattern: "^x0 %Y-%m-%d %H:%M:%S", timeZone: "UTC", now: { Self.now })
        let limit = DateDetector.templateCacheLimit
        for i in 1...(limit + 40) {
            let detector = try DateDetector(
                datePattern: "^x\(i) %Y-%m-%d %H:%M:%S", timeZone: "UTC", now: { Self.now })
            #expect(DateDetector.templateCacheCount <= limit)
            if i % 50 == 0 {
                let m = try #require(match(detector, "x\(i) 2005-08-14 09:00:00 sshd[1]: Failed"))
                #expect(m.time == Self.now - 3_600)
            }
        }
        // Made before the cache started over: still has its compiled patterns.
        let m = try #require(match(first, "x0 2005-08-14 09:00:00 sshd[1]: Failed"))
        #expect(m.time == Self.now - 3_600)
        #expect(m.range == 0..<22)
    }
}
