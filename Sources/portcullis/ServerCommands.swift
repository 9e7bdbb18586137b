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
    @Option(
        name: [.customShort("c"), .customLong("conf")],
        help: "Configuration directory (default /etc/portcullis, else /etc/fail2ban).")
    var conf: String?

    @Option(
        name: [.customShort("s"), .customLong("socket")], help: "Control socket path (default from the configuration).")
    var socket: String?

    @Option(name: [.customShort("p"), .customLong("pidfile")], help: "PID file (default from the configuration).")
    var pidfile: String?

    @Flag(name: [.customShort("f"), .customLong("foreground")], help: "Run the server in the foreground.")
    var foreground = false

    @Flag(name: [.customShort("b"), .customLong("background")], help: "Run the server in the background (default).")
    var background = false

    @Flag(
        name: [.customShort("x"), .customLong("force")],
        help: "Remove a stale socket before starting; with `set JAIL banip`: ban even an admin's session address.")
    var force = false

    @Flag(name: .customShort("v"), help: "More output (repeatable).")
    var verbose: Int

    @Flag(name: .customShort("q"), help: "Less output (repeatable).")
    var quiet: Int

    @Option(name: .customLong("timeout"), help: "Seconds to wait for the server.")
    var timeout: Int = 30

    @Flag(name: .customLong("json"), help: "Print the server's reply as JSON.")
    var json = false

    /// These options as command-line words (to run another subcommand with them).
    var asArguments: [String] {
        var out: [String] = []
        if let conf { out += ["-c", conf] }
        if let socket { out += ["-s", socket] }
        if let pidfile { out += ["-p", pidfile] }
        if foreground { out.append("-f") }
        if force { out.append("-x") }
        if json { out.append("--json") }
        out += ["--timeout", String(timeout)]
        return out
    }

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
        commandName: "start", abstract: "Start the server (in the background unless -f), or start JAIL.")

    @OptionGroup var options: GlobalOptions

    @Argument(help: "A jail to start (`start JAIL`); without it the server starts.")
    var jail: String?

    @Flag(help: "Keep the nftables table when the server stops.")
    var keepTable = false

    @Flag(help: "Read log files from their beginning on the first start.")
    var readExisting = false

    @Flag(help: "Do not touch nftables: count, log and store bans only.")
    var noFirewall = false

    func run() async throws {
        if let jail {
            try await sendAndPrint(["start", jail], options: options)
            return
        }
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
            let name = withUnsafeBytes(of: entry.pointee.d_name) {
                String(decoding: $0.prefix(while: { $0 != 0 }), as: UTF8.self)
            }
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
        return n > 0
            ? String(decoding: buffer[0..<n].map { UInt8(bitPattern: $0) }, as: UTF8.self) : CommandLine.arguments[0]
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
    static let configuration = CommandConfiguration(
        commandName: "stop", abstract: "Stop the server (bans stay in the store), or stop JAIL (--all: every jail).")
    static let verb = "stop"
    @OptionGroup var options: GlobalOptions
    @Argument(parsing: .allUnrecognized, help: "A jail name, or --all.") var words: [String] = []
}

/// `reload` and `restart` options as fail2ban-client takes them.
enum ReloadWords {
    static let options: Set<String> = ["--restart", "--unban", "--if-exists", "--all"]

    /// `[OPTION…] [JAIL]` → `JAIL|--all OPTION…` (the order fail2ban-client sends).
    static func request(_ words: [String], restart: Bool) throws -> [String] {
        var opts = words.filter { options.contains($0) && $0 != "--all" }
        if restart && !opts.contains("--restart") { opts.insert("--restart", at: 0) }
        let names = words.filter { !options.contains($0) }
        guard names.count <= 1 else { throw CLIFailure("Unexpected argument(s) for reload: \(names)") }
        return [names.first ?? "--all"] + opts
    }
}

struct RestartCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "restart",
        abstract: "Restart the server; with a jail (or options) restart jails: reload --restart [--unban] [JAIL].")
    @OptionGroup var options: GlobalOptions
    @Argument(parsing: .allUnrecognized, help: "[--unban] [--if-exists] [JAIL]") var words: [String] = []

    func run() async throws {
        if !words.isEmpty {
            try await sendAndPrint(["reload"] + ReloadWords.request(words, restart: true), options: options)
            return
        }
        // The whole server: stop it, wait until it is gone, start it again (as fail2ban-client does).
        let socket = try options.socketPath()
        let client = ControlClient(socketPath: socket, timeoutSeconds: options.timeout)
        if case .failure(let e) = await client.send(["stop"]), e.code != .connection {
            throw CLIFailure("\(e)")
        }
        var waited = 0.0
        while case .success = await ControlClient(socketPath: socket, timeoutSeconds: 2).send(["ping"]) {
            guard waited < Double(options.timeout) else { throw CLIFailure("Could not stop server") }
            try await Task.sleep(for: .milliseconds(50))
            waited += 0.05
        }
        let start = try StartCommand.parse(options.asArguments)
        try await start.run()
    }
}

struct AddCommand: PassthroughCommand {
    static let configuration = CommandConfiguration(
        commandName: "add", abstract: "Create JAIL with BACKEND (configure it with set, then start it).")
    static let verb = "add"
    @OptionGroup var options: GlobalOptions
    @Argument(parsing: .allUnrecognized, help: "JAIL [BACKEND]") var words: [String] = []
}

