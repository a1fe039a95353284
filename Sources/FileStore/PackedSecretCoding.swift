import Keyring
import Model
import Seal

/// One secret as a packed record (docs/performance.md, "Memory"): its
/// fields in a fixed order, numbers as varints, strings and byte fields
/// length-prefixed, optional fields behind flag bits. The encoding is a
/// function of the secret alone (a scope's sockets are sorted), so two
/// equal secrets pack to the same bytes, and PackedSecrets compares
/// snapshots by their bytes. It lives only in memory; the file stays JSON.
enum PackedSecretCoding {
    private enum SecretFlag {
        static let hashed: UInt8 = 1 << 0
        static let expires: UInt8 = 1 << 1
        static let previous: UInt8 = 1 << 2
        static let pending: UInt8 = 1 << 3
        static let previousUntil: UInt8 = 1 << 4
        static let scopedToSockets: UInt8 = 1 << 5
    }

    private enum VersionFlag {
        static let binary: UInt8 = 1 << 0
        static let hmacHash: UInt8 = 1 << 1
        static let scryptHash: UInt8 = 1 << 2
        /// The usual id, 16 lowercase hex digits, held as its 8 bytes.
        static let hexID: UInt8 = 1 << 3
        static let textID: UInt8 = 1 << 4
    }

    static func encode(_ secret: Secret, into out: inout PackedRecordWriter) {
        // The name comes first: lookups compare it without decoding the rest.
        out.string(secret.name.rawValue)
        var flags: UInt8 = secret.protection == .hashed ? SecretFlag.hashed : 0
        if secret.expiresAt != nil { flags |= SecretFlag.expires }
        if secret.stages.previous != nil { flags |= SecretFlag.previous }
        if secret.stages.pending != nil { flags |= SecretFlag.pending }
        if secret.stages.previousAcceptedUntil != nil { flags |= SecretFlag.previousUntil }
        if case .sockets = secret.access.scope { flags |= SecretFlag.scopedToSockets }
        out.byte(flags)
        // Right after the flags, so `summary` reads them without decoding.
        out.unsigned(UInt64(secret.versions.count))
        out.string(secret.kind.rawValue)
        out.signed(secret.graceSeconds)
        if let expiry = secret.expiresAt { out.signed(expiry) }
        out.unsigned(UInt64(secret.operations.count))
        for operation in secret.operations { out.string(operation) }
        out.unsigned(UInt64(secret.access.principals.count))
        for principal in secret.access.principals { out.string(principal.description) }
        if case .sockets(let listeners) = secret.access.scope {
            let sorted = listeners.map(\.rawValue).sorted()
            out.unsigned(UInt64(sorted.count))
            for listener in sorted { out.string(listener) }
        }
        let stages = secret.stages
        out.unsigned(stages.current)
        if let previous = stages.previous { out.unsigned(previous) }
        if let pending = stages.pending { out.unsigned(pending) }
        out.signed(stages.changedAt)
        out.string(stages.changedBy)
        if let until = stages.previousAcceptedUntil { out.signed(until) }
        for version in secret.versions { encode(version, into: &out) }
    }

    private static func encode(_ version: SecretVersion, into out: inout PackedRecordWriter) {
        var flags: UInt8 = version.encoding == .binary ? VersionFlag.binary : 0
        switch version.hash {
        case nil: break
        case .hmacSHA256?: flags |= VersionFlag.hmacHash
        case .scrypt?: flags |= VersionFlag.scryptHash
        }
        let hexID = version.id.flatMap { $0.utf8.count == 16 ? Hex.decode($0) : nil }
        if hexID != nil { flags |= VersionFlag.hexID } else if version.id != nil { flags |= VersionFlag.textID }
        out.byte(flags)
        out.unsigned(version.version)
        // A key id is always 16 lowercase hex digits (KeyID).
        out.bytes.append(contentsOf: Hex.decode(version.sealed.keyID.hex)!)
        out.data(version.sealed.salt)
        out.data(version.sealed.nonce)
        out.data(version.sealed.ciphertext)
        out.signed(version.createdAt)
        out.string(version.createdBy)
        if case .scrypt(let n, let r, let p, let salt)? = version.hash {
            out.unsigned(n)
            out.unsigned(UInt64(r))
            out.unsigned(UInt64(p))
            out.data(salt)
        }
        if let hexID { out.bytes.append(contentsOf: hexID) } else if let id = version.id { out.string(id) }
    }

    /// The name a record starts with, in place.
    static func name(of record: UnsafeRawBufferPointer) -> UnsafeRawBufferPointer {
        var reader = PackedRecordReader(bytes: record, index: 0)
        return reader.data()
    }

