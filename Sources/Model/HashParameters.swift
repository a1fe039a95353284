/// How a `hashed` version was made (docs/crypto.md, "Verify-only secrets").
/// The sealed record holds the derived bytes, never the value.
public enum HashParameters: Sendable, Equatable {
    /// For high-entropy values (tokens, API keys): the record holds a random
    /// 32-byte HMAC key followed by HMAC-SHA256(key, value). Both are sealed
    /// under the master key, so a stolen store or database cannot be tested
    /// offline, and a master-key rotation re-seals them like any record.
    case hmacSHA256
    /// For passwords (low entropy): the record holds scrypt(value, salt,
    /// N, r, p) with 32 bytes of output; salt and cost travel in clear.
    case scrypt(n: UInt64, r: UInt32, p: UInt32, salt: [UInt8])

    /// The default cost: N = 2^15, r = 8, p = 1 (32 MiB, about 0.1 s here).
    public static func scryptDefault(salt: [UInt8]) -> HashParameters {
        .scrypt(n: 1 << 15, r: 8, p: 1, salt: salt)
    }

    public var algorithm: String {
        switch self {
        case .hmacSHA256: return "hmac-sha256"
        case .scrypt: return "scrypt"
        }
    }
}
