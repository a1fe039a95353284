import CCofferShims
import CLibCrypto
import Keyring
import LockedMemory
import Model
import Synchronization

/// AES-256-GCM envelope with a per-record key (docs/crypto.md):
///
///     record_key = HKDF-SHA256(ikm: master key, salt: 32 random bytes,
///                              info: "coffer record key v1", length: 32)
///     ciphertext || tag = AES-256-GCM(record_key, nonce: 12 random bytes,
///                                     aad: RecordIdentity + key id, plaintext)
///
/// The cipher and KDF are fetched once (EVP_CIPHER_fetch/EVP_KDF_fetch are
/// not free: they look up the provider by name) and contexts are pooled, since
/// every get opens a record.
public final class RecordSealer: Sendable {
    static let info = Array("coffer record key v1".utf8)

    // OpenSSL objects are thread-safe to share once fetched (EVP_CIPHER,
    // EVP_KDF are reference-counted, read-only). Contexts are not, so each is
    // used by one caller at a time through the pools.
    private nonisolated(unsafe) let cipher: OpaquePointer
    private nonisolated(unsafe) let kdf: OpaquePointer
    private let cipherContexts: ContextPool
    private let kdfContexts: ContextPool
    private let macContexts = HMACContexts()

    public init() {
        guard let cipher = EVP_CIPHER_fetch(nil, "AES-256-GCM", nil),
              let kdf = EVP_KDF_fetch(nil, "HKDF", nil)
        else { fatalError("OpenSSL lacks AES-256-GCM or HKDF") }
        self.cipher = cipher
        self.kdf = kdf
        cipherContexts = ContextPool(make: { EVP_CIPHER_CTX_new() }, free: { EVP_CIPHER_CTX_free($0) })
        kdfContexts = ContextPool(make: { EVP_KDF_CTX_new(kdf) }, free: { EVP_KDF_CTX_free($0) })
    }

    deinit {
        cipherContexts.drain()
        kdfContexts.drain()
        EVP_CIPHER_free(cipher)
        EVP_KDF_free(kdf)
    }

    /// Seals `plaintext` for `identity` under `key` with fresh salt and nonce.
    public func seal(_ plaintext: UnsafeRawBufferPointer, for identity: RecordIdentity, with key: MasterKey) throws -> SealedRecord {
        try seal(plaintext, for: identity, with: key,
                 salt: SecureRandom.bytes(SealedRecord.saltCount), nonce: SecureRandom.bytes(SealedRecord.nonceCount))
    }

