import ArgumentParser
import Configuration
import Control
import Daemon
import Logging
import ServiceLifecycle

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// fail2ban-client's global options, accepted before the command word: `portcullis -c DIR -s SOCK -f start`.
struct GlobalOptions: ParsableArguments {
    @Option(name: [.customShort("c"), .customLong("conf")], help: "Configuration directory (default /etc/portcullis, else /etc/fail2ban).")
    var conf: String?

    @Option(name: [.customShort("s"), .customLong("socket")], help: "Control socket path (default from the configuration).")
    var socket: String?

    @Option(name: [.customShort("p"), .customLong("pidfile")], help: "PID file (default from the configuration).")
    var pidfile: String?

    @Flag(name: [.customShort("f"), .customLong("foreground")], help: "Run the server in the foreground.")
    var foreground = false

    @Flag(name: [.customShort("b"), .customLong("background")], help: "Run the server in the background (default).")
    var background = false

    @Flag(name: [.customShort("x"), .customLong("force")], help: "Remove a stale socket before starting; with `set JAIL banip`: ban even an admin's session address.")
    var force = false

    @Flag(name: .customShort("v"), help: "More output (repeatable).")
    var verbose: Int

    @Flag(name: .customShort("q"), help: "Less output (repeatable).")
    var quiet: Int

    @Option(name: .customLong("timeout"), help: "Seconds to wait for the server.")
    var timeout: Int = 30

    @Flag(name: .customLong("json"), help: "Print the server's reply as JSON.")
    var json = false

    /// The configuration directory in use.
    var configDirectory: String {
        if let conf { return conf }
        return access("/etc/portcullis", F_OK) == 0 ? "/etc/portcullis" : "/etc/fail2ban"
    }

    /// The control socket: `-s`, else the configuration's `socket`.
    func socketPath() throws -> String {
        if let socket { return socket }
        do {
            return try ConfigTree(root: configDirectory).loadMain().socket
        } catch {
            throw CLIFailure("\(error)")
        }
    }
}

/// A one-line error for the terminal, exit status 255 like fail2ban-client.
struct CLIFailure: Error, CustomStringConvertible {
    var message: String
    init(_ message: String) { self.message = message }
    var description: String { message }
}

/// Sends `command` to the server and prints the reply like fail2ban-client (or as JSON with `--json`).
func sendAndPrint(_ command: [String], options: GlobalOptions) async throws {
    let client = ControlClient(socketPath: try options.socketPath(), timeoutSeconds: options.timeout)
    let response = await client.send(command)
    if options.json {
        print(String(decoding: JSONWire.replyLine(response), as: UTF8.self), terminator: "")
        if case .failure = response { throw ExitCode(255) }
        return
    }
    let (text, code) = StatusFormatter.render(response, for: command)
    if code == 0 {
        if options.quiet == 0 { print(text) }
    } else {
        printError("ERROR: \(text)\n")
        throw ExitCode(code)
    }
}

