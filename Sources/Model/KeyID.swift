/// A master key's public name: the first 8 bytes of
/// SHA-256("coffer key id v1" || 0x00 || key), as 16 lowercase hex digits
/// (Keyring derives it: `KeyID(of:)`).
///
/// It identifies a key in records and status output without revealing
/// anything usable about it (SHA-256 is preimage resistant and the key has
/// 256 bits of entropy).
public struct KeyID: Hashable, Sendable, Codable, CustomStringConvertible {
    public let hex: String

    public init?(hex: String) {
        guard Hex.isDigits(hex, count: 16) else { return nil }
        self.hex = hex
    }

    public init(from decoder: any Decoder) throws {
        let raw = try decoder.singleValueContainer().decode(String.self)
        guard let id = KeyID(hex: raw) else {
            throw DecodingError.dataCorrupted(.init(codingPath: decoder.codingPath, debugDescription: "bad key id"))
        }
        self = id
    }

    public func encode(to encoder: any Encoder) throws {
        var container = encoder.singleValueContainer()
        try container.encode(hex)
    }

    public var description: String { hex }
}
