import Keyring
import LockedMemory
import Model
import Seal
#if canImport(Glibc)
import Glibc
#endif

/// What put and rotate share: seal a value as the secret's next version
/// and commit it durably before answering, then tell the watchers.
struct NewVersion {
    static let members: Set<String> = ["name", "value", "value_base64", "kind", "protection"]
    static let maxValueBytes = 48 * 1024

    enum Existing {
        /// put: the first version or the next.
        case optional
        /// rotate: the secret must exist.
        case required
    }

    let existing: Existing
    let event: SecretChange.Event

    func commit(
        _ request: Request, access: SecretAccess?, context: RequestContext, services: CofferServices
    ) async throws -> HandlerOutcome {
        let name = try request.name()
        let kind = try request.string("kind").map { (k: String) throws(CofferError) in try SecretKind(k) }
        let protection = try request.string("protection").map { (p: String) throws(CofferError) -> Protection in
            guard let value = Protection(rawValue: p) else {
                throw CofferError(.badRequest, "'protection' must be sealed or hashed")
            }
            return value
        }
        guard let input = try request.secretInput() else {
            throw CofferError(.badRequest, "missing 'value' or 'value_base64' (cofferctl reads it from stdin or --from-file)")
        }
        guard input.bytes.count <= Self.maxValueBytes else {
            throw CofferError(.badRequest, "the value is larger than \(Self.maxValueBytes) bytes")
        }
        let key = try services.keyring.current()
        let sealer = services.sealer
        let author = context.peer.principal
        let now = Int64(time(nil))
        let existing = self.existing

        let (version, finalAccess) = try await services.commit { storeID, secrets in
            let found = secrets[name]
            if existing == .required, found == nil {
                throw CofferError(.notFound, "no secret named \(name) to rotate; put creates it")
            }
            let chosen = protection ?? found?.protection ?? .sealed
            if let found, found.protection != chosen {
                throw CofferError(.conflict, "\(name) is \(found.protection.rawValue); delete it to change its protection")
            }
            var secret = found ?? Secret(name: name, kind: kind ?? .generic, protection: chosen, versions: [])
            if let kind { secret.kind = kind }
            if let access { secret.access = access }
            let number = secret.nextVersion
            let identity = secret.identity(storeID: storeID, version: number)
            let sealed: SealedRecord
            switch chosen {
            case .sealed:
                sealed = try input.bytes.withUnsafeBytes { try sealer.seal($0, for: identity, with: key) }
            case .hashed:
                let digest = try input.bytes.withUnsafeBytes { try sealer.verificationDigest(of: $0, with: key) }
                sealed = try digest.withUnsafeBytes { try sealer.seal($0, for: identity, with: key) }
            }
            secret.versions.append(SecretVersion(version: number, sealed: sealed, encoding: input.encoding,
                                                 createdAt: now, createdBy: author))
            secrets[name] = secret
            return (number, secret.access)
        }
        services.publish([(SecretChange(event: event, name: name, version: version, stage: "current"), finalAccess)])
        return HandlerOutcome([("name", .string(name.rawValue)), ("version", .unsigned(version))], version: version)
    }
}
