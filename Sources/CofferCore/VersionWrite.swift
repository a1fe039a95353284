import Keyring
import LockedMemory
import Model
import Seal
#if canImport(Glibc)
import Glibc
#endif

/// What put, rotate and token.create ask the core to write: a value (given
/// or generated, already read into locked memory), the secret's options,
/// and what the write must find.
package struct VersionWrite: Sendable {
    package static let maxValueBytes = 48 * 1024

    package enum Existing: Sendable {
        /// put: the first version or the next.
        case optional
        /// rotate: the secret must exist.
        case required
    }

    /// put's and rotate's optional choices about the secret and its versions.
    package struct Options: Sendable {
        package var kind: SecretKind?
        package var protection: Protection?
        package var hash: HashParameters?
        package var graceSeconds: Int64?
        /// nil: unchanged; .some(nil): cleared.
        package var expiresAt: Int64??
        /// token.create's: the operations the token is for.
        package var operations: [String]?

        package init(kind: SecretKind? = nil, protection: Protection? = nil, hash: HashParameters? = nil,
                     graceSeconds: Int64? = nil, expiresAt: Int64?? = nil, operations: [String]? = nil) {
            self.kind = kind
            self.protection = protection
            self.hash = hash
            self.graceSeconds = graceSeconds
            self.expiresAt = expiresAt
            self.operations = operations
        }
    }

    package var name: SecretName
    package var value: LockedBytes
    package var encoding: ValueEncoding
    /// A generated value: a hashed secret then defaults to HMAC (high
    /// entropy), and the value is shown once in the answer.
    package var generated: Bool
    package var options: Options
    /// The secret's own principals and scope; nil: keep what it has.
    package var access: SecretAccess?
    package var existing: Existing
    package var event: SecretChange.Event
    package var pending: Bool
    /// token.create: protection hashed unless the options say otherwise.
    package var hashedByDefault: Bool

    package init(name: SecretName, value: LockedBytes, encoding: ValueEncoding, generated: Bool, options: Options,
                 access: SecretAccess?, existing: Existing, event: SecretChange.Event, pending: Bool = false,
                 hashedByDefault: Bool = false) {
        self.name = name
        self.value = value
        self.encoding = encoding
        self.generated = generated
        self.options = options
        self.access = access
        self.existing = existing
        self.event = event
        self.pending = pending
        self.hashedByDefault = hashedByDefault
    }

    /// What the write made.
    package struct Written: Sendable {
        package var version: UInt64
        package var stage: Stage
        package var protection: Protection
    }

    /// What the secret as it stands allows. Checked before hashing (which
    /// may take a while) and again under the store's writer lock, where a
    /// request that came in between may have changed it.
    package static func check(_ found: Secret?, named name: SecretName, existing: Existing, protection: Protection) throws(CofferError) {
        if existing == .required, found == nil {
            throw CofferError(.notFound, "no secret named \(name) to rotate; put creates it")
        }
        if let found, found.protection != protection {
            throw CofferError(.conflict, "\(name) is \(found.protection.rawValue); delete it to change its protection")
        }
    }
}

extension CofferServices {
    /// Writes one new version: derives what a hashed secret stores (scrypt
    /// on the blocking pool, under a permit), seals it as the secret's next
    /// version under the current key, applies the stage and retention rules
    /// and commits durably; then tells the watchers. `known` is the secret
    /// as the request saw it (checked again under the writer lock).
    package func write(_ request: VersionWrite, known: Secret?, by author: String) async throws -> VersionWrite.Written {
        guard request.value.count <= VersionWrite.maxValueBytes else {
            throw CofferError(.badRequest, "the value is larger than \(VersionWrite.maxValueBytes) bytes")
        }
        let name = request.name
        let options = request.options
        let protection = options.protection ?? (request.hashedByDefault ? .hashed : known?.protection ?? .sealed)
        try VersionWrite.check(known, named: name, existing: request.existing, protection: protection)
        if protection == .sealed, options.hash != nil {
            throw CofferError(.badRequest, "'hash' applies to protection hashed only")
        }
        // Hash first (scrypt takes a while), outside the store's writer lock.
        let hash: HashParameters? = protection == .sealed ? nil
            : try options.hash ?? (request.generated ? .hmacSHA256 : .scryptDefault(salt: SecureRandom.bytes(16)))
        let value = request.value
        let payload: LockedBytes
        if let hash, case .scrypt = hash {
            payload = try await scrypt.run(on: blockingPool) { try value.withUnsafeBytes { try ValueHashing.derive($0, hash) } }
        } else if let hash {
            payload = try value.withUnsafeBytes { try ValueHashing.derive($0, hash) }
        } else {
            payload = value
        }

        let keyring = self.keyring
        let sealer = self.sealer
        let now = Int64(time(nil))
        let existing = request.existing
        let pending = request.pending
        let encoding = request.encoding
        let access = request.access
        let retain = retainVersions
        let (version, finalAccess) = try await commit(touching: 1) { storeID, secrets in
            let found = secrets[name]
            try VersionWrite.check(found, named: name, existing: existing, protection: protection)
            var secret = found ?? Secret(name: name, kind: options.kind ?? .generic, protection: protection, versions: [])
            if let kind = options.kind { secret.kind = kind }
            if let access { secret.access = access }
            if let grace = options.graceSeconds { secret.graceSeconds = grace }
            if let expiry = options.expiresAt { secret.expiresAt = expiry }
            if let operations = options.operations { secret.operations = operations }
            // The key is taken under the store's writer lock: a master-key
            // rotation's commit (and the retiring that follows it) cannot
            // fall between taking it and committing with it.
            let number = try payload.withUnsafeBytes {
                try secret.addSealedVersion($0, storeID: storeID, key: keyring.current(), sealer: sealer, encoding: encoding,
                                            hash: hash, pending: pending, at: now, by: author, retain: retain)
            }
            secrets[name] = secret
            return (number, secret.access)
        }
        let stage = pending ? Stage.pending : .current
        publish([(SecretChange(event: request.event, name: name, version: version, stage: stage.rawValue), finalAccess)])
        return VersionWrite.Written(version: version, stage: stage, protection: protection)
    }
}

extension Secret {
    /// Seals `payload` as this secret's next version under `key`, adds it
    /// (current, or pending), applies retention, and returns its number:
    /// the one way a write makes a version (put, rotate, token.create,
    /// import). Call under the store's writer lock, with the key taken
    /// there.
    mutating func addSealedVersion(
        _ payload: UnsafeRawBufferPointer, storeID: String, key: MasterKey, sealer: RecordSealer, encoding: ValueEncoding,
        hash: HashParameters? = nil, pending: Bool = false, at now: Int64, by author: String, retain: Int
    ) throws -> UInt64 {
        let number = nextVersion
        let sealed = try sealer.seal(payload, for: identity(storeID: storeID, version: number), with: key)
        try add(SecretVersion(version: number, sealed: sealed, encoding: encoding, createdAt: now, createdBy: author,
                              hash: hash, id: try SecureRandom.hex(8)),
                pending: pending, at: now, by: author)
        applyRetention(keep: retain)
        return number
    }
}
