import CLibCrypto
import LockedMemory

/// A master key's public name: the first 8 bytes of
/// SHA-256("coffer key id v1" || 0x00 || key), as 16 lowercase hex digits.
///
/// It identifies a key in records and status output without revealing
/// anything usable about it (SHA-256 is preimage resistant and the key has
/// 256 bits of entropy).
public struct KeyID: Hashable, Sendable, Codable, CustomStringConvertible {
    public let hex: String

    public init?(hex: String) {
        guard hex.utf8.count == 16, hex.utf8.allSatisfy({ (48...57).contains($0) || (97...102).contains($0) })
        else { return nil }
        self.hex = hex
    }

    public init(of key: LockedBytes) {
        let label = Array("coffer key id v1".utf8) + [0]
        var digest = [UInt8](repeating: 0, count: 32)
        let ctx = EVP_MD_CTX_new()!
        defer { EVP_MD_CTX_free(ctx) }
        precondition(EVP_DigestInit_ex(ctx, EVP_sha256(), nil) == 1)
        precondition(EVP_DigestUpdate(ctx, label, label.count) == 1)
        key.withUnsafeBytes { precondition(EVP_DigestUpdate(ctx, $0.baseAddress, $0.count) == 1) }
        precondition(EVP_DigestFinal_ex(ctx, &digest, nil) == 1)
        self.hex = digest.prefix(8).map { byte in
            let s = String(byte, radix: 16)
            return s.count == 1 ? "0" + s : s
        }.joined()
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
