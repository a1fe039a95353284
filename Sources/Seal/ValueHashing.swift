import CLibCrypto
import LockedMemory

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

/// What a `hashed` version stores instead of its value, and how a candidate
/// is checked against it (docs/crypto.md, "Verify-only secrets"). The
/// result is sealed like any record, so it never sits in the store or the
/// database in clear.
public enum ValueHashing {
    public static let hmacKeyCount = 32
    public static let digestCount = 32
    /// scrypt's memory ceiling: N = 2^15, r = 8 needs 32 MiB; parameters
    /// that would need more than this are refused rather than run.
    static let scryptMaxMemory: UInt64 = 128 << 20

    /// The bytes to seal for `value` under `parameters`.
    public static func derive(_ value: UnsafeRawBufferPointer, _ parameters: HashParameters) throws -> LockedBytes {
        switch parameters {
        case .hmacSHA256:
            let out = try LockedBytes(count: hmacKeyCount + digestCount)
            try out.withUnsafeMutableBytes { buffer in
                let base = buffer.bindMemory(to: UInt8.self).baseAddress!
                guard RAND_priv_bytes(base, Int32(hmacKeyCount)) == 1 else {
                    throw SealError(.cryptoFailure, "RAND_priv_bytes failed")
                }
                try hmac(key: UnsafeRawBufferPointer(start: base, count: hmacKeyCount), value, into: base + hmacKeyCount)
            }
            return out
        case .scrypt(let n, let r, let p, let salt):
            let out = try LockedBytes(count: digestCount)
            try out.withUnsafeMutableBytes { buffer in
                try scrypt(value, n: n, r: r, p: p, salt: salt, into: buffer.bindMemory(to: UInt8.self).baseAddress!)
            }
            return out
        }
    }

    /// Whether `candidate` is the value `stored` (the opened record) was
    /// derived from. The final comparison is constant-time.
    public static func matches(_ candidate: UnsafeRawBufferPointer, stored: LockedBytes, _ parameters: HashParameters) throws -> Bool {
        switch parameters {
        case .hmacSHA256:
            guard stored.count == hmacKeyCount + digestCount else { throw SealError(.malformedRecord, "hmac record has the wrong length") }
            let digest = try LockedBytes(count: digestCount)
            return try stored.withUnsafeBytes { s in
                try digest.withUnsafeMutableBytes { d in
                    try hmac(key: UnsafeRawBufferPointer(rebasing: s[..<hmacKeyCount]), candidate,
                             into: d.bindMemory(to: UInt8.self).baseAddress!)
                }
                return digest.withUnsafeBytes { ConstantTime.equals(UnsafeRawBufferPointer(rebasing: s[hmacKeyCount...]), $0) }
            }
        case .scrypt:
            guard stored.count == digestCount else { throw SealError(.malformedRecord, "scrypt record has the wrong length") }
            let derived = try derive(candidate, parameters)
            return stored.withUnsafeBytes { s in derived.withUnsafeBytes { ConstantTime.equals(s, $0) } }
        }
    }

    private static func hmac(key: UnsafeRawBufferPointer, _ value: UnsafeRawBufferPointer, into out: UnsafeMutablePointer<UInt8>) throws {
        var length: UInt32 = UInt32(digestCount)
        // HMAC(3) with a NULL data pointer is fine only for length 0; give
        // it a valid pointer either way.
        var empty: UInt8 = 0
        let data = value.baseAddress?.assumingMemoryBound(to: UInt8.self) ?? withUnsafeMutablePointer(to: &empty) { UnsafePointer($0) }
        guard HMAC(EVP_sha256(), key.baseAddress, Int32(key.count), data, value.count, out, &length) != nil,
              length == UInt32(digestCount)
        else {
            ERR_clear_error()
            throw SealError(.cryptoFailure, "HMAC failed")
        }
    }

    private static func scrypt(
        _ value: UnsafeRawBufferPointer, n: UInt64, r: UInt32, p: UInt32, salt: [UInt8], into out: UnsafeMutablePointer<UInt8>
    ) throws {
        // EVP_PBE_scrypt(3): N a power of two above 1; r * p < 2^30.
        guard n > 1, n & (n - 1) == 0, r > 0, p > 0, UInt64(r) * UInt64(p) < 1 << 30,
              128 * UInt64(r) * (n + UInt64(p) + 2) <= scryptMaxMemory
        else { throw SealError(.malformedRecord, "scrypt parameters out of range") }
        var empty: CChar = 0
        let password = value.baseAddress?.assumingMemoryBound(to: CChar.self) ?? withUnsafeMutablePointer(to: &empty) { UnsafePointer($0) }
        guard EVP_PBE_scrypt(password, value.count, salt, salt.count, n, UInt64(r), UInt64(p), scryptMaxMemory,
                             out, digestCount) == 1
        else {
            ERR_clear_error()
            throw SealError(.cryptoFailure, "scrypt failed")
        }
    }
}
