import Foundation
import Keyring
import Model
import Seal

/// The on-disk form of a snapshot (docs/file-format.md): JSON, names and
/// metadata readable (useful in git diffs), values only as ciphertext, and a
/// whole-file MAC so that any change made outside cofferd is detected.
struct StoreFileFormat: Encodable {
    static let magic = "coffer-store"
    static let currentVersion = 2

    struct Entry: Encodable, Equatable {
        var name: String
        var kind: SecretKind
        var protection: Protection
        var versions: [VersionEntry]
        /// Absent when unrestricted.
        var access: SecretAccess?
        /// Absent only in files written before stages existed (the newest
        /// version is then current).
        var stages: StagesEntry?
        var graceSeconds: Int64?
        var expiresAt: Int64?
        var operations: [String]?

        enum CodingKeys: String, CodingKey {
            case name, kind, protection, versions, access, stages, operations
            case graceSeconds = "grace_seconds"
            case expiresAt = "expires_at"
        }
    }

    struct VersionEntry: Encodable, Equatable {
        var version: UInt64
        var sealed: SealedRecord
        var encoding: ValueEncoding
        var createdAt: Int64
        var createdBy: String
        var hash: HashEntry?
        var id: String?

        enum CodingKeys: String, CodingKey {
            case version, sealed, encoding, hash, id
            case createdAt = "created_at"
            case createdBy = "created_by"
        }
    }

    struct StagesEntry: Encodable, Equatable {
        var current: UInt64
        var previous: UInt64?
        var pending: UInt64?
        var changedAt: Int64
        var changedBy: String
        var previousUntil: Int64?

        enum CodingKeys: String, CodingKey {
            case current, previous, pending
            case changedAt = "changed_at"
            case changedBy = "changed_by"
            case previousUntil = "previous_until"
        }
    }

    /// A hashed version's algorithm and, for scrypt, its cost and salt.
    struct HashEntry: Encodable, Equatable {
        var algorithm: String
        var n: UInt64?
        var r: UInt32?
        var p: UInt32?
        var salt: String?

        init(_ parameters: HashParameters) {
            algorithm = parameters.algorithm
            if case .scrypt(let n, let r, let p, let salt) = parameters {
                self.n = n
                self.r = r
                self.p = p
                self.salt = Base64.encode(salt)
            }
        }

        init(algorithm: String, n: UInt64?, r: UInt32?, p: UInt32?, salt: String?) {
            self.algorithm = algorithm
            self.n = n
            self.r = r
            self.p = p
            self.salt = salt
        }

        var parameters: HashParameters? {
            switch algorithm {
            case "hmac-sha256": return n == nil && r == nil && p == nil && salt == nil ? .hmacSHA256 : nil
            case "scrypt":
                guard let n, let r, let p, let salt = salt.flatMap({ Base64.decode(Array($0.utf8)) }) else { return nil }
                return .scrypt(n: n, r: r, p: p, salt: salt)
            default: return nil
            }
        }
    }

    var format: String
    var formatVersion: Int
    var storeID: String
    var generation: UInt64
    /// Every master key id the records are sealed under (sorted).
    var keyIDs: [String]?
    /// The key the MAC was made with, and the MAC (hex); absent in v1.
    var macKeyID: String?
    var mac: String?
    var secrets: [Entry]
    /// The mirror's outbox, sorted by name; absent when empty.
    var outbox: [OutboxItem]?

    struct OutboxItem: Encodable, Equatable {
        var name: String
        var generation: UInt64
        var queuedAt: Int64

        enum CodingKeys: String, CodingKey {
            case name, generation
            case queuedAt = "queued_at"
        }
    }

    enum CodingKeys: String, CodingKey {
        case outbox
        case format
        case formatVersion = "format_version"
        case storeID = "store_id"
        case generation
        case keyIDs = "key_ids"
        case macKeyID = "mac_key_id"
        case mac
        case secrets
    }

    init(_ snapshot: StoreSnapshot, authenticator: StoreAuthenticator) throws {
        let (keyID, key) = try authenticator.current()
        try self.init(snapshot, macKeyID: keyID, key: key)
    }

