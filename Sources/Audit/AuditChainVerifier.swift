import Model

/// Checks a chain read back from the journal (`cofferctl audit --verify`),
/// one event at a time in journal order, so a long journal is never held
/// in memory. Every event's own MAC is checked; consecutive events of each
/// lane (AuditChainer) are also checked link by link. Reports, per lane:
/// - gaps: missing sequence numbers, with those cofferd itself reported
///   lost (an `audit_lost` event: the journal was unreachable) told apart;
/// - edits: an event whose MAC or link does not verify, or that is keyed
///   by a master key a rotation retired and numbered past what its lane
///   had stamped under that key when it did (a retired key only checks
///   what it stamped before the rotation);
/// - restarts: the sequence starting again at 1 (the chain state was lost);
/// - a missing end: fewer events than cofferd has sent (`expectLast`).
public struct AuditChainVerifier: Sendable {
    /// One event of one lane.
    public struct Mark: Sendable, Equatable {
        public var lane: Int
        public var sequence: UInt64
    }

    public struct Gap: Sendable, Equatable {
        public var lane: Int
        public var after: UInt64
        public var missing: UInt64
        /// cofferd said it could not send these (audit_lost).
        public var reportedLost: Bool
    }

    /// What was found of one lane.
    public struct Lane: Sendable, Equatable {
        public var lane: Int
        public var first: UInt64
        public var last: UInt64
        /// Events cofferd sent in this lane after the last one found.
        public var missingAtEnd: UInt64 = 0
        /// cofferd said it could not send those (audit_lost).
        public var missingAtEndReportedLost = false
    }

    public struct Report: Sendable, Equatable {
        /// Gaps, edits and restarts are listed up to this many each, and
        /// counted all: a journal forged with millions of bad entries must
        /// not make a verify hold, or answer with, a mark for each.
        public static let listLimit = 1_000
        /// Lanes followed at most: cofferd has one per event loop plus
        /// lane 0. An event in a lane past that many is counted as
        /// malformed, so forged lane numbers cannot make a verify keep
        /// state, or answer, for each.
        public static let laneLimit = 4_096

        public var checked = 0
        /// Lanes in order of their number.
        public var lanes: [Lane] = []
        /// The first `listLimit` of each; the counts below are of all.
        public private(set) var gaps: [Gap] = []
        public private(set) var edits: [Mark] = []
        public private(set) var restarts: [Mark] = []
        public private(set) var gapCount = 0
        public private(set) var editCount = 0
        public private(set) var restartCount = 0
        public var malformed = 0

        /// Events cofferd sent after the last one found, all lanes together.
        public var missingAtEnd: UInt64 { lanes.reduce(0) { $0 + $1.missingAtEnd } }

        public var isIntact: Bool {
            gapCount == 0 && editCount == 0 && restartCount == 0 && malformed == 0 && missingAtEnd == 0
        }

        mutating func note(gap: Gap) {
            gapCount += 1
            if gaps.count < Self.listLimit { gaps.append(gap) }
        }

        mutating func note(edit: Mark) {
            editCount += 1
            if edits.count < Self.listLimit { edits.append(edit) }
        }

        mutating func note(restart: Mark) {
            restartCount += 1
            if restarts.count < Self.listLimit { restarts.append(restart) }
        }

        mutating func markReportedLost(_ isLost: (Gap) -> Bool) {
            for i in gaps.indices { gaps[i].reportedLost = isLost(gaps[i]) }
        }

        /// Edited events' numbers in `lane` (tests).
        public func edits(inLane lane: Int) -> [UInt64] { edits.filter { $0.lane == lane }.map(\.sequence) }
    }

    /// The MAC under the key that keyed an event (by COFFER_CHAIN_KEY_ID);
    /// nil when that key is not in the keyring.
    let mac: @Sendable (_ keyID: String, _ data: [UInt8]) -> [UInt8]?
    /// For a key a rotation retired: each lane's last number under it
    /// (AuditChainKeys.retiredAt); nil when not known.
    let retiredAt: @Sendable (_ keyID: String) -> [Int: UInt64]?
    private(set) var report = Report()
    /// Per lane: the event read before, and the numbers cofferd reported lost.
    private var previous: [Int: (sequence: UInt64, chain: [UInt8])] = [:]
    private var reportedLost: [Int: SequenceRanges] = [:]
    private var ranges: [Int: Lane] = [:]

    public init(
        mac: @escaping @Sendable (_ keyID: String, _ data: [UInt8]) -> [UInt8]?,
        retiredAt: @escaping @Sendable (_ keyID: String) -> [Int: UInt64]? = { _ in nil }
    ) {
        self.mac = mac
        self.retiredAt = retiredAt
    }

