/// fail2ban's regex tags (`<HOST>`, `<F-USER>…</F-USER>`, …) expanded into PCRE2 groups.
///
/// The group names are fail2ban's, because the rest of the engine (and fail2ban's sample annotations) use them:
/// `ip4`, `ip6`, `dns`, `cidr`, `fid`, `fport`, `mlfid`, `nofail`, `mlfforget`, `mlfgained`, `content`, `user`, …
/// The address expressions are our own text; they accept the same strings as fail2ban's except that digits are
/// ASCII only (fail2ban's `\d` also takes other scripts' digits, which never form a bannable address).
enum FailTags {
    /// One IPv4 address, optionally written IPv4-mapped (`::ffff:192.0.2.1`); the group holds the IPv4 part.
    static let ip4 = #"(?:::f{4,6}:)?(?P<ip4>[0-9]{1,3}(?:\.[0-9]{1,3}){3})"#
    /// One IPv6 address in any compressed form.
    static let ip6 = #"(?P<ip6>(?:[0-9A-Fa-f]{1,4}::?|::){1,7}(?:[0-9A-Fa-f]{1,4}|(?<=:):))"#
    /// A host name: word characters, `-`, `.`, `^`, ending with a word character.
    static let dns = #"(?P<dns>[-.^\w]*\w)"#
    /// A prefix length.
    static let cidr = #"(?P<cidr>[0-9]+)"#
    /// An address, optionally in brackets.
    static let addr = #"\[?(?:"# + ip4 + "|" + ip6 + #")\]?"#
    /// An address or a host name.
    static let host = "(?:" + addr + "|" + dns + ")"
    /// An address with an optional prefix length.
    static let subnet = #"\[?(?:"# + ip4 + "|" + ip6 + ")(?:/" + cidr + #")?\]?"#

    /// Group names that identify a failure (at least one must be present in a failregex or its prefregex).
    static let identifyingGroups: Set<String> = ["ip4", "ip6", "dns", "fid", "mlfid"]

    /// Expands tags in `regex`. `useDNS == false` removes the host-name alternative from `<HOST>`
    /// (fail2ban's `usedns = no`).
    static func expand(_ regex: String, useDNS: Bool = true) -> String {
        let s = Array(regex.utf8)
        var out: [UInt8] = []
        out.reserveCapacity(s.count * 2)
        var skipLines = 0
        var i = 0
        while i < s.count {
            guard s[i] == UInt8(ascii: "<"), let close = s[i...].firstIndex(of: UInt8(ascii: ">")) else {
                out.append(s[i])
                i += 1
                continue
            }
            let tag = String(decoding: s[(i + 1)..<close], as: UTF8.self)
            if let replacement = replacement(for: tag, useDNS: useDNS, skipLines: &skipLines) {
                out.append(contentsOf: replacement.utf8)
                i = close + 1
            } else {
                out.append(s[i])
                i += 1
            }
        }
        return String(decoding: out, as: UTF8.self)
    }

    private static func isTagName(_ name: Substring) -> Bool {
        !name.isEmpty
            && name.utf8.allSatisfy { ($0 >= 0x41 && $0 <= 0x5A) || ($0 >= 0x30 && $0 <= 0x39) || $0 == 0x5F }
    }

    private static func groupName(_ name: Substring) -> String {
        switch name {
        case "ID": return "fid"
        case "PORT": return "fport"
        default: return name.lowercased()
        }
    }

    private static func replacement(for tag: String, useDNS: Bool, skipLines: inout Int) -> String? {
        switch tag {
        case "HOST": return useDNS ? host : addr
        case "ADDR": return addr
        case "IP4", "F-IP4/": return ip4
        case "IP6", "F-IP6/": return ip6
        case "DNS", "F-DNS/": return dns
        case "CIDR", "F-CIDR/": return cidr
        case "SUBNET", "F-SUBNET/": return subnet
        case "F-ADDR/": return addr
        case "F-ID/": return #"(?P<fid>\S+)"#
        case "F-PORT/": return #"(?P<fport>\w+)"#
        case "SKIPLINES":
            defer { skipLines += 1 }
            return #"\n(?P<skiplines\#(skipLines)>(?:(?:.*\n)*?))"#
        default:
            break
        }
        if tag.hasPrefix("/F-") {
            let name = tag.dropFirst(3)
            return isTagName(name) ? ")" : nil
        }
        if tag.hasPrefix("F-") {
            let name = tag.dropFirst(2)
            return isTagName(name) ? "(?P<\(groupName(name))>" : nil
        }
        return nil
    }
}
