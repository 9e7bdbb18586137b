import ArgumentParser
import Filter
import LogSource

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// `portcullis regex LOG FILTER [IGNOREREGEX]`: the counterpart of fail2ban-regex.
///
/// ```
/// portcullis regex /var/log/auth.log sshd
/// portcullis regex --out id /var/log/auth.log 'sshd[mode=aggressive]'
/// portcullis regex 'Jan 1 10:00:00 h sshd[1]: Failed password for root from 192.0.2.1' 'Failed \S+ for \S+ from <HOST>'
/// ```
struct RegexCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "regex",
        abstract: "Test a filter or a failregex against a log file or a log line (like fail2ban-regex).",
        discussion: """
            FILTER is a filter name in the config tree (sshd, 'sshd[mode=aggressive]'), a path to a filter \
            file, or a failregex (with <HOST>, <ADDR>, <F-ID>…). LOG is a file, '-' for standard input, or \
            one log line.
            """
    )

    @Argument(help: "A log file, '-' for standard input, or a single log line.")
    var log: String

    @Argument(help: "A filter name (sshd, 'sshd[mode=aggressive]'), a filter file, or a failregex.")
    var filter: String

    @Argument(help: "An ignoreregex, or a filter file whose ignoreregex is used.")
    var ignoreRegex: String?

    @Option(
        name: [.customShort("c"), .customLong("conf"), .customLong("config")],
        help: "Config directory (default /etc/portcullis, falling back to /etc/fail2ban).")
    var conf: String?

    @Option(
        name: [.short, .customLong("out")],
        help: "Print only this field per failure: id, ip, host, msg, row, matches, or a capture such as user.")
    var out: String?

    @Option(name: [.customShort("d"), .customLong("datepattern")], help: "Date pattern overriding the filter's.")
    var datePattern: String?

    @Option(name: [.customShort("L"), .customLong("maxlines")], help: "maxlines for multi-line regexes.")
    var maxLines: Int?

    @Flag(name: .long, help: "Print the results as JSON.")
    var json = false

    @Flag(name: .long, help: "Print all matched lines.")
    var printAllMatched = false

    @Flag(name: .long, help: "Print all missed lines, no matter how many.")
    var printAllMissed = false

    @Flag(name: .long, help: "Print all ignored lines, no matter how many.")
    var printAllIgnored = false

    @Flag(name: .long, help: "Do not print any missed lines.")
    var printNoMissed = false

    @Flag(name: .long, help: "Do not print any ignored lines.")
    var printNoIgnored = false

    @Flag(name: [.short, .long], help: "Raw hosts: keep host names as captured instead of resolving them.")
    var raw = false

    func validate() throws {
        if printAllMissed && printNoMissed {
            throw ValidationError("--print-no-missed and --print-all-missed are mutually exclusive")
        }
        if printAllIgnored && printNoIgnored {
            throw ValidationError("--print-no-ignored and --print-all-ignored are mutually exclusive")
        }
        if json && out != nil { throw ValidationError("--json and --out are mutually exclusive") }
        if let maxLines, maxLines < 1 { throw ValidationError("--maxlines must be at least 1") }
    }

    func run() throws {
        do {
            try execute()
        } catch {
            Output.standard.flush()
            Output.error("portcullis regex: error: \(error.message)")
            throw ExitCode(error.code.rawValue)
        }
    }

    private func execute() throws(CLIError) {
        let confDir = conf ?? FilterSource.defaultConfigDirectory()
        if let conf, !isDirectory(conf) {
            throw CLIError(.usage, "config directory '\(conf)' does not exist (--conf)")
        }
        var source = try FilterSource.failregex(filter, conf: confDir)
        if let ignoreRegex {
            let (values, use) = try FilterSource.ignoreregex(ignoreRegex, conf: confDir)
            source.definition.ignoreregex += values
            source.useLines.append(use)
        }
        var options = FilterOptions(
            datePattern: datePattern, maxLines: maxLines, maxLineLength: LineReader.defaultMaxLineLength,
            dnsMode: raw ? .raw : .yes, resolver: raw ? nil : HostResolver.resolve, checkAllRegex: out == nil)
        // The report prints how many lines the prefregex matched, as fail2ban-regex does.
        options.prefilter = .keepPrefregexCount
        let compiled: CompiledFilter
        do {
            compiled = try CompiledFilter(source.definition, options: options)
        } catch {
            throw CLIError(.usage, "bad filter '\(filter)': \(error)")
        }
        let processor: LineProcessor
        do {
            processor = try compiled.makeProcessor()
        } catch {
            throw CLIError(.usage, "bad filter '\(filter)': \(error)")
        }

        var session = RegexSession(
            filter: compiled, processor: processor, out: out.map(OutField.init), json: json,
            keepMatched: printAllMatched, keepIgnored: !printNoIgnored, keepMissed: !printNoMissed,
            keepAllIgnored: printAllIgnored, keepAllMissed: printAllMissed)
        var report = RegexReport()
        report.useLines = source.useLines

        let logIsFile = log == "-" || isRegularFile(log)
        if !logIsFile && log.contains("/") && !log.contains(" ") {
            throw CLIError(
                .io,
                "log file '\(log)' does not exist or is not a regular file (give a file, '-' for stdin, or a log line)")
        }
        let talk = out == nil && !json
        if talk {
            Output.standard.line("")
            Output.standard.line("Running tests")
            Output.standard.line("=============")
            Output.standard.line("")
            for l in source.useLines { Output.standard.line(l) }
            if let m = maxLines ?? source.definition.maxlines {
                Output.standard.line("Use         maxlines : \(m)")
            }
            if let d = datePattern ?? source.definition.datepattern?.value {
                Output.standard.line("Use      datepattern : " + RegexCommand.describeDatePattern(d, processor))
            }
        }

        let started = Clock.now()
        if logIsFile {
            let fd: Int32 = log == "-" ? 0 : open(log, O_RDONLY | O_CLOEXEC)
            guard fd >= 0 else {
                throw CLIError(.io, "cannot open log '\(log)': \(String(cString: strerror(errno)))")
            }
            defer { if fd != 0 { close(fd) } }
            if talk {
                Output.standard.line("Use         log file : \(log == "-" ? "<stdin>" : log)")
                Output.standard.line("Use         encoding : UTF-8")
                Output.standard.line("")
            }
            var st = stat()
            let size = fstat(fd, &st) == 0 && (st.st_mode & S_IFMT) == S_IFREG ? Int(st.st_size) : 0
            // The daemon's own line reader: the same lines, the same limit, the same skipped over-long lines.
            let reader = LineReader()
            var progress = Progress(total: size, started: started)
            var count = 0
            let unterminated: Bool
            do {
                unterminated = try reader.forEachLine(fd: fd) { line in
                    session.feed(line)
                    count &+= 1
                    if count & 0xFFFF == 0 { progress.tick(lines: count, bytes: Int(reader.bytesRead)) }
                    return true
                }.unterminated
            } catch {
                throw CLIError(.io, "cannot read log '\(log)': \(error)")
            }
            progress.finish()
            report.tooLongLines = reader.skippedLines
            report.maxLineLength = reader.maxLineLength
            if unterminated {
                Output.error(
                    "portcullis regex: note: the last line of \(log == "-" ? "<stdin>" : log) has no newline; "
                        + "it is not tested (like fail2ban-regex, which waits for the line's end)")
            }
        } else {
            let lines = log.split(separator: "\n", omittingEmptySubsequences: false)
            if talk {
                if compiled.maxLines <= 1 && lines.count == 1 {
                    Output.standard.line("Use      single line : \(FilterSource.shortString(log))")
                } else {
                    Output.standard.line("Use      multi line : \(lines.count) line(s)")
                    for (i, l) in lines.enumerated() {
                        if i >= 5 {
                            Output.standard.line("| ...")
                            break
                        }
                        let n = String(i + 1)
                        Output.standard.line("| \(n.count < 2 ? " " + n : n): \(FilterSource.shortString(String(l)))")
                    }
                    Output.standard.line("`-")
                }
                Output.standard.line("")
            }
            for l in lines {
                var s = String(l)
                while s.hasSuffix("\r") { s.removeLast() }
                s.withUTF8 { session.feed($0) }
            }
        }
        session.fill(&report)
        report.prefregex = compiled.prefregexExpanded
        report.seconds = Clock.now() - started
        if json {
            Output.standard.line(report.json(filter: filter, log: log))
        } else if talk {
            Output.standard.line(
                report.text(
                    printAllMatched: printAllMatched, printAllIgnored: printAllIgnored, printAllMissed: printAllMissed,
                    printNoIgnored: printNoIgnored, printNoMissed: printNoMissed))
        }
        Output.standard.flush()
    }
}

