import CofferCore
import FileStore
import LockedMemory
import Model
#if canImport(Glibc)
import Glibc
#endif

/// A secret version found in a snapshot, and how to open it.
struct SecretLookup {
    let secret: Secret
    let version: SecretVersion
    let storeID: String

    /// The version the request names (`version`, `stage`, else current),
    /// in the request's snapshot. An expired secret is not served: EXPIRED,
    /// whatever was asked.
    static func find(
        _ name: SecretName, version: UInt64?, stage: Stage? = nil, in context: RequestContext, now: Int64 = Int64(time(nil))
    ) throws(CofferError) -> SecretLookup {
        let secret = try unexpired(name, in: context, now: now)
        return SecretLookup(secret: secret, version: try secret.resolve(stage: stage, version: version),
                            storeID: context.snapshot.storeID)
    }

    /// The current version for metadata (list, describe, export): found
    /// even when expired, which the metadata then says.
    static func describing(_ name: SecretName, in context: RequestContext) throws(CofferError) -> SecretLookup {
        guard let secret = context.secret(name) else { throw CofferError(.notFound, "no secret named \(name)") }
        return try describing(secret, storeID: context.snapshot.storeID)
    }

    static func describing(_ secret: Secret, storeID: String) throws(CofferError) -> SecretLookup {
        SecretLookup(secret: secret, version: try secret.resolve(stage: .current, version: nil), storeID: storeID)
    }

    static func unexpired(_ name: SecretName, in context: RequestContext, now: Int64) throws(CofferError) -> Secret {
        guard let secret = context.secret(name) else { throw CofferError(.notFound, "no secret named \(name)") }
        guard !secret.isExpired(at: now) else { throw CofferError(.expired, "\(name) expired; it is no longer served or verified") }
        return secret
    }

    /// Opens the version into locked memory; the caller releases it (wiped).
    func open(with opener: RecordOpener) throws -> LockedBytes {
        try opener.open(version, of: secret, storeID: storeID)
    }

    /// Metadata shared by list and describe: never a value.
    var metadata: [(String, ResponseValue)] {
        var out: [(String, ResponseValue)] = [
            ("name", .string(secret.name.rawValue)),
            ("kind", .string(secret.kind.rawValue)),
            ("protection", .string(secret.protection.rawValue)),
            ("version", .unsigned(version.version)),
            ("versions", .integer(Int64(secret.versions.count))),
            ("updated_at", .integer(version.createdAt)),
            ("updated_by", .string(version.createdBy)),
        ]
        if let pending = secret.stages.pending { out.append(("pending_version", .unsigned(pending))) }
        if let expiry = secret.expiresAt {
            out.append(("expires_at", .integer(expiry)))
            out.append(("expired", .bool(secret.isExpired(at: Int64(time(nil))))))
        }
        if secret.graceSeconds > 0 { out.append(("grace_seconds", .integer(secret.graceSeconds))) }
        if !secret.operations.isEmpty { out.append(("operations", .array(secret.operations.map { .string($0) }))) }
        return out
    }
}