struct StartCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "start", abstract: "Start the server (in the background unless -f).")

    @OptionGroup var options: GlobalOptions

    @Flag(help: "Keep the nftables table when the server stops.")
    var keepTable = false

    @Flag(help: "Read log files from their beginning on the first start.")
    var readExisting = false

    @Flag(help: "Do not touch nftables: count, log and store bans only.")
    var noFirewall = false

    func run() async throws {
        if options.foreground {
            try await runForeground()
        } else {
            try await startBackground()
        }
    }

    func runForeground() async throws {
        let socket = try options.socketPath()
        if options.force { unlink(socket) }
        let settings = DaemonSettings(
            configDirectory: options.configDirectory, socketPath: socket, pidFile: options.pidfile,
            firewall: noFirewall ? .none : .nftables(), keepTableOnStop: keepTable, readExistingContent: readExisting)
        let daemon = PortcullisDaemon(settings: settings)
        // The daemon also ends on its own (`stop` on the socket): that is a normal end of the group.
        var configuration = ServiceGroupConfiguration(
            services: [.init(service: daemon, successTerminationBehavior: .gracefullyShutdownGroup)],
            logger: Logger(label: "portcullis", factory: { _ in SwiftLogNoOpLogHandler() }))
        configuration.gracefulShutdownSignals = [.sigterm, .sigint]
        let group = ServiceGroup(configuration: configuration)
        // Started in the background: the parent waits on this descriptor for the start-up error (closed unwritten
        // once the server is ready).
        let report = Self.takeStartReportDescriptor()
        let readyWatch = Task {
            await daemon.waitUntilReady()
            if let report { close(report) }
        }
        do {
            try await group.run()
        } catch let error as DaemonError {
            readyWatch.cancel()
            if let report { Self.writeAll(report, "ERROR: \(error)\n") }
            printError("ERROR: \(error)\n")
            throw ExitCode(255)
        }
    }

    /// Environment variable naming the descriptor on which a background start reports its start-up error.
    static let startReportVariable = "PORTCULLIS_START_REPORT_FD"

    /// The descriptor the background parent gave us (and removes the variable so nothing inherits it).
    static func takeStartReportDescriptor() -> Int32? {
        guard let text = getenv(startReportVariable).map({ String(cString: $0) }), let fd = Int32(text), fd > 2 else {
            return nil
        }
        unsetenv(startReportVariable)
        _ = fcntl(fd, F_SETFD, FD_CLOEXEC)
        return fd
    }

    /// A background server outlives the command that started it: it must inherit none of this process's
    /// descriptors (a caller reading our output to its end would otherwise wait for the server to exit). Marking
    /// them close-on-exec changes nothing for this process.
    static func markDescriptorsCloseOnExec() {
        guard let dir = opendir("/proc/self/fd") else { return }
        let own = dirfd(dir)
        var inherited: [Int32] = []
        while let entry = readdir(dir) {
            let name = withUnsafeBytes(of: entry.pointee.d_name) { String(decoding: $0.prefix(while: { $0 != 0 }), as: UTF8.self) }
            if let fd = Int32(name), fd > 2, fd != own { inherited.append(fd) }
        }
        closedir(dir)
        for fd in inherited { _ = fcntl(fd, F_SETFD, fcntl(fd, F_GETFD) | FD_CLOEXEC) }
    }

    static func writeAll(_ fd: Int32, _ text: String) {
        var bytes = Array(text.utf8)[...]
        while !bytes.isEmpty {
            let n = bytes.withUnsafeBytes { write(fd, $0.baseAddress, $0.count) }
            if n < 0 && errno == EINTR { continue }
            guard n > 0 else { return }
            bytes = bytes.dropFirst(n)
        }
    }

    /// Re-runs this program with `-f` in a new session, then waits until it answers `ping`.
    func startBackground() async throws {
        let socket = try options.socketPath()
        let client = ControlClient(socketPath: socket, timeoutSeconds: 2)
        if case .success = await client.send(["ping"]) {
            printError("ERROR: Server already running\n")
            throw ExitCode(255)
        }
        var args = CommandLine.arguments
        let exe = Self.executablePath()
        args[0] = exe
        if let i = args.firstIndex(where: { $0 == "-b" || $0 == "--background" }) { args.remove(at: i) }
        args.insert("-f", at: 1)
        var attributes = posix_spawnattr_t()
        posix_spawnattr_init(&attributes)
        defer { posix_spawnattr_destroy(&attributes) }
        // POSIX_SPAWN_SETSID (glibc, _GNU_SOURCE): the server gets its own session.
        posix_spawnattr_setflags(&attributes, Int16(0x80))
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0)
        posix_spawn_file_actions_addopen(&actions, 1, "/dev/null", O_WRONLY, 0)
        posix_spawn_file_actions_addopen(&actions, 2, "/dev/null", O_WRONLY, 0)
        // The child's start-up error comes back on a pipe (its descriptor 3), so this process can print it and
        // exit non-zero; the child closes it once it is ready, so a running server never writes to it.
        var pipeFDs: [Int32] = [-1, -1]
        guard pipe(&pipeFDs) == 0 else {
            throw CLIFailure("cannot start the server: \(String(cString: strerror(errno)))")
        }
        let (reportRead, reportWrite) = (pipeFDs[0], pipeFDs[1])
        for fd in pipeFDs { _ = fcntl(fd, F_SETFD, FD_CLOEXEC) }
        defer { close(reportRead) }
        posix_spawn_file_actions_adddup2(&actions, reportWrite, 3)
        let argv = args.map { strdup($0) } + [nil]
        defer { for p in argv { free(p) } }
        var environment = ProcessEnvironment.current.filter { !$0.hasPrefix(Self.startReportVariable + "=") }
        environment.append("\(Self.startReportVariable)=3")
        let envp = environment.map { strdup($0) } + [nil]
        defer { for p in envp { free(p) } }
        Self.markDescriptorsCloseOnExec()
        var pid: pid_t = 0
        let rc = posix_spawn(&pid, exe, &actions, &attributes, argv, envp)
        close(reportWrite)
        guard rc == 0 else { throw CLIFailure("cannot start the server: \(String(cString: strerror(rc)))") }
        _ = fcntl(reportRead, F_SETFL, fcntl(reportRead, F_GETFL) | O_NONBLOCK)
        var report: [UInt8] = []
        func drainReport() {
            var buffer = [UInt8](repeating: 0, count: 4096)
            while true {
                let n = buffer.withUnsafeMutableBytes { read(reportRead, $0.baseAddress, $0.count) }
                if n < 0 && errno == EINTR { continue }
                guard n > 0 else { return }
                report += buffer[0..<n]
            }
        }
        let deadline = Double(options.timeout)
        var waited = 0.0
        while waited < deadline {
            if case .success = await ControlClient(socketPath: socket, timeoutSeconds: 2).send(["ping"]) { return }
            var status: Int32 = 0
            drainReport()
            if waitpid(pid, &status, WNOHANG) == pid {
                drainReport()
                if !report.isEmpty {
                    printError(String(decoding: report, as: UTF8.self))
                    throw ExitCode(255)
                }
                throw CLIFailure("the server exited during start-up; run 'portcullis -f start' to see why")
            }
            try await Task.sleep(for: .milliseconds(20))
            waited += 0.02
        }
        throw CLIFailure("the server did not answer within \(options.timeout) s")
    }

    static func executablePath() -> String {
        var buffer = [CChar](repeating: 0, count: 4096)
        let n = readlink("/proc/self/exe", &buffer, buffer.count - 1)
        return n > 0 ? String(decoding: buffer[0..<n].map { UInt8(bitPattern: $0) }, as: UTF8.self) : CommandLine.arguments[0]
    }
}

