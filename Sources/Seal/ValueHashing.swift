import CLibCrypto
import LockedMemory
import Model

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
    public static let scryptMaxN: UInt64 = 1 << 20
    public static let scryptMaxR: UInt32 = 32
    public static let scryptMaxP: UInt32 = 16

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
        // An empty value may come with a nil base address: hand HMAC(3) a
        // valid pointer (to a byte it does not read) for the whole call.
        let ok = withNonNullBytes(value) { data in
            HMAC(EVP_sha256(), key.baseAddress, Int32(key.count), data, value.count, out, &length) != nil
        }
        guard ok, length == UInt32(digestCount) else {
            ERR_clear_error()
            throw SealError(.cryptoFailure, "HMAC failed")
        }
    }

    private static func scrypt(
        _ value: UnsafeRawBufferPointer, n: UInt64, r: UInt32, p: UInt32, salt: [UInt8], into out: UnsafeMutablePointer<UInt8>
    ) throws {
        // EVP_PBE_scrypt(3): N a power of two above 1; r * p < 2^30.
        // Bounded before any arithmetic (a store file from elsewhere could
        // carry anything): then 128 * r * (n + p + 2) cannot overflow.
        guard (2...scryptMaxN).contains(n), n & (n - 1) == 0, (1...scryptMaxR).contains(r), (1...scryptMaxP).contains(p),
              128 * UInt64(r) * (n + UInt64(p) + 2) <= scryptMaxMemory
        else { throw SealError(.malformedRecord, "scrypt parameters out of range") }
        let ok = withNonNullBytes(value) { password in
            password.withMemoryRebound(to: CChar.self, capacity: max(value.count, 1)) { password in
                EVP_PBE_scrypt(password, value.count, salt, salt.count, n, UInt64(r), UInt64(p), scryptMaxMemory,
                               out, digestCount) == 1
            }
        }
        guard ok else {
            ERR_clear_error()
            throw SealError(.cryptoFailure, "scrypt failed")
        }
    }
}

/// `value`'s bytes, or a pointer to one zero byte when it is empty.
private func withNonNullBytes<R>(_ value: UnsafeRawBufferPointer, _ body: (UnsafePointer<UInt8>) -> R) -> R {
    if let base = value.baseAddress, value.count > 0 { return body(base.assumingMemoryBound(to: UInt8.self)) }
    let zero: [UInt8] = [0]
    return zero.withUnsafeBufferPointer { body($0.baseAddress!) }
}
