import FileStore
import LockedMemory
import Model

/// A secret version found in a snapshot, and how to open it.
struct SecretLookup {
    let secret: Secret
    let version: SecretVersion
    let storeID: String

    /// The current version, or `version` when asked for one.
    static func find(_ name: SecretName, version: UInt64?, in snapshot: StoreSnapshot) throws(CofferError) -> SecretLookup {
        guard let secret = snapshot[name] else { throw CofferError(.notFound, "no secret named \(name)") }
        let found = version.flatMap { secret.version($0) } ?? (version == nil ? secret.current : nil)
        guard let found else { throw CofferError(.notFound, "\(name) has no version \(version ?? 0)") }
        return SecretLookup(secret: secret, version: found, storeID: snapshot.storeID)
    }

    /// Opens the version into locked memory; the caller releases it (wiped).
    func open(with services: CofferServices) throws -> LockedBytes {
        try services.sealer.open(
            version.sealed,
            for: secret.identity(storeID: storeID, version: version.version),
            keyring: services.keyring
        )
    }

    /// Metadata shared by list and describe: never a value.
    var metadata: [(String, ResponseValue)] {
        [
            ("name", .string(secret.name.rawValue)),
            ("kind", .string(secret.kind.rawValue)),
            ("protection", .string(secret.protection.rawValue)),
            ("version", .unsigned(version.version)),
            ("versions", .integer(Int64(secret.versions.count))),
            ("updated_at", .integer(version.createdAt)),
            ("updated_by", .string(version.createdBy)),
        ]
    }
}
