// A child process for StoreTests: records bans in a store, reports each one on stdout after `addBan` returns,
// then waits to be killed. Usage: portcullis-store-probe DBPATH JAIL ADDRESS [ADDRESS…]
import Core
import Store

#if canImport(Glibc)
import Glibc
#endif

let arguments = CommandLine.arguments
guard arguments.count >= 4 else {
    print("usage: portcullis-store-probe DBPATH JAIL ADDRESS [ADDRESS…]")
    exit(2)
}
do {
    let store = try BanStore(path: arguments[1])
    for text in arguments[3...] {
        guard let address = IPAddress(text) else {
            print("error: not an address: \(text)")
            exit(2)
        }
        try store.addBan(
            BanRecord(jail: arguments[2], address: address, timeOfBan: 1_000, banTime: -1, banCount: 1, failures: 3))
        print("banned \(address)")
        fflush(nil)
    }
    print("ready")
    fflush(nil)
    while true { pause() }
} catch {
    print("error: \(error)")
    exit(1)
}