    /// Authenticated by `key`, the MAC key of master key `macKeyID`.
    init(_ snapshot: StoreSnapshot, macKeyID keyID: String, key: MACKey) throws {
        format = Self.magic
        formatVersion = Self.currentVersion
        storeID = snapshot.storeID
        generation = snapshot.generation
        secrets = snapshot.secrets.map { Entry($0) }
        outbox = snapshot.outbox.isEmpty ? nil : snapshot.outbox.keys.sorted().map { name in
            OutboxItem(name: name.rawValue, generation: snapshot.outbox[name]!.generation, queuedAt: snapshot.outbox[name]!.queuedAt)
        }
        keyIDs = Array(Set(secrets.flatMap { $0.versions.map(\.sealed.keyID.hex) })).sorted()
        macKeyID = keyID
        mac = Hex.encode(try computedMAC(with: key))
    }

    /// What the MAC covers: every field but the MAC itself, records in file
    /// order, each value length-prefixed (no two files share an encoding).
    /// Whitespace and member order inside objects do not matter; content
    /// and record order do. Handed to `sink` in pieces of about 64 KiB, so
    /// the MAC takes it as it is made (it is some 20 MB with 100k secrets).
    func canonical(into sink: (UnsafeRawBufferPointer) -> Void) {
        let piece = 1 << 16
        var out = LengthPrefixedFields()
        out.reserve(piece + 4096)
        out.add("format", format)
        out.add("format_version", decimal: formatVersion)
        out.add("store_id", storeID)
        out.add("generation", decimal: generation)
        out.add("key_ids", (keyIDs ?? []).joined(separator: ","))
        out.add("mac_key_id", macKeyID ?? "")
        for entry in secrets {
            entry.canonical(into: &out)
            if out.bytes.count >= piece { out.flush(into: sink) }
        }
        for item in outbox ?? [] {
            out.add("outbox.name", item.name)
            out.add("outbox.generation", decimal: item.generation)
            out.add("outbox.queued_at", decimal: item.queuedAt)
        }
        out.flush(into: sink)
    }

    /// The MAC of the canonical form under `key`.
    func computedMAC(with key: MACKey) throws -> [UInt8] {
        try key.authenticate { update in canonical(into: update) }
    }

    /// Parses and checks a store file. `authenticator` checks the MAC; a
    /// version 1 file (no MAC, written before it existed) is taken only
    /// when `acceptUnauthenticated` (at startup, to be rewritten at once).
    static func decode(
        _ bytes: [UInt8], authenticator: StoreAuthenticator, acceptUnauthenticated: Bool = false
    ) throws(StoreError) -> StoreSnapshot {
        try decodeWithVersion(bytes, authenticator: authenticator, acceptUnauthenticated: acceptUnauthenticated).snapshot
    }