extension RegexCommand {
    /// fail2ban-regex's description of a date pattern: the pattern as configured, then the name of its only (or
    /// first of two) template, or `Default Detectors` when it stands for more templates than that.
    static func describeDatePattern(_ pattern: String, _ processor: LineProcessor) -> String {
        let names = processor.stats.dateTemplateNames
        let name = names.isEmpty || names.count > 2 ? "Default Detectors" : names[0]
        return "\(pattern) : \(name)"
    }
}

/// Wall clock in seconds.
enum Clock {
    /// Seconds since the epoch.
    static func now() -> Double {
        var ts = timespec()
        clock_gettime(CLOCK_MONOTONIC, &ts)
        return Double(ts.tv_sec) + Double(ts.tv_nsec) / 1e9
    }
}

/// A progress line on stderr while a big log takes more than a second.
struct Progress {
    let total: Int
    let started: Double
    private var last = 0.0
    private var shown = false
    private let tty = isatty(2) != 0

    init(total: Int, started: Double) {
        self.total = total
        self.started = started
    }

    mutating func tick(lines: Int, bytes: Int) {
        let now = Clock.now()
        guard now - started > 1, now - last >= 1 else { return }
        last = now
        shown = true
        var text = "portcullis regex: \(lines) lines"
        if total > 0 { text += ", \(min(100, bytes * 100 / total))%" }
        text += ", \(Int(Double(lines) / (now - started))) lines/s"
        Output.error(tty ? "\r\(text)\u{1B}[K" : text, newline: !tty)
    }

