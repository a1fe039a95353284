import Model

/// The tamper-evident sequence (docs/audit.md): every event carries
/// `COFFER_SEQ`, one more than the event before, and `COFFER_CHAIN`, an
/// HMAC over the previous chain value and this event's own fields, keyed by
/// a key derived from the master key. A missing event shows as a gap in
/// the sequence; an edited, forged or reordered one as a chain that does
/// not verify. Pure: the MAC is handed in, the state is a value.
public struct AuditChain: Sendable, Equatable {
    public static let fieldSequence = "COFFER_SEQ"
    public static let fieldChain = "COFFER_CHAIN"
    /// Which chain (one per store: several cofferd instances may share a
    /// journal) and which master key keyed it.
    public static let fieldChainID = "COFFER_CHAIN_ID"
    public static let fieldKeyID = "COFFER_CHAIN_KEY_ID"
    public static let zero = [UInt8](repeating: 0, count: 32)

    public var sequence: UInt64
    public var chain: [UInt8]

    public init(sequence: UInt64 = 0, chain: [UInt8] = AuditChain.zero) {
        self.sequence = sequence
        self.chain = chain
    }

    /// Appends the chain fields to `fields` and advances.
    public mutating func extend(
        _ fields: [(String, String)], chainID: String, keyID: String, mac: ([UInt8]) -> [UInt8]
    ) -> [(String, String)] {
        var all = fields
        all.append((Self.fieldSequence, String(sequence + 1)))
        all.append((Self.fieldChainID, chainID))
        all.append((Self.fieldKeyID, keyID))
        let next = mac(chain + Self.canonical(all))
        sequence += 1
        chain = next
        all.append((Self.fieldChain, Self.hex(next)))
        return all
    }

    /// What the MAC covers: every field the event was sent with except
    /// COFFER_CHAIN itself and the journal's own (`_`-prefixed) fields,
    /// sorted by name, length-prefixed (LengthPrefixedFields).
    public static func canonical(_ fields: [(String, String)]) -> [UInt8] {
        var out = LengthPrefixedFields()
        for (key, value) in fields.filter({ isCovered($0.0) }).sorted(by: { $0.0 < $1.0 }) {
            out.add(key, value)
        }
        return out.bytes
    }

    public static func isCovered(_ key: String) -> Bool {
        !key.hasPrefix("_") && key != fieldChain
    }

    public static func hex(_ bytes: [UInt8]) -> String { Hex.encode(bytes) }

    public static func bytes(hex: String) -> [UInt8]? { Hex.decode(hex) }
}