    /// The snapshot and the file's format version (an old one is rewritten).
    static func decodeWithVersion(
        _ bytes: [UInt8], authenticator: StoreAuthenticator, acceptUnauthenticated: Bool = false
    ) throws(StoreError) -> (snapshot: StoreSnapshot, formatVersion: Int, macKeyID: String?, mac: [UInt8]?) {
        let file = try StoreFileFormat(parsing: bytes)
        guard file.format == magic else { throw StoreError(.corrupt, "the store file does not start with the coffer-store header") }
        let authentic: (@Sendable () -> Result<Bool, StoreError>)?
        switch file.formatVersion {
        case currentVersion:
            guard let keyID = file.macKeyID, let mac = file.mac.flatMap(Hex.decode) else {
                throw StoreError(.tampered, "the store file has no MAC")
            }
            guard let key = authenticator.mac(forKeyID: keyID) else {
                throw StoreError(.tampered, "the store file's MAC is keyed by \(keyID.prefix(16)), which this keyring does not hold")
            }
            authentic = {
                do { return .success(ConstantTime.equals(try file.computedMAC(with: key), mac)) } catch {
                    // Not a verdict on the file: it is neither taken nor
                    // called tampered, and a later reload tries again.
                    return .failure(StoreError(.io, "the store file's MAC could not be computed", underlying: "\(error)"))
                }
            }
        case 1 where acceptUnauthenticated:
            // Nothing added after version 1 may arrive unauthenticated and
            // then be written out under a MAC.
            guard file.outbox == nil, file.secrets.allSatisfy({ e in
                e.stages == nil && e.graceSeconds == nil && e.expiresAt == nil && e.operations == nil
                    && e.versions.allSatisfy { $0.hash == nil && $0.id == nil }
            }) else { throw StoreError(.corrupt, "a version 1 store file holds members version 1 never had") }
            authentic = nil
        default:
            throw StoreError(.corrupt, "the store file has format version \(file.formatVersion); this cofferd reads \(currentVersion)")
        }
        let secrets: PackedSecrets
        if file.secrets.count >= BothAtOnce.worthwhileRecords {
            // After the parse, checking the MAC and packing the records are
            // a load's two largest steps, and each only reads the parsed
            // file: a large one does both at once. Packing then reads input
            // not yet authenticated, so it must refuse anything invalid
            // with an error, never trap (entry.secret(named:) checks every
            // field before a record is packed; a file is at most 1 GiB, so
            // packed offsets fit their UInt32s).
            let (verdict, packed) = BothAtOnce.run({ authentic?() ?? .success(true) }, {
                Result { () throws(StoreError) in try packedSecrets(of: file) }
            })
            try requireAuthentic(verdict)
            secrets = try packed.get()
        } else {
            try requireAuthentic(authentic?() ?? .success(true))
            secrets = try packedSecrets(of: file)
        }
        var outbox: [SecretName: OutboxEntry] = [:]
        for item in file.outbox ?? [] {
            guard let name = try? SecretName(item.name), outbox[name] == nil, item.generation <= file.generation else {
                throw StoreError(.corrupt, "the store file's outbox holds an invalid or repeated entry")
            }
            outbox[name] = OutboxEntry(generation: item.generation, queuedAt: item.queuedAt)
        }
        return (StoreSnapshot(storeID: file.storeID, generation: file.generation, secrets: LayeredSecrets(base: secrets), outbox: Outbox(outbox)),
                file.formatVersion, file.macKeyID, file.mac.flatMap(Hex.decode))
    }

    /// The MAC's verdict comes first: a file that fails it is refused as
    /// tampered, whatever its records hold.
    private static func requireAuthentic(_ verdict: Result<Bool, StoreError>) throws(StoreError) {
        guard try verdict.get() else {
            throw StoreError(.tampered, "the store file's MAC does not match: it was changed outside cofferd")
        }
    }

    /// The file's records, checked (valid names, sorted and unique) and packed.
    private static func packedSecrets(of file: StoreFileFormat) throws(StoreError) -> PackedSecrets {
        var secrets = PackedSecrets.Packer()
        var previous: SecretName?
        for entry in file.secrets {
            let name: SecretName
            do { name = try SecretName(entry.name) } catch {
                throw StoreError(.corrupt, "the store file holds an invalid secret name")
            }
            // Sorted and unique: a duplicated or reordered record is refused
            // even where a MAC would not apply (version 1).
            if let previous, !(previous < name) {
                throw StoreError(.corrupt, "the store file's records are duplicated or out of order at \(name)")
            }
            previous = name
            secrets.append(try entry.secret(named: name))
        }
        return secrets.packed()
    }
}

extension StoreFileFormat.Entry {
    /// Without `versions`, the entry's metadata only (the mirror's
    /// metadata column: versions travel as rows of their own).
    init(_ s: Secret, versions withVersions: Bool = true) {
        name = s.name.rawValue
        kind = s.kind
        protection = s.protection
        versions = withVersions ? s.versions.map(StoreFileFormat.VersionEntry.init) : []
        access = s.access.isUnrestricted ? nil : s.access
        stages = StoreFileFormat.StagesEntry(current: s.stages.current, previous: s.stages.previous, pending: s.stages.pending,
                                             changedAt: s.stages.changedAt, changedBy: s.stages.changedBy,
                                             previousUntil: s.stages.previousAcceptedUntil)
        graceSeconds = s.graceSeconds == 0 ? nil : s.graceSeconds
        expiresAt = s.expiresAt
        operations = s.operations.isEmpty ? nil : s.operations
    }

