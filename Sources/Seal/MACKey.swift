import CCofferShims
import CLibCrypto
import LockedMemory

/// HMAC-SHA256 under one key (made by `RecordSealer.mac`). The key stays in
/// locked memory. Each use keys a pooled context and re-keys it with zeros
/// afterwards, so no key schedule lingers in the ordinary heap between uses
/// (as the cipher contexts are scrubbed), while a use costs no algorithm
/// lookup and no allocation (the one-shot HMAC(3) does both, every call).
public final class MACKey: Sendable {
    private let key: LockedBytes
    private let contexts: HMACContexts

    init(key: LockedBytes, contexts: HMACContexts) {
        self.key = key
        self.contexts = contexts
    }

    /// The MAC of `data`.
    public func callAsFunction(_ data: [UInt8]) -> [UInt8] {
        authenticate { $0.update(data) }
    }

    /// The MAC of everything `feed` hands to its input, in order. A long
    /// input (a store file's canonical form is some 20 MB with 100k secrets)
    /// goes in piece by piece as it is made, instead of being built whole.
    public func authenticate(_ feed: (MACInput) -> Void) -> [UInt8] {
        contexts.with { ctx in
            let keyed = key.withUnsafeBytes { k in
                EVP_MAC_init(ctx, k.bindMemory(to: UInt8.self).baseAddress, k.count, nil)
            }
            Self.require(keyed, "EVP_MAC_init")
            feed(MACInput(context: ctx))
            var digest = [UInt8](repeating: 0, count: Self.digestCount)
            var length = 0
            Self.require(EVP_MAC_final(ctx, &digest, &length, digest.count), "EVP_MAC_final")
            Self.require(length == Self.digestCount ? 1 : 0, "EVP_MAC_final length")
            return digest
        }
    }

    static let digestCount = 32

    /// HMAC-SHA256 with a valid key fails only when OpenSSL cannot allocate.
    /// A MAC that was not computed must never be written or compared as if
    /// it were, so that stops the process (as Swift's own allocation
    /// failures do) rather than return something that looks like a digest.
    static func require(_ rc: Int32, _ what: String) {
        guard rc == 1 else { fatalError("HMAC-SHA256: \(what) failed in OpenSSL") }
    }
}

/// What `MACKey.authenticate` feeds: bytes go straight into the HMAC.
public struct MACInput {
    fileprivate let context: OpaquePointer

    public func update(_ bytes: UnsafeRawBufferPointer) {
        guard bytes.count > 0 else { return }
        MACKey.require(EVP_MAC_update(context, bytes.bindMemory(to: UInt8.self).baseAddress, bytes.count), "EVP_MAC_update")
    }

    public func update(_ bytes: [UInt8]) {
        bytes.withUnsafeBytes { update($0) }
    }
}

/// The HMAC algorithm, fetched once, and a pool of SHA-256 HMAC contexts.
/// A class of its own so that the keys a `RecordSealer` made keep it (and
/// the fetched algorithm) alive after the sealer is gone.
final class HMACContexts: Sendable {
    private nonisolated(unsafe) let mac: OpaquePointer
    private let pool: ContextPool

    init() {
        guard let mac = EVP_MAC_fetch(nil, "HMAC", nil) else { fatalError("OpenSSL lacks HMAC") }
        self.mac = mac
        pool = ContextPool(make: { coffer_hmac_sha256_ctx_new(mac) }, free: { EVP_MAC_CTX_free($0) })
    }

    deinit {
        pool.drain()
        EVP_MAC_free(mac)
    }

    func with<R>(_ body: (OpaquePointer) -> R) -> R {
        let result: R
        do {
            result = try pool.with { ctx in
                defer { scrub(ctx) }
                return body(ctx)
            }
        } catch {
            fatalError("HMAC-SHA256: no context: \(error)")
        }
        return result
    }

    /// Re-keys with zeros: the key's inner and outer hash states, which
    /// would let anyone who reads them forge MACs, do not stay behind.
    private func scrub(_ ctx: OpaquePointer) {
        let zero = [UInt8](repeating: 0, count: MACKey.digestCount)
        MACKey.require(EVP_MAC_init(ctx, zero, zero.count, nil), "EVP_MAC_init (scrub)")
    }
}
