import CLibCrypto

/// Comparison whose running time does not depend on the contents.
public enum ConstantTime {
    /// Equal-length inputs are compared with CRYPTO_memcmp. Inputs of
    /// different lengths are first reduced to SHA-256 digests and those are
    /// compared, so neither a length difference nor the position of the first
    /// differing byte changes the time taken in a way an attacker can use.
    public static func equals(_ a: UnsafeRawBufferPointer, _ b: UnsafeRawBufferPointer) -> Bool {
        var da = [UInt8](repeating: 0, count: 32)
        var db = [UInt8](repeating: 0, count: 32)
        defer {
            OPENSSL_cleanse(&da, 32)
            OPENSSL_cleanse(&db, 32)
        }
        guard EVP_Digest(a.baseAddress ?? UnsafeRawPointer(da), a.count, &da, nil, EVP_sha256(), nil) == 1,
              EVP_Digest(b.baseAddress ?? UnsafeRawPointer(db), b.count, &db, nil, EVP_sha256(), nil) == 1
        else { return false }
        let digestsEqual = CRYPTO_memcmp(da, db, 32) == 0
        // Also require equal lengths (a SHA-256 collision is not a match).
        return digestsEqual && a.count == b.count
    }
}
