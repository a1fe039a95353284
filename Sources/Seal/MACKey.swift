import CCofferShims
import CLibCrypto
import LockedMemory

/// HMAC-SHA256 under one key (made by `RecordSealer.mac`).
///
/// The key is held in locked memory. Each use keys a pooled context, which
/// costs no algorithm lookup (the one-shot HMAC(3) fetched HMAC and SHA-256
/// by name on every call); OpenSSL copies the key into its secure heap for
/// the use, and the context holds the key's inner and outer hash states in
/// the ordinary heap while it runs. Afterwards the context is re-keyed with
/// zeros, or freed if that fails, so neither lingers between uses (as the
/// cipher contexts are scrubbed).
///
/// A use can fail: the secure heap is shared with the plaintexts of the gets
/// in progress, and OpenSSL does not fall back to ordinary memory when it
/// is full. That throws (`SealError.cryptoFailure`), and the caller refuses
/// what needed the MAC; a MAC that was not computed is never returned.
public final class MACKey: Sendable {
    private let key: LockedBytes
    private let contexts: HMACContexts

    init(key: LockedBytes, contexts: HMACContexts) {
        self.key = key
        self.contexts = contexts
    }

    /// The MAC of `data`.
    public func callAsFunction(_ data: [UInt8]) throws -> [UInt8] {
        try authenticate { update in data.withUnsafeBytes(update) }
    }

    /// The MAC of everything `feed` passes to `update`, in order. A long
    /// input (a store file's canonical form is some 20 MB with 100k secrets)
    /// goes in piece by piece as it is made, instead of being built whole.
    /// `update` cannot outlive the call: the context behind it goes back to
    /// the pool when `authenticate` returns.
    public func authenticate(_ feed: (_ update: (UnsafeRawBufferPointer) -> Void) -> Void) throws -> [UInt8] {
        try contexts.with { ctx in
            let keyed = key.withUnsafeBytes { k in
                EVP_MAC_init(ctx, k.bindMemory(to: UInt8.self).baseAddress, k.count, nil)
            }
            try Self.check(keyed, "EVP_MAC_init")
            var updated: Int32 = 1
            feed { bytes in
                guard updated == 1, bytes.count > 0 else { return }
                updated = EVP_MAC_update(ctx, bytes.bindMemory(to: UInt8.self).baseAddress, bytes.count)
            }
            try Self.check(updated, "EVP_MAC_update")
            var digest = [UInt8](repeating: 0, count: Self.digestCount)
            var length = 0
            try Self.check(EVP_MAC_final(ctx, &digest, &length, digest.count), "EVP_MAC_final")
            guard length == Self.digestCount else { throw SealError(.cryptoFailure, "EVP_MAC_final gave \(length) bytes") }
            return digest
        }
    }

    static let digestCount = 32

    private static func check(_ rc: Int32, _ what: String) throws {
        guard rc == 1 else {
            ERR_clear_error()
            throw SealError(.cryptoFailure, "HMAC-SHA256: \(what) failed (is locked memory exhausted?)")
        }
    }
}

/// The HMAC algorithm, fetched once, and a pool of SHA-256 HMAC contexts.
/// A class of its own so that the keys a `RecordSealer` made keep it (and
/// the fetched algorithm) alive after the sealer is gone.
final class HMACContexts: Sendable {
    private nonisolated(unsafe) let mac: OpaquePointer
    private let pool: ContextPool
    /// The zero key a context is re-keyed with after each use.
    private static let zeroKey = [UInt8](repeating: 0, count: 32)

    init() {
        guard let mac = EVP_MAC_fetch(nil, "HMAC", nil) else { fatalError("OpenSSL lacks HMAC") }
        self.mac = mac
        pool = ContextPool(make: { coffer_hmac_sha256_ctx_new(mac) }, free: { EVP_MAC_CTX_free($0) })
    }

    deinit {
        pool.drain()
        EVP_MAC_free(mac)
    }

    /// Runs `body` with a context of its own. Afterwards the context is
    /// re-keyed with zeros, so the key's hash states do not stay behind; if
    /// even that fails, it is freed (which clears it) instead of pooled.
    func with<R>(_ body: (OpaquePointer) throws -> R) throws -> R {
        try pool.with(body, reset: { ctx in
            let scrubbed = EVP_MAC_init(ctx, Self.zeroKey, Self.zeroKey.count, nil) == 1
            if !scrubbed { ERR_clear_error() }
            return scrubbed
        })
    }
}
