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
        guard digest(a, into: &da), digest(b, into: &db) else { return false }
        let digestsEqual = CRYPTO_memcmp(da, db, 32) == 0
        // Also require equal lengths (a SHA-256 collision is not a match).
        return digestsEqual && a.count == b.count
    }

    public static func equals(_ a: [UInt8], _ b: [UInt8]) -> Bool {
        a.withUnsafeBytes { ra in b.withUnsafeBytes { rb in equals(ra, rb) } }
    }

    private static func digest(_ input: UnsafeRawBufferPointer, into out: inout [UInt8]) -> Bool {
        // EVP_Digest wants a valid pointer even for zero bytes.
        let zero: UInt8 = 0
        return withUnsafeBytes(of: zero) { placeholder in
            EVP_Digest(input.baseAddress ?? placeholder.baseAddress, input.count, &out, nil, EVP_sha256(), nil) == 1
        }
    }
}