    /// The secret this entry holds, after checking what the MAC cannot:
    /// versions ascending, stages naming versions that exist, and hash
    /// parameters on exactly the versions of a hashed secret.
    func secret(named name: SecretName) throws(StoreError) -> Secret {
        guard !versions.isEmpty, zip(versions, versions.dropFirst()).allSatisfy({ $0.version < $1.version }) else {
            throw StoreError(.corrupt, "the versions of \(name) are missing or out of order")
        }
        var parsed: [SecretVersion] = []
        for v in versions {
            let hash = v.hash?.parameters
            guard (protection == .hashed) == (hash != nil), (v.hash == nil) == (hash == nil) else {
                throw StoreError(.corrupt, "\(name) version \(v.version) has missing or invalid hash parameters")
            }
            parsed.append(SecretVersion(version: v.version, sealed: v.sealed, encoding: v.encoding, createdAt: v.createdAt,
                                        createdBy: v.createdBy, hash: hash, id: v.id))
        }
        let known = Set(versions.map(\.version))
        let staged: SecretStages? = stages.map {
            SecretStages(current: $0.current, previous: $0.previous, pending: $0.pending, changedAt: $0.changedAt,
                         changedBy: $0.changedBy, previousAcceptedUntil: $0.previousUntil)
        }
        if let staged {
            for stage in Stage.allCases {
                if let number = staged[stage], !known.contains(number) {
                    throw StoreError(.corrupt, "the \(stage.rawValue) stage of \(name) names a version it does not have")
                }
            }
        }
        guard (0...Secret.maxGraceSeconds).contains(graceSeconds ?? 0) else {
            throw StoreError(.corrupt, "\(name) has a grace period out of range")
        }
        return Secret(name: name, kind: kind, protection: protection, versions: parsed, stages: staged,
                      access: access ?? .unrestricted, graceSeconds: graceSeconds ?? 0, expiresAt: expiresAt,
                      operations: operations ?? [])
    }
}

extension StoreFileFormat.VersionEntry {
    init(_ v: SecretVersion) {
        self.init(version: v.version, sealed: v.sealed, encoding: v.encoding, createdAt: v.createdAt, createdBy: v.createdBy,
                  hash: v.hash.map(StoreFileFormat.HashEntry.init), id: v.id)
    }
}

extension StoreFileFormat.Entry {
    /// This secret's part of the MAC input (see StoreFileFormat.canonical);
    /// the mirror MACs each secret's rows with it too.
    func canonical(into out: inout LengthPrefixedFields) {
        out.add("name", name)
        out.add("kind", kind.rawValue)
        out.add("protection", protection.rawValue)
        out.add("principals", (access?.principals ?? []).map(\.description).joined(separator: ","))
        switch access?.scope ?? .all {
        case .all: out.add("scope", "all")
        case .sockets(let s): out.add("scope", s.map(\.rawValue).sorted().joined(separator: ","))
        }
        // Members added after format 2 first shipped go in only when
        // present, so files written before them still check; a file
        // that drops one no longer matches its MAC.
        if let stages = stages {
            out.add("stages.current", decimal: stages.current)
            out.add("stages.previous", stages.previous.map { String($0) } ?? "")
            out.add("stages.pending", stages.pending.map { String($0) } ?? "")
            out.add("stages.changed_at", decimal: stages.changedAt)
            out.add("stages.changed_by", stages.changedBy)
            if let until = stages.previousUntil { out.add("stages.previous_until", decimal: until) }
        }
        if let grace = graceSeconds { out.add("grace_seconds", decimal: grace) }
        if let expiry = expiresAt { out.add("expires_at", decimal: expiry) }
        if let operations = operations { out.add("operations", operations.joined(separator: ",")) }
        for v in versions {
            out.add("version", decimal: v.version)
            out.add("encoding", v.encoding.rawValue)
            out.add("created_at", decimal: v.createdAt)
            out.add("created_by", v.createdBy)
            out.add("key_id", v.sealed.keyID.hex)
            out.add("salt", v.sealed.salt)
            out.add("nonce", v.sealed.nonce)
            out.add("ciphertext", v.sealed.ciphertext)
            if let hash = v.hash {
                out.add("hash.algorithm", hash.algorithm)
                out.add("hash.n", hash.n.map { String($0) } ?? "")
                out.add("hash.r", hash.r.map { String($0) } ?? "")
                out.add("hash.p", hash.p.map { String($0) } ?? "")
                out.add("hash.salt", hash.salt ?? "")
            }
            if let id = v.id { out.add("version.id", id) }
        }
    }
}
