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
    /// A class, so that merging mutates the cached entry in place (no copy of its dictionary per line).
    /// Its properties skip dynamic exclusivity checks: an entry is touched only by its cache's `merge`, on one
    /// worker, never re-entrantly.
    final class Entry {
        @exclusivity(unchecked) var fields: FieldSet
        @exclusivity(unchecked) var users: [String]
        @exclusivity(unchecked) var pending: [String]
        /// Lines of a failure that had no address yet (fail2ban's `mlfpending`); the next failure takes them over.
        @exclusivity(unchecked) var held: [String]
        @exclusivity(unchecked) var created: Double
        /// False once the entry left the cache (it may still sit in `order`).
        @exclusivity(unchecked) var alive = true

        init(fields: FieldSet, users: [String], created: Double) {
            self.fields = fields
            self.users = users
            self.pending = []
            self.held = []
            self.created = created
        }
    }

    static let maxCount = 100
    static let maxAge = 300.0

    private var entries: [String: Entry] = [:]
    private var order: [(key: String, entry: Entry)] = []
    private var head = 0
    private let now: @Sendable () -> Double

    init(now: @escaping @Sendable () -> Double) {
        self.now = now
    }

    /// Number of live entries (tests).
    var count: Int { entries.count }

    struct Merged {
        var fields: FieldSet
        /// The failure's lines before this match's own (pending no-failure lines, held lines).
        var before: [String]
        /// True when the failure's lines end with this match's own lines.
        var includesCurrent: Bool
        var users: [String]
        var isNoFail: Bool
    }

    /// Merges the current match (`current`: its set fields; `line`: its log lines, made only when the cache keeps
    /// them) into the entry for `mlfid`. The failure's lines are `before` plus, when `includesCurrent`, the
    /// match's own lines.
    mutating func merge(mlfid: String, current: FieldSet, line: () -> [String]) -> Merged {
        let gained = !(current["mlfgained"] ?? "").isEmpty
        var noFail = !(current["nofail"] ?? "").isEmpty
        let forget = !(current["mlfforget"] ?? "").isEmpty
        var cur = current
        if forget { cur["mlfforget"] = nil }
        if gained {
            noFail = true
            if (cur["nofail"] ?? "").isEmpty { cur["nofail"] = cur["mlfgained"] }
        }

        let time = now()
        let entry: Entry
        let existed: Bool
        if let e = entries[mlfid], time - e.created <= Self.maxAge {
            if let u = cur["user"], !u.isEmpty, !e.users.contains(u) { e.users.append(u) }
            e.fields.merge(cur)
            entry = e
            existed = true
        } else {
            if entries[mlfid] != nil { remove(mlfid) }
            var users: [String] = []
            if let u = cur["user"], !u.isEmpty { users.append(u) }
            entry = Entry(fields: cur, users: users, created: time)
            existed = false
        }
        if entry.users.count > 1 { noFail = false }
        // A failure still waiting for its address is not forgiven by a plain no-failure line (it supplies the
        // address instead); a gained session drops it.
        if !entry.held.isEmpty {
            if gained && noFail { entry.held = [] } else { noFail = false }
        }

        var before: [String] = []
        var includesCurrent = false
        if !noFail {
            entry.fields["nofail"] = nil
            entry.fields["mlfgained"] = nil
            includesCurrent = true
            if !entry.pending.isEmpty || !entry.held.isEmpty { before = entry.pending + entry.held }
            entry.pending = []
            let f = entry.fields
            let identified = f["ip4"] != nil || f["ip6"] != nil || f["dns"] != nil || f["fid"] != nil
            entry.held = identified ? [] : before + line()
        } else if !forget {
            entry.pending += line()
        }

        if forget {
            if existed { remove(mlfid) }
        } else if !existed {
            insert(mlfid, entry, time: time)
        }
        // A forgotten id that was never cached keeps no user list (as fail2ban).
        let users = forget && !existed ? [] : (entry.users.count > 1 ? entry.users.sorted() : entry.users)
        return Merged(
            fields: entry.fields, before: before, includesCurrent: includesCurrent, users: users, isNoFail: noFail)
    }

    private mutating func remove(_ key: String) {
        // The entry stays in `order` (marked dead) until it reaches the front.
        entries.removeValue(forKey: key)?.alive = false
    }

    private mutating func insert(_ key: String, _ entry: Entry, time: Double) {
        // `order` holds entries by creation time (oldest first from `head`): expired and excess entries leave
        // from the front, so an insert costs O(1) amortised.
        while head < order.count {
            let (k, e) = order[head]
            if e.alive, entries.count < Self.maxCount, time - e.created <= Self.maxAge { break }
            head += 1
            if e.alive {
                e.alive = false
                entries[k] = nil
            }
        }
        if head > 256, head * 2 > order.count {
            order.removeFirst(head)
            head = 0
        }
        entries[key] = entry
        order.append((key, entry))
    }
}
