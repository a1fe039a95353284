/// Checks a chain read back from the journal (`cofferctl audit --verify`):
/// events in journal order, each a field map. Reports gaps (missing
/// sequence numbers), edits (a chain value that does not verify) and
/// restarts (a sequence that starts again at 1: the chain state was lost).
public struct AuditChainVerifier {
    public struct Report: Sendable, Equatable {
        public var checked = 0
        public var first: UInt64?
        public var last: UInt64?
        /// (after sequence, how many are missing)
        public var gaps: [(after: UInt64, missing: UInt64)] = []
        /// Sequence numbers whose chain value does not verify.
        public var edits: [UInt64] = []
        /// Sequence numbers where the chain starts over.
        public var restarts: [UInt64] = []
        /// Events whose chain fields are missing or malformed.
        public var malformed = 0

        public var isIntact: Bool { gaps.isEmpty && edits.isEmpty && restarts.isEmpty && malformed == 0 }

        public static func == (a: Report, b: Report) -> Bool {
            a.checked == b.checked && a.first == b.first && a.last == b.last && a.edits == b.edits
                && a.restarts == b.restarts && a.malformed == b.malformed
                && a.gaps.map(\.after) == b.gaps.map(\.after) && a.gaps.map(\.missing) == b.gaps.map(\.missing)
        }
    }

    /// The MAC under the key that keyed an event (by COFFER_CHAIN_KEY_ID);
    /// nil when that key is not in the keyring.
    let mac: (_ keyID: String, _ data: [UInt8]) -> [UInt8]?

    public init(mac: @escaping (_ keyID: String, _ data: [UInt8]) -> [UInt8]?) {
        self.mac = mac
    }

    public func verify(_ events: [[(String, String)]]) -> Report {
        var report = Report()
        var previous: (sequence: UInt64, chain: [UInt8])?
        for fields in events {
            let map = Dictionary(fields, uniquingKeysWith: { first, _ in first })
            guard let sequence = map[AuditChain.fieldSequence].flatMap(UInt64.init),
                  let chain = map[AuditChain.fieldChain].flatMap(AuditChain.bytes(hex:)),
                  let keyID = map[AuditChain.fieldKeyID]
            else {
                report.malformed += 1
                continue
            }
            report.checked += 1
            report.first = report.first ?? sequence
            report.last = sequence
            defer { previous = (sequence, chain) }
            let base: [UInt8]
            switch previous {
            case nil:
                // The first event seen: verifiable only if it opens the chain.
                guard sequence == 1 else { continue }
                base = AuditChain.zero
            case let (last, lastChain)? where sequence == last + 1:
                base = lastChain
            case let (last, _)? where sequence > last + 1:
                report.gaps.append((after: last, missing: sequence - last - 1))
                continue
            default:
                if sequence == 1 { report.restarts.append(sequence) } else { report.edits.append(sequence) }
                if sequence != 1 { continue }
                base = AuditChain.zero
            }
            guard let expected = mac(keyID, base + AuditChain.canonical(fields)), expected == chain else {
                report.edits.append(sequence)
                continue
            }
        }
        return report
    }
}
