import Keyring
import LockedMemory
import Model
import Seal

#if canImport(Glibc)
import Glibc
#endif

/// `put`: stores a new version of a secret (the first, or the next) and
/// answers once it is durable on disk.
struct PutHandler: OperationHandler {
    let operation = Operation.put
    let members: Set<String> = ["name", "value", "value_base64", "kind", "protection"]
    static let maxValueBytes = 48 * 1024

    func handle(_ request: Request, context: RequestContext, services: CofferServices) async throws -> HandlerOutcome {
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

        let version = try await services.commit { storeID, secrets in
            let existing = secrets[name]
            let chosen = protection ?? existing?.protection ?? .sealed
            if let existing, existing.protection != chosen {
                throw CofferError(.conflict, "\(name) is \(existing.protection.rawValue); delete it to change its protection")
            }
            var secret = existing ?? Secret(name: name, kind: kind ?? .generic, protection: chosen, versions: [])
            if let kind { secret.kind = kind }
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
            return number
        }
        return HandlerOutcome([("name", .string(name.rawValue)), ("version", .unsigned(version))], version: version)
    }
}
