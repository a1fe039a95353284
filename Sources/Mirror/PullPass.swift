/// One pull pass over the database's change log (docs/mirror.md, "Other
/// hosts' changes"), page by page after the change_seq this host has read
/// to. Of each page it takes the other hosts' changes that are newer than
/// what this host holds (ChangeMarks), and reports the rows that failed
/// their checks or are older than held. A page's changes count as held,
/// and the read position moves past it, only once they are in the store
/// (`applied`): a commit that fails leaves them to be read again.
struct PullPass: Sendable {
    /// This host's id: its own rows are in its store already.
    let origin: String
    /// Every row up to here has been read and taken or refused.
    private(set) var sequence: Int64

    init(origin: String, after sequence: Int64) {
        self.origin = origin
        self.sequence = sequence
    }

    struct Step: Sendable {
        /// Other hosts' changes, newer than what this host holds: take them.
        var take: [MirrorReader.Change]
        /// Names to report as tampered: rows that failed their checks,
        /// and rows older than what this host holds.
        var tampered: [String]
        /// Where the read position moves once `take` is in the store.
        var through: Int64
    }

    /// What to do with `page`, judged against `marks`; nil when it brings
    /// nothing past the read position (the pass is over).
    func received(_ page: MirrorReader.Page, marks: ChangeMarks) -> Step? {
        guard page.lastSequence > sequence else { return nil }
        var step = Step(take: [], tampered: page.refused, through: page.lastSequence)
        for change in page.changes where change.origin != origin {
            switch marks.judge(change.name, at: change.sequence, checkingFloor: false) {
            case .newer: step.take.append(change)
            case .held: continue
            case .older: step.tampered.append(change.name.rawValue)
            }
        }
        return step
    }

    /// `step` is in the store: its changes are held, the read position
    /// and the floor move past its page.
    mutating func applied(_ step: Step, marks: inout ChangeMarks) {
        for change in step.take { marks.note(change.name, at: change.sequence) }
        sequence = step.through
        marks.floor = max(marks.floor, step.through)
    }
}