    /// How many versions a record holds, and whether it is hashed.
    static func summary(of record: UnsafeRawBufferPointer) -> (versions: Int, hashed: Bool) {
        var reader = PackedRecordReader(bytes: record, index: 0)
        _ = reader.data()
        let flags = reader.byte()
        return (Int(reader.unsigned()), flags & SecretFlag.hashed != 0)
    }

    /// Decodes one record. `name`, when the caller already holds it (a
    /// lookup by name), is used instead of making the string again;
    /// `keys` hands back shared KeyIDs instead of one string per version.
    static func decode(_ record: UnsafeRawBufferPointer, name known: SecretName?, keys: KnownKeyIDs) -> Secret {
        var r = PackedRecordReader(bytes: record, index: 0)
        let nameBytes = r.data()
        let name = known ?? packed { () throws(CofferError) in try SecretName(String(decoding: nameBytes, as: UTF8.self)) }
        let flags = r.byte()
        let versionCount = r.unsigned()
        let kindText = r.string()
        let kind = packed { () throws(CofferError) in try SecretKind(kindText) }
        let grace = r.signed()
        let expiry = flags & SecretFlag.expires != 0 ? r.signed() : nil
        let operations = (0..<r.unsigned()).map { _ in r.string() }
        let principals = (0..<r.unsigned()).map { _ in
            let text = r.string()
            return packed { () throws(CofferError) in try Principal.parse(text, directory: NumericAccounts()) }
        }
        var scope = SecretScope.all
        if flags & SecretFlag.scopedToSockets != 0 {
            scope = .sockets(Set((0..<r.unsigned()).map { _ in
                guard let listener = Listener(rawValue: r.string()) else { preconditionFailure("a packed listener does not parse back") }
                return listener
            }))
        }
        let current = r.unsigned()
        let previous = flags & SecretFlag.previous != 0 ? r.unsigned() : nil
        let pending = flags & SecretFlag.pending != 0 ? r.unsigned() : nil
        let changedAt = r.signed()
        let changedBy = r.string()
        let until = flags & SecretFlag.previousUntil != 0 ? r.signed() : nil
        let versions = (0..<versionCount).map { _ in decodeVersion(&r, keys: keys) }
        precondition(r.index == record.count, "packed record has trailing bytes")
        return Secret(
            name: name, kind: kind, protection: flags & SecretFlag.hashed != 0 ? .hashed : .sealed, versions: versions,
            stages: SecretStages(current: current, previous: previous, pending: pending, changedAt: changedAt,
                                 changedBy: changedBy, previousAcceptedUntil: until),
            access: SecretAccess(principals: principals, scope: scope), graceSeconds: grace, expiresAt: expiry,
            operations: operations)
    }

    /// A field this process validated before packing it: failing again is a
    /// bug, and traps without showing the field.
    static func packed<T>(_ make: () throws(CofferError) -> T) -> T {
        do { return try make() } catch { preconditionFailure("a packed field does not parse back") }
    }

    private static func decodeVersion(_ r: inout PackedRecordReader, keys: KnownKeyIDs) -> SecretVersion {
        let flags = r.byte()
        let number = r.unsigned()
        let keyBytes = r.fixed(8)
        let sealed = SealedRecord(keyID: keys.keyID(keyBytes), salt: r.array(), nonce: r.array(), ciphertext: r.array())
        let createdAt = r.signed()
        let createdBy = r.string()
        var hash: HashParameters?
        if flags & VersionFlag.hmacHash != 0 { hash = .hmacSHA256 }
        if flags & VersionFlag.scryptHash != 0 {
            hash = .scrypt(n: r.unsigned(), r: UInt32(truncatingIfNeeded: r.unsigned()), p: UInt32(truncatingIfNeeded: r.unsigned()),
                           salt: r.array())
        }
        var id: String?
        if flags & VersionFlag.hexID != 0 {
            id = Hex.encode(Array(r.fixed(8)))
        } else if flags & VersionFlag.textID != 0 {
            id = r.string()
        }
        return SecretVersion(version: number, sealed: sealed, encoding: flags & VersionFlag.binary != 0 ? .binary : .text,
                             createdAt: createdAt, createdBy: createdBy, hash: hash, id: id)
    }
}

/// The master key ids a set of records is sealed under (a handful), so a
/// decoded version shares one KeyID instead of making its 16-digit string
/// again on every read.
struct KnownKeyIDs: Sendable {
    private(set) var keys: [(bytes: [UInt8], id: KeyID)] = []

    mutating func note(_ id: KeyID) {
        guard !keys.contains(where: { $0.id == id }), let bytes = Hex.decode(id.hex) else { return }
        keys.append((bytes, id))
    }

    func keyID(_ bytes: UnsafeRawBufferPointer) -> KeyID {
        if let known = keys.first(where: { $0.bytes.elementsEqual(bytes) }) { return known.id }
        return KeyID(hex: Hex.encode(Array(bytes)))!
    }
}
