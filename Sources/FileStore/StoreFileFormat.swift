import Foundation
import Keyring
import Model
import Seal

/// The on-disk form of a snapshot (docs/file-format.md): JSON, names and
/// metadata readable (useful in git diffs), values only as ciphertext.
struct StoreFileFormat: Codable {
    static let magic = "coffer-store"
    static let currentVersion = 1

    struct Entry: Codable {
        var name: String
        var kind: SecretKind
        var protection: Protection
        var versions: [SecretVersion]
        /// Absent when unrestricted (files written before it existed read the same).
        var access: SecretAccess?
    }

    var format: String
    var formatVersion: Int
    var storeID: String
    var generation: UInt64
    var secrets: [Entry]

    enum CodingKeys: String, CodingKey {
        case format
        case formatVersion = "format_version"
        case storeID = "store_id"
        case generation
        case secrets
    }

    init(_ snapshot: StoreSnapshot) {
        format = Self.magic
        formatVersion = Self.currentVersion
        storeID = snapshot.storeID
        generation = snapshot.generation
        secrets = snapshot.sortedNames.map { name in
            let s = snapshot.secrets[name]!
            return Entry(name: name.rawValue, kind: s.kind, protection: s.protection, versions: s.versions,
                         access: s.access.isUnrestricted ? nil : s.access)
        }
    }

    func encoded() throws -> [UInt8] {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
        var bytes = Array(try encoder.encode(self))
        bytes.append(UInt8(ascii: "\n"))
        return bytes
    }

    static func decode(_ bytes: [UInt8]) throws(StoreError) -> StoreSnapshot {
        let file: StoreFileFormat
        do {
            file = try JSONDecoder().decode(StoreFileFormat.self, from: Data(bytes))
        } catch {
            throw StoreError(.corrupt, "the store file is not valid", underlying: "\(error)")
        }
        guard file.format == magic else { throw StoreError(.corrupt, "the store file does not start with the coffer-store header") }
        guard file.formatVersion == currentVersion else {
            throw StoreError(.corrupt, "the store file has format version \(file.formatVersion); this cofferd reads \(currentVersion)")
        }
        var secrets: [SecretName: Secret] = [:]
        for entry in file.secrets {
            let name: SecretName
            do { name = try SecretName(entry.name) } catch {
                throw StoreError(.corrupt, "the store file holds an invalid secret name")
            }
            guard secrets[name] == nil else { throw StoreError(.corrupt, "the store file holds \(name) twice") }
            guard !entry.versions.isEmpty,
                  zip(entry.versions, entry.versions.dropFirst()).allSatisfy({ $0.version < $1.version })
            else { throw StoreError(.corrupt, "the versions of \(name) are missing or out of order") }
            secrets[name] = Secret(name: name, kind: entry.kind, protection: entry.protection, versions: entry.versions,
                                   access: entry.access ?? .unrestricted)
        }
        return StoreSnapshot(storeID: file.storeID, generation: file.generation, secrets: secrets)
    }
}
