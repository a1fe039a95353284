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

    struct Entry: Encodable {
        var name: String
        var kind: SecretKind
        var protection: Protection
        var versions: [SecretVersion]
        /// Absent when unrestricted.
        var access: SecretAccess?
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

    enum CodingKeys: String, CodingKey {
        case format
        case formatVersion = "format_version"
        case storeID = "store_id"
        case generation
        case keyIDs = "key_ids"
        case macKeyID = "mac_key_id"
        case mac
        case secrets
    }

    init(_ snapshot: StoreSnapshot, authenticator: StoreAuthenticator) {
        format = Self.magic
        formatVersion = Self.currentVersion
        storeID = snapshot.storeID
        generation = snapshot.generation
        secrets = snapshot.sortedNames.map { name in
            let s = snapshot.secrets[name]!
            return Entry(name: name.rawValue, kind: s.kind, protection: s.protection, versions: s.versions,
                         access: s.access.isUnrestricted ? nil : s.access)
        }
        keyIDs = Array(Set(secrets.flatMap { $0.versions.map(\.sealed.keyID.hex) })).sorted()
        macKeyID = authenticator.keyID
        mac = Hex.encode(authenticator.mac(canonical()))
    }

    func encoded() throws -> [UInt8] {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
        var bytes = Array(try encoder.encode(self))
        bytes.append(UInt8(ascii: "\n"))
        return bytes
    }

    /// What the MAC covers: every field but the MAC itself, records in file
    /// order, each value length-prefixed (no two files share an encoding).
    /// Whitespace and member order inside objects do not matter; content
    /// and record order do.
    func canonical() -> [UInt8] {
        var out = LengthPrefixedFields()
        out.reserve(secrets.reduce(256) { $0 + 160 + $1.versions.reduce(0) { $0 + 220 + $1.sealed.ciphertext.count } })
        out.add("format", format)
        out.add("format_version", String(formatVersion))
        out.add("store_id", storeID)
        out.add("generation", String(generation))
        out.add("key_ids", (keyIDs ?? []).joined(separator: ","))
        out.add("mac_key_id", macKeyID ?? "")
        for entry in secrets {
            out.add("name", entry.name)
            out.add("kind", entry.kind.rawValue)
            out.add("protection", entry.protection.rawValue)
            out.add("principals", (entry.access?.principals ?? []).map(\.description).joined(separator: ","))
            switch entry.access?.scope ?? .all {
            case .all: out.add("scope", "all")
            case .sockets(let s): out.add("scope", s.map(\.rawValue).sorted().joined(separator: ","))
            }
            for v in entry.versions {
                out.add("version", String(v.version))
                out.add("encoding", v.encoding.rawValue)
                out.add("created_at", String(v.createdAt))
                out.add("created_by", v.createdBy)
                out.add("key_id", v.sealed.keyID.hex)
                out.add("salt", v.sealed.salt)
                out.add("nonce", v.sealed.nonce)
                out.add("ciphertext", v.sealed.ciphertext)
            }
        }
        return out.bytes
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
    ) throws(StoreError) -> (snapshot: StoreSnapshot, formatVersion: Int) {
        let file = try StoreFileFormat(parsing: bytes)
        guard file.format == magic else { throw StoreError(.corrupt, "the store file does not start with the coffer-store header") }
        switch file.formatVersion {
        case currentVersion:
            guard let keyID = file.macKeyID, let mac = file.mac.flatMap(Hex.decode) else {
                throw StoreError(.tampered, "the store file has no MAC")
            }
            guard let function = authenticator.mac(forKeyID: keyID) else {
                throw StoreError(.tampered, "the store file's MAC is keyed by \(keyID.prefix(16)), which this keyring does not hold")
            }
            guard ConstantTime.equals(function(file.canonical()), mac) else {
                throw StoreError(.tampered, "the store file's MAC does not match: it was changed outside cofferd")
            }
        case 1 where acceptUnauthenticated:
            break
        default:
            throw StoreError(.corrupt, "the store file has format version \(file.formatVersion); this cofferd reads \(currentVersion)")
        }
        var secrets: [SecretName: Secret] = [:]
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
            guard !entry.versions.isEmpty,
                  zip(entry.versions, entry.versions.dropFirst()).allSatisfy({ $0.version < $1.version })
            else { throw StoreError(.corrupt, "the versions of \(name) are missing or out of order") }
            secrets[name] = Secret(name: name, kind: entry.kind, protection: entry.protection, versions: entry.versions,
                                   access: entry.access ?? .unrestricted)
        }
        return (StoreSnapshot(storeID: file.storeID, generation: file.generation, secrets: secrets), file.formatVersion)
    }
}
