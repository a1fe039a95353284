import FileStore
import Model

/// A secret as the mirror's PostgreSQL rows hold it (docs/mirror.md): one
/// row of metadata and one row per version, ciphertext only. Built from and
/// read back into a Secret with the store file's own encoders and checks,
/// so a row can never hold what a store file could not.
public struct SecretRow: Sendable, Equatable {
    public var name: String
    public var kind: String
    public var protection: String
    public var current: UInt64
    public var previous: UInt64?
    public var pending: UInt64?
    /// JSON: the store file's entry without its versions (stages, access,
    /// grace, expiry, operations). Never a value.
    public var metadata: String
    public var versions: [VersionRow]

    public init(name: String, kind: String, protection: String, current: UInt64, previous: UInt64?, pending: UInt64?,
                metadata: String, versions: [VersionRow]) {
        self.name = name
        self.kind = kind
        self.protection = protection
        self.current = current
        self.previous = previous
        self.pending = pending
        self.metadata = metadata
        self.versions = versions
    }
}

public struct VersionRow: Sendable, Equatable {
    public var version: UInt64
    /// The stage this version holds, if any (for people reading the table).
    public var stage: String?
    public var keyID: String
    public var salt: [UInt8]
    public var nonce: [UInt8]
    public var ciphertext: [UInt8]
    public var encoding: String
    /// JSON of the hash parameters (hashed secrets only).
    public var hash: String?
    public var createdAt: Int64
    public var createdBy: String
    /// The version's id ("" for versions made before ids existed).
    public var id: String

    public init(version: UInt64, stage: String?, keyID: String, salt: [UInt8], nonce: [UInt8], ciphertext: [UInt8],
                encoding: String, hash: String?, createdAt: Int64, createdBy: String, id: String) {
        self.id = id
        self.version = version
        self.stage = stage
        self.keyID = keyID
        self.salt = salt
        self.nonce = nonce
        self.ciphertext = ciphertext
        self.encoding = encoding
        self.hash = hash
        self.createdAt = createdAt
        self.createdBy = createdBy
    }
}

extension SecretRow {
    public init(_ secret: Secret) {
        self.init(
            name: secret.name.rawValue, kind: secret.kind.rawValue, protection: secret.protection.rawValue,
            current: secret.stages.current, previous: secret.stages.previous, pending: secret.stages.pending,
            metadata: StoreEntryEncoding.metadataJSON(of: secret),
            versions: secret.versions.map { v in
                VersionRow(version: v.version, stage: secret.stages.held(by: v.version).first?.rawValue,
                           keyID: v.sealed.keyID.hex, salt: v.sealed.salt, nonce: v.sealed.nonce, ciphertext: v.sealed.ciphertext,
                           encoding: v.encoding.rawValue, hash: v.hash.map(StoreEntryEncoding.hashJSON), createdAt: v.createdAt,
                           createdBy: v.createdBy, id: v.id ?? "")
            })
    }

    /// The secret these rows hold, checked as a store file's entry is
    /// (names, stages, hash parameters) and against the rows' own
    /// columns; the caller still checks the MAC and opens the records.
    public func secret() throws(StoreError) -> Secret {
        let name: SecretName
        do { name = try SecretName(self.name) } catch { throw StoreError(.corrupt, "a mirror row holds an invalid secret name") }
        var versions: [SecretVersion] = []
        for row in self.versions {
            guard let keyID = KeyID(hex: row.keyID), let encoding = ValueEncoding(rawValue: row.encoding) else {
                throw StoreError(.corrupt, "a mirror row of \(name) holds an invalid key id or encoding")
            }
            let hash = try row.hash.map { (text) throws(StoreError) in
                try StoreEntryEncoding.hashParameters(json: text, source: "a mirror row of \(name)")
            }
            versions.append(SecretVersion(
                version: row.version, sealed: SealedRecord(keyID: keyID, salt: row.salt, nonce: row.nonce, ciphertext: row.ciphertext),
                encoding: encoding, createdAt: row.createdAt, createdBy: row.createdBy, hash: hash, id: row.id.isEmpty ? nil : row.id))
        }
        let secret = try StoreEntryEncoding.secret(named: name, metadataJSON: metadata, versions: versions, source: "a mirror row")
        guard secret.kind.rawValue == kind, secret.protection.rawValue == protection, secret.stages.current == current,
              secret.stages.previous == previous, secret.stages.pending == pending
        else { throw StoreError(.corrupt, "the mirror rows of \(name) disagree with their metadata") }
        return secret
    }

    /// What the rows' MAC covers: the store id, the change_seq, whether the secret is
    /// deleted, and the same encoding as the secret's part of the store
    /// file's MAC. Stages and expiry are outside the records' AAD; this is
    /// what keeps an edit in the database from moving them.
    /// `sequence` (the row's change_seq) makes a row's MAC good for that
    /// one change only: an older row put back under a new change_seq, for
    /// the other hosts to take, fails.
    public static func canonical(storeID: String, name: String, deletedAt: Int64?, secret: Secret?, sequence: Int64) -> [UInt8] {
        var out = LengthPrefixedFields()
        out.add("mirror.store_id", storeID)
        out.add("mirror.change_seq", decimal: sequence)
        out.add("mirror.name", name)
        out.add("mirror.deleted_at", deletedAt.map { String($0) } ?? "")
        if let secret { StoreEntryEncoding.macFields(of: secret, into: &out) }
        return out.bytes
    }
}
