import Model
import Seal

/// `verify`: does the presented value equal the stored one? Answers only
/// `match`. Compared in constant time; the candidate is decoded into locked
/// memory and wiped, and never logged or audited.
struct VerifyHandler: OperationHandler {
    let operation = Operation.verify
    let members: Set<String> = ["name", "version", "value", "value_base64"]

    func handle(_ request: Request, context: RequestContext, services: CofferServices) async throws -> HandlerOutcome {
        let name = try request.name()
        guard let candidate = try request.secretInput() else {
            throw CofferError(.badRequest, "missing 'value' (or 'value_base64') to verify")
        }
        let lookup = try SecretLookup.find(name, version: try request.unsigned("version"), in: services.store.snapshot)
        let stored = try lookup.open(with: services)
        let match: Bool
        switch lookup.secret.protection {
        case .sealed:
            match = stored.withUnsafeBytes { s in candidate.bytes.withUnsafeBytes { ConstantTime.equals(s, $0) } }
        case .hashed:
            let key = try services.keyring.key(for: lookup.version.sealed.keyID)
            let digest = try candidate.bytes.withUnsafeBytes { try services.sealer.verificationDigest(of: $0, with: key) }
            match = stored.withUnsafeBytes { s in digest.withUnsafeBytes { ConstantTime.equals(s, $0) } }
        }
        return HandlerOutcome([("match", .bool(match))], version: lookup.version.version)
    }
}