    func finish() {
        if shown && tty { Output.error("\r\u{1B}[K", newline: false) }
    }
}

/// Buffered standard output (one `write(2)` per 64 KiB instead of one per line).
final class Output {
    /// Standard output.
    nonisolated(unsafe) static let standard = Output(fd: 1)  // SAFETY: the CLI is single-threaded.

    private let fd: Int32
    private var buffer: [UInt8] = []

    init(fd: Int32) {
        self.fd = fd
        buffer.reserveCapacity(1 << 16)
    }

    /// Appends `text` and a newline.
    func line(_ text: String) {
        buffer.append(contentsOf: text.utf8)
        buffer.append(0x0A)
        if buffer.count >= 1 << 16 { flush() }
    }

    /// Appends raw bytes and a newline.
    func line(bytes: UnsafeBufferPointer<UInt8>) {
        buffer.append(contentsOf: bytes)
        buffer.append(0x0A)
        if buffer.count >= 1 << 16 { flush() }
    }

    /// Writes `text` (and a newline) to standard error at once, unbuffered.
    static func error(_ text: String, newline: Bool = true) {
        var bytes = Array(text.utf8)
        if newline { bytes.append(0x0A) }
        var offset = 0
        while offset < bytes.count {
            let n = bytes.withUnsafeBytes { write(2, $0.baseAddress! + offset, $0.count - offset) }
            if n < 0 && errno == EINTR { continue }
            if n <= 0 { return }
            offset += n
        }
    }

    /// Writes everything buffered.
    func flush() {
        var offset = 0
        while offset < buffer.count {
            let n = buffer.withUnsafeBytes { write(fd, $0.baseAddress! + offset, $0.count - offset) }
            if n < 0 {
                if errno == EINTR { continue }
                break  // stdout closed (e.g. piped into head): drop the rest quietly
            }
            offset += n
        }
        buffer.removeAll(keepingCapacity: true)
    }
}
