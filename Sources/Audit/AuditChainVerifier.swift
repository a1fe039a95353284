import Model

/// Checks a chain read back from the journal (`cofferctl audit --verify`),
/// one event at a time in journal order, so a long journal is never held
/// in memory. Every event's own MAC is checked; consecutive events are also
/// checked link by link. Reports:
/// - gaps: missing sequence numbers, with those cofferd itself reported
///   lost (an `audit_lost` event: the journal was unreachable) told apart;
/// - edits: an event whose MAC or link does not verify;
/// - restarts: the sequence starting again at 1 (the chain state was lost);
/// - a missing end: fewer events than cofferd has sent (`expectLast`).
public struct AuditChainVerifier: Sendable {
    public struct Gap: Sendable, Equatable {
        public var after: UInt64
        public var missing: UInt64
        /// cofferd said it could not send these (audit_lost).
        public var reportedLost: Bool
    }

    public struct Report: Sendable, Equatable {
        public var checked = 0
        public var first: UInt64?
        public var last: UInt64?
        public var gaps: [Gap] = []
        public var edits: [UInt64] = []
        public var restarts: [UInt64] = []
        public var malformed = 0
        /// Events cofferd sent after the last one found.
        public var missingAtEnd: UInt64 = 0

        public var isIntact: Bool {
            gaps.isEmpty && edits.isEmpty && restarts.isEmpty && malformed == 0 && missingAtEnd == 0
        }
    }

    /// The MAC under the key that keyed an event (by COFFER_CHAIN_KEY_ID);
    /// nil when that key is not in the keyring.
    let mac: @Sendable (_ keyID: String, _ data: [UInt8]) -> [UInt8]?
    private(set) var report = Report()
    private var previous: (sequence: UInt64, chain: [UInt8])?
    private var reportedLost: Set<UInt64> = []

    public init(mac: @escaping @Sendable (_ keyID: String, _ data: [UInt8]) -> [UInt8]?) {
        self.mac = mac
    }

    /// Whether one event's own MAC verifies (for listings).
    public func isAuthentic(_ fields: [(String, String)]) -> Bool {
        let map = Dictionary(fields, uniquingKeysWith: { first, _ in first })
        guard let keyID = map[AuditChain.fieldKeyID], let claimed = map[AuditChain.fieldMAC].flatMap(Hex.decode),
              let expected = mac(keyID, AuditChain.eventInput(AuditChain.canonical(fields)))
        else { return false }
        return expected == claimed
    }

    public mutating func add(_ fields: [(String, String)]) {
        let map = Dictionary(fields, uniquingKeysWith: { first, _ in first })
        guard let sequence = map[AuditChain.fieldSequence].flatMap(UInt64.init),
              let chain = map[AuditChain.fieldChain].flatMap(Hex.decode),
              let keyID = map[AuditChain.fieldKeyID]
        else {
            report.malformed += 1
            return
        }
        report.checked += 1
        report.first = report.first ?? sequence
        report.last = sequence
        defer { previous = (sequence, chain) }
        let authentic = isAuthentic(fields)
        if !authentic { report.edits.append(sequence) }
        if authentic, map["COFFER_EVENT"] == "audit_lost", let lost = map["COFFER_LOST"] {
            reportedLost.formUnion(AuditChain.numbers(inRanges: lost))
        }
        let base: [UInt8]
        switch previous {
        case nil:
            // First event read: linked to nothing we have, unless it opens
            // the chain. Its own MAC was checked above.
            guard sequence == 1 else { return }
            base = AuditChain.zero
        case let (last, lastChain)? where sequence == last + 1:
            base = lastChain
        case let (last, _)? where sequence > last + 1:
            report.gaps.append(Gap(after: last, missing: sequence - last - 1, reportedLost: false))
            return
        default:
            guard sequence == 1 else {
                // A number seen again or going backwards: reordered or replayed.
                if authentic { report.edits.append(sequence) }
                return
            }
            report.restarts.append(sequence)
            base = AuditChain.zero
        }
        guard authentic else { return }
        let linked = mac(keyID, AuditChain.chainInput(previous: base, AuditChain.canonical(fields)))
        if linked != chain { report.edits.append(sequence) }
    }

    /// The report, with gaps matched against what cofferd reported lost and
    /// the end checked against `expectLast` (cofferd's own last number).
    public func finish(expectLast: UInt64? = nil) -> Report {
        var final = report
        final.gaps = final.gaps.map { gap in
            var gap = gap
            gap.reportedLost = (gap.after + 1...gap.after + gap.missing).allSatisfy { reportedLost.contains($0) }
            return gap
        }
        if let expectLast, let last = final.last, expectLast > last { final.missingAtEnd = expectLast - last }
        return final
    }

    /// All at once (tests).
    public static func verify(_ events: [[(String, String)]], mac: @escaping @Sendable (String, [UInt8]) -> [UInt8]?) -> Report {
        var verifier = AuditChainVerifier(mac: mac)
        for event in events { verifier.add(event) }
        return verifier.finish()
    }
}