/// Commands that are sent to the server as they are written (`status sshd`, `set sshd banip 192.0.2.1`, …).
protocol PassthroughCommand: AsyncParsableCommand {
    static var verb: String { get }
    var options: GlobalOptions { get }
    var words: [String] { get }
}

extension PassthroughCommand {
    func run() async throws { try await sendAndPrint([Self.verb] + words, options: options) }
}

struct PingCommand: PassthroughCommand {
    static let configuration = CommandConfiguration(commandName: "ping", abstract: "Check that the server answers.")
    static let verb = "ping"
    @OptionGroup var options: GlobalOptions
    var words: [String] { [] }
}

struct StopCommand: PassthroughCommand {
    static let configuration = CommandConfiguration(commandName: "stop", abstract: "Stop the server (bans stay in the store).")
    static let verb = "stop"
    @OptionGroup var options: GlobalOptions
    var words: [String] { [] }
}

struct StatusCommand: PassthroughCommand {
    static let configuration = CommandConfiguration(
        commandName: "status", abstract: "Show the jails, or one jail's counters and banned addresses.")
    static let verb = "status"
    @OptionGroup var options: GlobalOptions
    @Argument(help: "A jail name.") var words: [String] = []
}

struct ReloadCommand: PassthroughCommand {
    static let configuration = CommandConfiguration(
        commandName: "reload", abstract: "Reread the configuration (all jails, or one); bans are kept.")
    static let verb = "reload"
    @OptionGroup var options: GlobalOptions
    @Argument(help: "A jail name.") var words: [String] = []
}

struct SetCommand: PassthroughCommand {
    static let configuration = CommandConfiguration(
        commandName: "set", abstract: "set JAIL banip ADDR… | set JAIL unbanip ADDR…")
    static let verb = "set"
    @OptionGroup var options: GlobalOptions
    @Argument(help: "JAIL banip|unbanip ADDR… (unbanip also takes a banned prefix such as 2001:db8:1:2::/64)")
    var arguments: [String]

    var words: [String] {
        // `--force` (the global flag) with banip: ban even the address of an admin's session.
        guard options.force, arguments.count >= 2 else { return arguments }
        return Array(arguments.prefix(2)) + ["--force"] + arguments.dropFirst(2)
    }
}

struct GetCommand: PassthroughCommand {
    static let configuration = CommandConfiguration(
        commandName: "get", abstract: "get JAIL maxretry|findtime|bantime|ignoreip|logpath|…")
    static let verb = "get"
    @OptionGroup var options: GlobalOptions
    @Argument(help: "JAIL OPTION") var words: [String]
}

struct BannedCommand: PassthroughCommand {
    static let configuration = CommandConfiguration(
        commandName: "banned", abstract: "List banned addresses per jail, or the jails banning ADDR.")
    static let verb = "banned"
    @OptionGroup var options: GlobalOptions
    @Argument(help: "Addresses.") var words: [String] = []
}

struct UnbanCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "unban", abstract: "unban --all | unban ADDR…: lift bans in every jail.")
    @OptionGroup var options: GlobalOptions
    @Flag(help: "Lift every ban.") var all = false
    @Argument(help: "Addresses.") var addresses: [String] = []

    func validate() throws {
        if !all && addresses.isEmpty { throw ValidationError("give addresses or --all") }
    }

    func run() async throws { try await sendAndPrint(["unban"] + (all ? ["--all"] : addresses), options: options) }
}

/// Writes `text` to standard error.
func printError(_ text: String) {
    var bytes = Array(text.utf8)
    bytes.withUnsafeMutableBytes { raw in
        var offset = 0
        while offset < raw.count {
            let n = write(2, raw.baseAddress! + offset, raw.count - offset)
            if n <= 0 { break }
            offset += n
        }
    }
}

/// This process's environment as `NAME=value` strings.
enum ProcessEnvironment {
    /// The environment by name (the first of duplicate names wins, as `getenv` does).
    static var dictionary: [String: String] {
        var out: [String: String] = [:]
        for entry in current {
            guard let eq = entry.firstIndex(of: "=") else { continue }
            let name = String(entry[..<eq])
            if out[name] == nil { out[name] = String(entry[entry.index(after: eq)...]) }
        }
        return out
    }

    static var current: [String] {
        var out: [String] = []
        var p = environ
        while let entry = p.pointee {
            out.append(String(cString: entry))
            p += 1
        }
        return out
    }
}