    /// Deterministic form for the known-answer vectors in docs/crypto.md.
    /// Never reuse a (salt, nonce) pair outside tests.
    package func seal(
        _ plaintext: UnsafeRawBufferPointer, for identity: RecordIdentity, with key: MasterKey,
        salt: [UInt8], nonce: [UInt8]
    ) throws -> SealedRecord {
        precondition(salt.count == SealedRecord.saltCount && nonce.count == SealedRecord.nonceCount)
        let recordKey = try deriveRecordKey(master: key, salt: salt)
        let aad = identity.additionalData(keyID: key.id.hex)
        var out = [UInt8](repeating: 0, count: plaintext.count + SealedRecord.tagCount)
        try cipherContexts.with { ctx in
            defer { scrub(ctx) }
            try recordKey.withUnsafeBytes { k in
                try check(EVP_EncryptInit_ex2(ctx, cipher, k.bindMemory(to: UInt8.self).baseAddress, nonce, nil), "EncryptInit")
            }
            var length: Int32 = 0
            try check(EVP_EncryptUpdate(ctx, nil, &length, aad, Int32(aad.count)), "EncryptUpdate(aad)")
            try out.withUnsafeMutableBufferPointer { o in
                if plaintext.count > 0 {
                    try check(EVP_EncryptUpdate(ctx, o.baseAddress, &length,
                                                plaintext.bindMemory(to: UInt8.self).baseAddress, Int32(plaintext.count)), "EncryptUpdate")
                }
                var tail: Int32 = 0
                try check(EVP_EncryptFinal_ex(ctx, o.baseAddress! + Int(length), &tail), "EncryptFinal")
                try check(EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_AEAD_GET_TAG, Int32(SealedRecord.tagCount),
                                              o.baseAddress! + plaintext.count), "GET_TAG")
            }
        }
        return SealedRecord(keyID: key.id, salt: salt, nonce: nonce, ciphertext: out)
    }

    /// Opens `record` into locked memory. Fails with `.authenticationFailed`
    /// if any byte of the record, its identity or its key id differs.
    public func open(_ record: SealedRecord, for identity: RecordIdentity, keyring: Keyring) throws -> LockedBytes {
        try open(record, for: identity, with: keyring.key(for: record.keyID))
    }

    public func open(_ record: SealedRecord, for identity: RecordIdentity, with key: MasterKey) throws -> LockedBytes {
        guard record.salt.count == SealedRecord.saltCount, record.nonce.count == SealedRecord.nonceCount,
              record.ciphertext.count >= SealedRecord.tagCount
        else { throw SealError(.malformedRecord, "bad salt, nonce or ciphertext length") }
        guard record.keyID == key.id else { throw SealError(.authenticationFailed, "key id mismatch") }
        // Kept with the master key after the first open: a record read
        // again is not derived again (seal derives with a fresh salt, so
        // nothing there to keep).
        let recordKey = try key.recordKeys.key(for: record.salt) { try deriveRecordKey(master: key, salt: record.salt) }
        let aad = identity.additionalData(keyID: record.keyID.hex)
        let bodyCount = record.ciphertext.count - SealedRecord.tagCount
        let plaintext = try LockedBytes(count: bodyCount)
        try cipherContexts.with { ctx in
            defer { scrub(ctx) }
            try recordKey.withUnsafeBytes { k in
                try check(EVP_DecryptInit_ex2(ctx, cipher, k.bindMemory(to: UInt8.self).baseAddress, record.nonce, nil), "DecryptInit")
            }
            var length: Int32 = 0
            try check(EVP_DecryptUpdate(ctx, nil, &length, aad, Int32(aad.count)), "DecryptUpdate(aad)")
            try record.ciphertext.withUnsafeBufferPointer { c in
                try plaintext.withUnsafeMutableBytes { p in
                    let out = p.bindMemory(to: UInt8.self).baseAddress
                    if bodyCount > 0 {
                        try check(EVP_DecryptUpdate(ctx, out, &length, c.baseAddress, Int32(bodyCount)), "DecryptUpdate")
                    }
                    // SET_TAG copies the tag out of the record; GCM's final
                    // step writes nothing, the scratch block is for the API.
                    let tag = UnsafeMutableRawPointer(mutating: c.baseAddress! + bodyCount)
                    try check(EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_AEAD_SET_TAG, Int32(SealedRecord.tagCount), tag), "SET_TAG")
                    var tail: Int32 = 0
                    let finished = withUnsafeTemporaryAllocation(of: UInt8.self, capacity: 16) { scratch in
                        EVP_DecryptFinal_ex(ctx, scratch.baseAddress, &tail)
                    }
                    guard finished == 1 else {
                        ERR_clear_error()
                        plaintext.wipe()
                        throw SealError(.authenticationFailed, "GCM tag mismatch")
                    }
                }
            }
        }
        return plaintext
    }

    package func deriveRecordKey(master: MasterKey, salt: [UInt8]) throws -> LockedBytes {
        try derive(master: master, salt: salt, info: Self.info)
    }

    private func derive(master: MasterKey, salt: [UInt8], info: [UInt8]) throws -> LockedBytes {
        let out = try LockedBytes(count: 32)
        try kdfContexts.with { ctx in
            let rc = master.bytes.withUnsafeBytes { m in
                out.withUnsafeMutableBytes { o in
                    coffer_hkdf_sha256(ctx, m.bindMemory(to: UInt8.self).baseAddress, m.count, salt, salt.count,
                                       info, info.count, o.bindMemory(to: UInt8.self).baseAddress, o.count)
                }
            }
            try check(rc, "HKDF")
        }
        return out
    }

    /// What a keyed MAC is for: each purpose has its own HKDF info, so one
    /// key never serves two jobs.
    public enum MACPurpose: String, Sendable {
        /// The audit chain (docs/audit.md).
        case auditChain = "coffer audit chain v1"
        /// The store file's whole-file MAC (docs/file-format.md).
        case storeFile = "coffer store mac v1"
        /// The chain of the store's log (docs/file-format.md, "The log").
        case storeLog = "coffer store log v1"
        /// Each secret's rows in the PostgreSQL mirror (docs/mirror.md).
        case mirrorRow = "coffer mirror row v1"
    }

    /// HMAC-SHA256 under a key derived from `key` (HKDF, info per
    /// `purpose`), which stays in locked memory for as long as the returned
    /// key lives.
    public func mac(with key: MasterKey, for purpose: MACPurpose) throws -> MACKey {
        MACKey(key: try derive(master: key, salt: [], info: Array(purpose.rawValue.utf8)), contexts: macContexts)
    }

    /// Re-keys the context with a zero key so that the record key's schedule
    /// does not linger in the (ordinary heap) context between uses.
    private func scrub(_ ctx: OpaquePointer) {
        _ = EVP_CipherInit_ex2(ctx, cipher, Self.zeroKey, nil, 1, nil)
    }

    private static let zeroKey = [UInt8](repeating: 0, count: 32)

}

private func check(_ rc: Int32, _ what: String) throws {
    guard rc == 1 else {
        ERR_clear_error()
        throw SealError(.cryptoFailure, what)
    }
}

/// A small free list of OpenSSL contexts, so concurrent callers each get their own.
final class ContextPool: Sendable {
    /// An idle context. @unchecked: the pool hands each to one caller at a time.
    private struct Idle: @unchecked Sendable { let pointer: OpaquePointer }

    private nonisolated(unsafe) let make: () -> OpaquePointer?
    private nonisolated(unsafe) let free: (OpaquePointer) -> Void
    private let idle = Mutex<[Idle]>([])

    init(make: @escaping () -> OpaquePointer?, free: @escaping (OpaquePointer) -> Void) {
        self.make = make
        self.free = free
    }

    /// Runs `body` with a context no one else uses meanwhile. `reset`, run
    /// afterwards, says whether the context is fit to pool again; if not,
    /// it is freed.
    func with<R>(_ body: (OpaquePointer) throws -> R, reset: (OpaquePointer) -> Bool = { _ in true }) throws -> R {
        guard let ctx = idle.withLock({ $0.popLast()?.pointer }) ?? make() else {
            throw SealError(.cryptoFailure, "context allocation failed")
        }
        defer {
            let returned = Idle(pointer: ctx)
            let kept = reset(ctx) && idle.withLock { list -> Bool in
                guard list.count < 64 else { return false }
                list.append(returned)
                return true
            }
            if !kept { free(ctx) }
        }
        return try body(ctx)
    }

    func drain() {
        let all = idle.withLock { list -> [Idle] in
            let taken = list
            list = []
            return taken
        }
        for context in all { free(context.pointer) }
    }
}
