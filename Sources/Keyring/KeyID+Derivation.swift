import CLibCrypto
import LockedMemory
import Model

extension KeyID {
    /// The id of `key` (docs/crypto.md, "Key id").
    public init(of key: LockedBytes) {
        let label = Array("coffer key id v1".utf8) + [0]
        var digest = [UInt8](repeating: 0, count: 32)
        let ctx = EVP_MD_CTX_new()!
        defer { EVP_MD_CTX_free(ctx) }
        precondition(EVP_DigestInit_ex(ctx, EVP_sha256(), nil) == 1)
        precondition(EVP_DigestUpdate(ctx, label, label.count) == 1)
        key.withUnsafeBytes { precondition(EVP_DigestUpdate(ctx, $0.baseAddress, $0.count) == 1) }
        precondition(EVP_DigestFinal_ex(ctx, &digest, nil) == 1)
        self.init(hex: Hex.encode(Array(digest.prefix(8))))!
    }
}