struct FlushLogsCommand: PassthroughCommand {
    static let configuration = CommandConfiguration(
        commandName: "flushlogs", abstract: "Reopen the log file (logrotate's postrotate) or flush the stream.")
    static let verb = "flushlogs"
    @OptionGroup var options: GlobalOptions
    var words: [String] { [] }
}

struct EchoCommand: PassthroughCommand {
    static let configuration = CommandConfiguration(commandName: "echo", abstract: "The server sends the words back.")
    static let verb = "echo"
    @OptionGroup var options: GlobalOptions
    @Argument(parsing: .allUnrecognized, help: "Words.") var words: [String] = []
}

struct VersionCommand: PassthroughCommand {
    static let configuration = CommandConfiguration(
        commandName: "version", abstract: "The server's version (the fail2ban version whose grammar it serves).")
    static let verb = "version"
    @OptionGroup var options: GlobalOptions
    var words: [String] { [] }
}

/// Any other command word goes to the server as it is, which answers as fail2ban-server does (`Invalid command`
/// for one it does not know).
struct RawCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "raw", abstract: "Send the words to the server as they are.", shouldDisplay: false)
    @OptionGroup var options: GlobalOptions
    @Argument(parsing: .allUnrecognized, help: "Command words.") var words: [String] = []

    func run() async throws { try await sendAndPrint(words, options: options) }
}

struct StatusCommand: PassthroughCommand {
    static let configuration = CommandConfiguration(
        commandName: "status", abstract: "Show the jails, or one jail's counters and banned addresses.")
    static let verb = "status"
    @OptionGroup var options: GlobalOptions
    @Argument(parsing: .allUnrecognized, help: "[JAIL [short|basic]]") var words: [String] = []
}

struct ReloadCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "reload",
        abstract:
            "Reread the configuration (all jails, or one); bans are kept unless --unban; --restart starts jails afresh."
    )
    @OptionGroup var options: GlobalOptions
    @Argument(parsing: .allUnrecognized, help: "[--restart] [--unban] [--all] [--if-exists] [JAIL]") var words:
        [String] = []

    func run() async throws {
        try await sendAndPrint(["reload"] + ReloadWords.request(words, restart: false), options: options)
    }
}

struct SetCommand: PassthroughCommand {
    static let configuration = CommandConfiguration(
        commandName: "set",
        abstract: "set loglevel|logtarget|syslogsocket|dbmaxmatches|dbpurgeage VALUE | set JAIL PROPERTY VALUE…",
        discussion: """
            Jail properties as fail2ban-client takes them: banip, unbanip [--report-absent], bantime, findtime, \
            maxretry, maxmatches, maxlines, usedns, ignoreself, addignoreip, delignoreip, ignorecommand, \
            addlogpath FILE [head|tail], dellogpath, addjournalmatch, deljournalmatch, addfailregex, delfailregex, \
            addignoreregex, delignoreregex, prefregex, datepattern, logencoding, idle on|off, attempt, bantime.*, \
            addaction, delaction, action ACT PROPERTY VALUE.
            """)
    static let verb = "set"
    @OptionGroup var options: GlobalOptions
    @Argument(parsing: .allUnrecognized, help: "NAME VALUE or JAIL PROPERTY VALUE…") var arguments: [String] = []

    var words: [String] {
        // `--force` (the global flag) with banip: ban even the address of an admin's session.
        guard options.force, arguments.count >= 2, arguments[1] == "banip", !arguments.contains("--force") else {
            return arguments
        }
        return Array(arguments.prefix(2)) + ["--force"] + arguments.dropFirst(2)
    }
}

struct GetCommand: PassthroughCommand {
    static let configuration = CommandConfiguration(
        commandName: "get",
        abstract: "get loglevel|logtarget|syslogsocket|dbfile|dbmaxmatches|dbpurgeage | get JAIL PROPERTY…",
        discussion: """
            Jail properties as fail2ban-client takes them: banned [ADDR…], banip [SEP|--with-time], bantime, \
            findtime, maxretry, maxmatches, maxlines, usedns, ignoreself, ignoreip, ignorecommand, logpath, \
            journalmatch, failregex, ignoreregex, prefregex, datepattern, logencoding, bantime.*, actions, \
            action ACT PROPERTY, actionproperties ACT, actionmethods ACT.
            """)
    static let verb = "get"
    @OptionGroup var options: GlobalOptions
    @Argument(parsing: .allUnrecognized, help: "NAME or JAIL PROPERTY…") var words: [String] = []
}

struct BannedCommand: PassthroughCommand {
    static let configuration = CommandConfiguration(
        commandName: "banned", abstract: "List banned addresses per jail, or the jails banning ADDR.")
    static let verb = "banned"
    @OptionGroup var options: GlobalOptions
    @Argument(parsing: .allUnrecognized, help: "Addresses.") var words: [String] = []
}

struct UnbanCommand: PassthroughCommand {
    static let configuration = CommandConfiguration(
        commandName: "unban",
        abstract: "unban --all | unban ADDR…: lift bans in every jail (a network lifts those it covers).")
    static let verb = "unban"
    @OptionGroup var options: GlobalOptions
    @Argument(parsing: .allUnrecognized, help: "--all, or addresses and networks.") var words: [String] = []
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
