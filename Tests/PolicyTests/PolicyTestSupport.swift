import Configuration
import Firewall
import Policy

#if canImport(Glibc)
import Glibc
#endif

/// A temporary configuration directory with the given files (relative path → text), removed by `remove()`.
struct PolicyTree {
    let root: String

    init(_ files: [String: String]) {
        var template = Array("/tmp/pcl-policy-test-XXXXXX".utf8CString)
        root = template.withUnsafeMutableBufferPointer { String(cString: mkdtemp($0.baseAddress!)!) }
        for (path, text) in files {
            let full = "\(root)/\(path)"
            if let slash = full.lastIndex(of: "/") { mkdir(String(full[..<slash]), 0o700) }
            let fd = open(full, O_WRONLY | O_CREAT | O_TRUNC, 0o600)
            _ = text.utf8CString.withUnsafeBytes { write(fd, $0.baseAddress, $0.count - 1) }
            close(fd)
        }
    }

    func remove() {
        for sub in ["firewall.d", ""] {
            let dir = sub.isEmpty ? root : "\(root)/\(sub)"
            if let d = opendir(dir) {
                while let e = readdir(d) {
                    let name = withUnsafePointer(to: e.pointee.d_name) {
                        $0.withMemoryRebound(to: CChar.self, capacity: 256) { String(cString: $0) }
                    }
                    if name != "." && name != ".." { unlink("\(dir)/\(name)") }
                }
                closedir(d)
            }
            rmdir(dir)
        }
    }

    /// Loads the policy with a small fixed services table.
    func load() throws(ConfigError) -> HostPolicy {
        try PolicyLoader.load(tree: ConfigTree(root: root), services: testServices)
    }
}

/// A services table written for these tests (names and numbers as IANA assigns them).
let testServices = PortResolver(
    servicesText: """
        ssh 22/tcp
        smtp 25/tcp mail
        domain 53/tcp
        domain 53/udp
        http 80/tcp www
        pop3 110/tcp
        imap2 143/tcp imap
        https 443/tcp
        submissions 465/tcp ssmtp smtps
        submission 587/tcp
        imaps 993/tcp
        pop3s 995/tcp
        munin 4949/tcp lrrd
        """, source: "test-services")

/// Loads `text` as firewall.conf.
func loadPolicy(_ text: String, local: String? = nil) throws(ConfigError) -> HostPolicy {
    var files = ["firewall.conf": text]
    if let local { files["firewall.local"] = local }
    let tree = PolicyTree(files)
    defer { tree.remove() }
    return try tree.load()
}

/// The error `loadPolicy` throws, with the temporary directory replaced by `DIR`.
func policyError(_ text: String, local: String? = nil) -> String? {
    var files = ["firewall.conf": text]
    if let local { files["firewall.local"] = local }
    let tree = PolicyTree(files)
    defer { tree.remove() }
    do {
        _ = try tree.load()
        return nil
    } catch {
        return error.description.replacingOccurrences(of: tree.root, with: "DIR")
    }
}

extension String {
    func replacingOccurrences(of a: String, with b: String) -> String {
        guard !a.isEmpty else { return self }
        var out = ""
        var rest = Substring(self)
        while let r = rest.firstRange(of: a) {
            out += rest[..<r.lowerBound]
            out += b
            rest = rest[r.upperBound...]
        }
        return out + rest
    }
}
