/// fail2ban's multi-line failure cache: lines that share an `<F-MLFID>` value (a connection id such as
/// `sshd[1234]`) are merged into one failure.
///
/// Rules (observed from fail2ban 1.0.2 and checked against it in `MultiLineFailureTests`):
/// - The first line of an id creates an entry (unless it is a `<F-MLFFORGET>` line); later lines merge their set
///   fields into it (a field a later line does not set keeps its earlier value).
/// - Every distinct `user` is remembered; once there are two or more, `<F-NOFAIL>` no longer applies (an
///   intruder trying several users is not forgiven by a later success).
/// - A `<F-NOFAIL>` line (or `<F-MLFGAINED>`, which implies no-failure) produces no failure; its line is kept as
///   pending and added to the next failure of the same id.
/// - A failure's lines are the pending ones plus its own; pending lines are then cleared. A failure that has no
///   address yet (nothing to report) keeps its lines for the next failure of the id.
/// - A failure without an address (nothing to report yet) keeps its lines; a later `<F-NOFAIL>` line of the id
///   then reports it (with its address) instead of forgiving it, while `<F-MLFGAINED>` drops it.
/// - `<F-MLFFORGET>` removes the entry after this line.
/// - At most 100 entries, each kept 5 minutes after it was created (oldest dropped first).
struct MultiLineFailureCache {
    struct Entry {
        var fields: [String: String]
        var users: [String]
        var pending: [String]
        /// Lines of a failure that had no address yet (fail2ban's `mlfpending`); the next failure takes them over.
        var held: [String]
        var created: Double
    }

    static let maxCount = 100
    static let maxAge = 300.0

    private var entries: [String: Entry] = [:]
    private var order: [String] = []
    private let now: @Sendable () -> Double

    init(now: @escaping @Sendable () -> Double) {
        self.now = now
    }

    /// Number of live entries (tests).
    var count: Int { entries.count }

    struct Merged {
        var fields: [String: String]
        var lines: [String]
        var users: [String]
        var isNoFail: Bool
    }

    /// Merges the current match (`current`: its set fields; `line`: its log lines) into the entry for `mlfid`.
    mutating func merge(mlfid: String, current: [String: String], line: [String]) -> Merged {
        var cur = current
        let gained = !(cur["mlfgained"] ?? "").isEmpty
        var noFail = !(cur["nofail"] ?? "").isEmpty
        if gained {
            noFail = true
            if (cur["nofail"] ?? "").isEmpty { cur["nofail"] = cur["mlfgained"] }
        }
        let forget = !(cur.removeValue(forKey: "mlfforget") ?? "").isEmpty

        let time = now()
        var entry: Entry
        let existed: Bool
        if var e = entries[mlfid], time - e.created <= Self.maxAge {
            if let u = cur["user"], !u.isEmpty, !e.users.contains(u) { e.users.append(u) }
            e.fields.merge(cur) { _, new in new }
            entry = e
            existed = true
        } else {
            if entries[mlfid] != nil { remove(mlfid) }
            var users: [String] = []
            if let u = cur["user"], !u.isEmpty { users.append(u) }
            entry = Entry(fields: cur, users: users, pending: [], held: [], created: time)
            existed = false
        }
        if entry.users.count > 1 { noFail = false }
        // A failure still waiting for its address is not forgiven by a plain no-failure line (it supplies the
        // address instead); a gained session drops it.
        if !entry.held.isEmpty {
            if gained && noFail { entry.held = [] } else { noFail = false }
        }

        var lines: [String] = []
        if !noFail {
            entry.fields["nofail"] = nil
            entry.fields["mlfgained"] = nil
            lines = entry.pending + entry.held + line
            entry.pending = []
            let identified = ["ip4", "ip6", "dns", "fid"].contains { entry.fields[$0] != nil }
            entry.held = identified ? [] : lines
        } else if !forget {
            entry.pending += line
        }

        if forget {
            if existed { remove(mlfid) }
        } else if existed {
            entries[mlfid] = entry
        } else {
            insert(mlfid, entry, time: time)
        }
        // A forgotten id that was never cached keeps no user list (as fail2ban).
        let users = forget && !existed ? [] : entry.users.sorted()
        return Merged(fields: entry.fields, lines: lines, users: users, isNoFail: noFail)
    }

    private mutating func remove(_ key: String) {
        entries[key] = nil
        if let i = order.firstIndex(of: key) { order.remove(at: i) }
    }

    private mutating func insert(_ key: String, _ entry: Entry, time: Double) {
        if entries.count >= Self.maxCount {
            order.removeAll { k in
                guard let e = entries[k] else { return true }
                if time - e.created > Self.maxAge {
                    entries[k] = nil
                    return true
                }
                return false
            }
            while entries.count >= Self.maxCount, !order.isEmpty {
                entries[order.removeFirst()] = nil
            }
        }
        entries[key] = entry
        order.append(key)
    }
}
