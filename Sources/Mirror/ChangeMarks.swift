import Model

/// What this host knows of the database's history, to take nothing older
/// than what it has. change_seq is one sequence for the whole fleet and is
/// committed in order (MirrorWriter), so:
/// - `floor`: the change_seq up to which this host has read every row (its
///   pull position). A row at or below it has been seen already: if it
///   shows up again, in a merge or a page, it was put back.
/// - `byName`: for each name, the newest change_seq this host took, merged
///   or wrote itself. A row for that name at or below it is older than what
///   the host holds, authentic or not.
/// A row either mark refuses is reported (audited as tamper), never taken.
struct ChangeMarks: Sendable, Equatable {
    var floor: Int64
    private(set) var byName: [SecretName: Int64] = [:]

    init(floor: Int64) {
        self.floor = floor
    }

    enum Verdict: Sendable, Equatable {
        /// Newer than what this host has: take it.
        case newer
        /// The very change this host took or merged already: nothing to do.
        case held
        /// Older than what this host has: refuse it.
        case older
    }

    /// A row of `name` at `sequence`. Rows read back by name (a merge) must
    /// also be above the floor; a pull reads only above it anyway.
    func judge(_ name: SecretName, at sequence: Int64, checkingFloor: Bool) -> Verdict {
        let mark = byName[name] ?? 0
        if sequence == mark { return .held }
        if sequence < mark { return .older }
        return checkingFloor && sequence <= floor ? .older : .newer
    }

    /// The host now holds `name` as of `sequence` (taken, merged, or
    /// written by itself and accepted).
    mutating func note(_ name: SecretName, at sequence: Int64) {
        byName[name] = max(byName[name] ?? 0, sequence)
    }
}
