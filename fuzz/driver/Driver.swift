import FuzzTargets

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

// portcullis-fuzz: the fuzz targets of FuzzTargets behind one binary. The target is named by the environment
// variable PORTCULLIS_FUZZ_TARGET (ini, date, line, tags, pickle, json, address).
//
// Built by scripts/fuzz.sh with `-Xswiftc -sanitize=fuzzer,address -Xswiftc -DFUZZING` into its own build
// path (.build-fuzz): libFuzzer then drives LLVMFuzzerTestOneInput and takes libFuzzer's flags. In the normal
// build (no FUZZING) it replays files instead: `portcullis-fuzz TARGET FILE...` runs each file once.

/// The target chosen by PORTCULLIS_FUZZ_TARGET, read once.
let selectedTarget: String = {
    guard let value = getenv("PORTCULLIS_FUZZ_TARGET") else { return "" }
    return String(cString: value)
}()

#if FUZZING
@_cdecl("LLVMFuzzerTestOneInput")
public func portcullisFuzzOne(_ data: UnsafePointer<UInt8>?, _ size: Int) -> Int32 {
    if !FuzzTargets.run(selectedTarget, UnsafeRawBufferPointer(start: data, count: size)) {
        let message = "portcullis-fuzz: set PORTCULLIS_FUZZ_TARGET to one of \(FuzzTargets.names)\n"
        _ = message.withCString { write(2, $0, strlen($0)) }
        exit(2)
    }
    return 0
}

/// Called by libFuzzer once, before the first input (not timed): builds the target's shared state.
@_cdecl("LLVMFuzzerInitialize")
public func portcullisFuzzInitialize(
    _ argc: UnsafeMutablePointer<Int32>?,
    _ argv: UnsafeMutablePointer<UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?>?
) -> Int32 {
    FuzzTargets.prepare(selectedTarget)
    return 0
}

@_silgen_name("LLVMFuzzerRunDriver")
func LLVMFuzzerRunDriver(
    _ argc: UnsafeMutablePointer<Int32>,
    _ argv: UnsafeMutablePointer<UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>>,
    _ callback: @convention(c) (UnsafePointer<UInt8>?, Int) -> Int32
) -> Int32
#endif

@main
struct PortcullisFuzz {
    static func main() {
        #if FUZZING
        var argc = CommandLine.argc
        var argv = CommandLine.unsafeArgv
        exit(LLVMFuzzerRunDriver(&argc, &argv, portcullisFuzzOne))
        #else
        let args = Array(CommandLine.arguments.dropFirst())
        guard let target = args.first, FuzzTargets.names.contains(target) else {
            print("usage: portcullis-fuzz TARGET FILE...  (targets: \(FuzzTargets.names.joined(separator: " ")))")
            exit(2)
        }
        for path in args.dropFirst() {
            guard let file = fopen(path, "rb") else {
                print("portcullis-fuzz: cannot read \(path)")
                exit(1)
            }
            var bytes: [UInt8] = []
            var chunk = [UInt8](repeating: 0, count: 65536)
            while true {
                let n = fread(&chunk, 1, chunk.count, file)
                if n <= 0 { break }
                bytes += chunk[0..<n]
            }
            fclose(file)
            FuzzTargets.run(target, bytes)
        }
        print("portcullis-fuzz: \(target): \(args.count - 1) inputs ran")
        #endif
    }
}
