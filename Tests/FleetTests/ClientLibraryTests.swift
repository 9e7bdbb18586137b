import Testing

@testable import Fleet

/// libpq is loaded with dlopen on first use (the daemon links none of it): on a machine with libpq5, as the test
/// command installs it, it loads, and a connection attempt goes through it to the server and back.
@Suite struct ClientLibraryTests {
    @Test("libpq.so.5 loads, and a connection to a missing server fails with libpq's own message")
    func loads() {
        #expect(FleetService.clientLibraryProblem == nil)
        do {
            _ = try PGConnection(conninfo: "postgresql:///portcullis?host=/nonexistent-pcl-dir", password: nil)
            Issue.record("a connection to a socket directory that does not exist succeeded")
        } catch {
            #expect(error.detail.contains("/nonexistent-pcl-dir"), "\(error.detail)")
        }
    }
}
