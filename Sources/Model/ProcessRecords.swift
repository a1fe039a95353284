/// Reading a peer's /proc/PID files: pure parsing, so it is tested on
/// fixtures; the server reads the files and confirms the pid (pidfd).
public enum ProcessRecords {
    /// The system unit from /proc/PID/cgroup, the way sd_pid_get_unit(3)
    /// finds it: on the unified hierarchy (`0::`), or systemd's own v1
    /// hierarchy (`name=systemd`) when that is all there is, skip the
    /// `.slice` components and take the first that follows if it is a unit
    /// name. A process under `user@UID.service` is that unit: units a user's
    /// own manager starts are never mistaken for system units.
    ///
    /// nil when the path is the root (outside systemd, or inside a cgroup
    /// namespace that hides it) or does not look like systemd's layout.
    public static func systemUnit(fromCgroup text: String) -> String? {
        var unified: Substring?
        var legacy: Substring?
        for line in text.split(separator: "\n") {
            let fields = line.split(separator: ":", maxSplits: 2, omittingEmptySubsequences: false)
            guard fields.count == 3 else { continue }
            if fields[0] == "0", fields[1].isEmpty { unified = fields[2] }
            if fields[1] == "name=systemd" { legacy = fields[2] }
        }
        for path in [unified, legacy].compactMap({ $0 }) where path != "/" {
            return unit(inPath: path)
        }
        return nil
    }

    static func unit(inPath path: Substring) -> String? {
        for component in path.split(separator: "/") {
            if component.hasSuffix(".slice") { continue }
            // systemd escapes a cgroup name that could pass for one of the
            // kernel's own files (`cpu.service` becomes `_cpu.service`) or
            // starts with `_`, by putting `_` in front (cg_escape() in
            // systemd's src/basic/cgroup-util.c): undo it.
            let name = component.hasPrefix("_") ? component.dropFirst() : component
            return UnitName.isValid(name) ? String(name) : nil
        }
        return nil
    }

    /// The effective uid and gid from /proc/PID/status (`Uid:` and `Gid:`
    /// lines: real, effective, saved, filesystem); nil when malformed.
    public static func effectiveIDs(fromStatus text: String) -> (uid: UInt32, gid: UInt32)? {
        func effective(_ label: String) -> UInt32? {
            for line in text.split(separator: "\n") where line.hasPrefix(label) {
                let fields = line.dropFirst(label.count).split(whereSeparator: { $0 == " " || $0 == "\t" })
                return fields.count == 4 ? UInt32(fields[1]) : nil
            }
            return nil
        }
        guard let uid = effective("Uid:"), let gid = effective("Gid:") else { return nil }
        return (uid, gid)
    }

    /// The supplementary groups from /proc/PID/status (`Groups:` line, see
    /// proc_pid_status(5)); nil when the line is missing or malformed.
    public static func supplementaryGroups(fromStatus text: String) -> [UInt32]? {
        for line in text.split(separator: "\n") where line.hasPrefix("Groups:") {
            var groups: [UInt32] = []
            for field in line.dropFirst("Groups:".count).split(whereSeparator: { $0 == " " || $0 == "\t" }) {
                guard let gid = UInt32(field) else { return nil }
                groups.append(gid)
            }
            return groups
        }
        return nil
    }
}
