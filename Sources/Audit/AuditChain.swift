import Model

/// The tamper-evident sequence (docs/audit.md): one per lane. Every event
/// carries:
/// - `COFFER_LANE`, the lane whose sequence it belongs to (an event without
///   it, written before lanes existed, belongs to lane 0);
/// - `COFFER_SEQ`, one more than the lane's event before;
/// - `COFFER_TIME_USEC`, when cofferd sent it (the journal's own timestamp
///   is not covered by any MAC);
/// - `COFFER_MAC`, an HMAC over the event's own fields: each event can be
///   checked alone, also next to a gap or first in a `--since` window;
/// - `COFFER_CHAIN`, an HMAC over the previous chain value and the event's
///   fields: a removed, reordered or inserted event breaks it.
/// Keyed by a key derived from the master key. Pure: the MAC is handed in,
/// the state is a value.
public struct AuditChain: Sendable, Equatable {
    public static let fieldSequence = "COFFER_SEQ"
    public static let fieldChain = "COFFER_CHAIN"
    public static let fieldMAC = "COFFER_MAC"
    public static let fieldTime = "COFFER_TIME_USEC"
    /// Which chain (one per store: several cofferd instances may share a
    /// journal) and which master key keyed it.
    public static let fieldChainID = "COFFER_CHAIN_ID"
    public static let fieldKeyID = "COFFER_CHAIN_KEY_ID"
    public static let fieldLane = "COFFER_LANE"
    public static let zero = [UInt8](repeating: 0, count: 32)

    public var lane: Int
    public var sequence: UInt64
    public var chain: [UInt8]

    public init(lane: Int = 0, sequence: UInt64 = 0, chain: [UInt8] = AuditChain.zero) {
        self.lane = lane
        self.sequence = sequence
        self.chain = chain
    }

    /// The lane an event read back belongs to.
    public static func lane(of map: [String: String]) -> Int? {
        guard let text = map[fieldLane] else { return 0 }
        return Int(text).flatMap { $0 >= 0 ? $0 : nil }
    }

    /// Appends the chain fields to `fields` and advances. If `mac` throws,
    /// nothing advances.
    public mutating func extend(
        _ fields: [(String, String)], chainID: String, keyID: String, timeMicroseconds: UInt64, mac: ([UInt8]) throws -> [UInt8]
    ) rethrows -> [(String, String)] {
        var all = fields
        all.append((Self.fieldLane, String(lane)))
        all.append((Self.fieldSequence, String(sequence + 1)))
        all.append((Self.fieldTime, String(timeMicroseconds)))
        all.append((Self.fieldChainID, chainID))
        all.append((Self.fieldKeyID, keyID))
        let covered = Self.canonical(all)
        let next = try mac(Self.chainInput(previous: chain, covered))
        all.append((Self.fieldMAC, Hex.encode(try mac(Self.eventInput(covered)))))
        all.append((Self.fieldChain, Hex.encode(next)))
        sequence += 1
        chain = next
        return all
    }

    /// The two MAC inputs start with different field names, so neither can
    /// stand for the other.
    public static func chainInput(previous: [UInt8], _ covered: [UInt8]) -> [UInt8] {
        var out = LengthPrefixedFields()
        out.add("chain", previous)
        return out.bytes + covered
    }

    public static func eventInput(_ covered: [UInt8]) -> [UInt8] {
        var out = LengthPrefixedFields()
        out.add("event", [])
        return out.bytes + covered
    }

    /// What the MACs cover: every field the event was sent with except
    /// COFFER_CHAIN, COFFER_MAC and the journal's own (`_`-prefixed)
    /// fields, sorted by name, length-prefixed (LengthPrefixedFields).
    public static func canonical(_ fields: [(String, String)]) -> [UInt8] {
        var out = LengthPrefixedFields()
        for (key, value) in fields.filter({ isCovered($0.0) }).sorted(by: { $0.0 < $1.0 }) {
            out.add(key, value)
        }
        return out.bytes
    }

    public static func isCovered(_ key: String) -> Bool {
        !key.hasPrefix("_") && key != fieldChain && key != fieldMAC
    }
}
