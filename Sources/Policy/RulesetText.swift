/// Comparing nft listings: normalising what changes without a change of policy, and a line diff.
///
/// ```swift
/// let old = RulesetText.normalized(kernelListing)
/// let new = RulesetText.normalized(candidateListing)
/// for line in RulesetText.diff(old, new) where !line.hasPrefix("  ") { print(line) }
/// ```
public enum RulesetText {
    /// The listing's lines without what varies at run time: `# handle N` comments, counters' values, blank lines,
    /// and the elements of dynamic sets (the port-scan guard's meters), with white space trimmed.
    public static func normalized(_ listing: String) -> [String] {
        var out: [String] = []
        var inDynamicSet = false
        var skippingElements = false
        var setLines: [String] = []
        for raw in listing.split(separator: "\n", omittingEmptySubsequences: true) {
            var line = raw.trimmingSpaces()
            if let r = line.firstRange(of: " # handle ") { line = String(line[..<r.lowerBound]) }
            if line.isEmpty { continue }
            if skippingElements {
                if line.hasSuffix("}") { skippingElements = false }
                continue
            }
            if line.hasPrefix("set ") && line.hasSuffix("{") {
                inDynamicSet = false
                setLines = [line]
                out.append(line)
                continue
            }
            if !setLines.isEmpty {
                if line.hasPrefix("flags ") && line.contains("dynamic") { inDynamicSet = true }
                if line == "}" { setLines = [] }
                if inDynamicSet && line.hasPrefix("elements = {") {
                    if !line.hasSuffix("}") { skippingElements = true }
                    continue
                }
            }
            out.append(line)
        }
        return out
    }

    /// A line diff of `old` → `new`: each line prefixed `  ` (kept), `- ` (only in old) or `+ ` (only in new),
    /// by longest common subsequence.
    public static func diff(_ old: [String], _ new: [String]) -> [String] {
        let n = old.count
        let m = new.count
        var lcs = [[Int]](repeating: [Int](repeating: 0, count: m + 1), count: n + 1)
        if n > 0 && m > 0 {
            for i in stride(from: n - 1, through: 0, by: -1) {
                for j in stride(from: m - 1, through: 0, by: -1) {
                    lcs[i][j] = old[i] == new[j] ? lcs[i + 1][j + 1] + 1 : max(lcs[i + 1][j], lcs[i][j + 1])
                }
            }
        }
        var out: [String] = []
        var i = 0
        var j = 0
        while i < n || j < m {
            if i < n, j < m, old[i] == new[j] {
                out.append("  " + old[i])
                i += 1
                j += 1
            } else if j < m, i == n || lcs[i][j + 1] >= lcs[i + 1][j] {
                out.append("+ " + new[j])
                j += 1
            } else {
                out.append("- " + old[i])
                i += 1
            }
        }
        return out
    }

    /// True when the diff has any `-` or `+` line.
    public static func hasChanges(_ diff: [String]) -> Bool { diff.contains { !$0.hasPrefix("  ") } }
}