    /// Whether one event's own MAC verifies (for listings).
    public func isAuthentic(_ fields: [(String, String)]) -> Bool {
        isAuthentic(Dictionary(fields, uniquingKeysWith: { first, _ in first }), canonical: AuditChain.canonical(fields))
    }

    /// The same, from what `add` has already made of the event.
    private func isAuthentic(_ map: [String: String], canonical: [UInt8]) -> Bool {
        guard let keyID = map[AuditChain.fieldKeyID], let claimed = map[AuditChain.fieldMAC].flatMap(Hex.decode),
              let expected = mac(keyID, AuditChain.eventInput(canonical))
        else { return false }
        return expected == claimed
    }

    public mutating func add(_ fields: [(String, String)]) {
        let map = Dictionary(fields, uniquingKeysWith: { first, _ in first })
        guard let lane = AuditChain.lane(of: map),
              let sequence = map[AuditChain.fieldSequence].flatMap(UInt64.init),
              let chain = map[AuditChain.fieldChain].flatMap(Hex.decode),
              let keyID = map[AuditChain.fieldKeyID]
        else {
            report.malformed += 1
            return
        }
        guard previous[lane] != nil || previous.count < Report.laneLimit else {
            report.malformed += 1
            return
        }
        report.checked += 1
        ranges[lane, default: Lane(lane: lane, first: sequence, last: sequence)].last = sequence
        let before = previous[lane]
        previous[lane] = (sequence, chain)
        let here = Mark(lane: lane, sequence: sequence)
        // A retired key checks only what it stamped before the rotation:
        // in each lane, up to the number the lane had reached then.
        let canonical = AuditChain.canonical(fields)
        let authentic = isAuthentic(map, canonical: canonical) && retiredAt(keyID).map { sequence <= $0[lane] ?? 0 } ?? true
        if !authentic { report.note(edit: here) }
        if authentic, map["COFFER_EVENT"] == "audit_lost", let lost = map["COFFER_LOST"] {
            // The report may come in another lane than the losses.
            let lostLane = map["COFFER_LOST_LANE"].flatMap { Int($0) } ?? lane
            reportedLost[lostLane, default: SequenceRanges()].formUnion(SequenceRanges(text: lost))
        }
        let base: [UInt8]
        switch before {
        case nil:
            // The lane's first event read: linked to nothing we have, unless
            // it opens the lane. Its own MAC was checked above.
            guard sequence == 1 else { return }
            base = AuditChain.zero
        // Numbers come from the journal, unchecked yet: no arithmetic on
        // them may overflow (a forged UInt64.max would trap).
        case let (last, lastChain)? where last < .max && sequence == last + 1:
            base = lastChain
        case let (last, _)? where sequence > last && sequence - last > 1:
            report.note(gap: Gap(lane: lane, after: last, missing: sequence - last - 1, reportedLost: false))
            return
        default:
            guard sequence == 1 else {
                // A number seen again or going backwards: reordered or replayed.
                if authentic { report.note(edit: here) }
                return
            }
            report.note(restart: here)
            base = AuditChain.zero
        }
        guard authentic else { return }
        let linked = mac(keyID, AuditChain.chainInput(previous: base, canonical))
        if linked != chain { report.note(edit: here) }
    }

    /// The report, with gaps matched against what cofferd reported lost and
    /// each lane's end checked against `expectLast` (cofferd's own last
    /// number in each lane, lane 0 first).
    public func finish(expectLast: [UInt64]? = nil) -> Report {
        var final = report
        final.markReportedLost { gap in
            reportedLost[gap.lane]?.contains(gap.after + 1...gap.after + gap.missing) ?? false
        }
        var lanes = ranges
        for (lane, expected) in (expectLast ?? []).enumerated() where expected > 0 {
            // A lane with no event found at all is missing every one it sent.
            var found = lanes[lane] ?? Lane(lane: lane, first: 0, last: 0)
            if expected > found.last {
                found.missingAtEnd = expected - found.last
                found.missingAtEndReportedLost = reportedLost[lane]?.contains(found.last + 1...expected) ?? false
            }
            if found.last > 0 || found.missingAtEnd > 0 { lanes[lane] = found }
        }
        final.lanes = lanes.values.sorted { $0.lane < $1.lane }
        return final
    }

    /// All at once (tests).
    public static func verify(_ events: [[(String, String)]], mac: @escaping @Sendable (String, [UInt8]) -> [UInt8]?) -> Report {
        var verifier = AuditChainVerifier(mac: mac)
        for event in events { verifier.add(event) }
        return verifier.finish()
    }
}
