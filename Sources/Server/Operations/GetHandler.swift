import CofferCore
import Model

/// `get`: reveals a sealed secret's current version, or the one `stage` or
/// `version` names. With `default`, a missing secret answers the default
/// instead of NOT_FOUND. Hashed secrets are never revealed; expired ones
/// answer EXPIRED.
struct GetHandler: ImmediateOperationHandler {
    let opener: RecordOpener
    let operation = Operation.get
    let members: Set<String> = ["name", "version", "stage", "default"]

    func answer(_ request: Request, context: RequestContext) throws -> HandlerOutcome {
        let name = try request.name()
        let version = try request.unsigned("version")
        let stage = try request.stage()
        // The default may be a credential too: it stays in locked memory.
        if let fallback = try request.lockedString("default"), context.secret(name) == nil {
            return HandlerOutcome(
                [("name", .string(name.rawValue)), ("value", .secret(fallback, .text)), ("default", .bool(true))],
                result: .notFound
            )
        }
        return try Self.reveal(name, version: version, stage: stage, context: context, opener: opener)
    }

    /// The value of `name` (the version `stage` or `version` names, else
    /// current), for coffer.sock's `get` and credentials.sock alike:
    /// NOT_FOUND, EXPIRED, or CONFLICT for a verify-only secret.
    static func reveal(
        _ name: SecretName, version: UInt64?, stage: Stage?, context: RequestContext, opener: RecordOpener
    ) throws -> HandlerOutcome {
        let lookup = try SecretLookup.find(name, version: version, stage: stage, in: context)
        guard lookup.secret.protection == .sealed else {
            throw CofferError(.conflict, "\(name) is verify-only (protection hashed): use verify")
        }
        let value = try lookup.open(with: opener)
        let key = lookup.version.encoding == .text ? "value" : "value_base64"
        return HandlerOutcome(
            [("name", .string(name.rawValue)), ("version", .unsigned(lookup.version.version)),
             ("stage", lookup.secret.stages.held(by: lookup.version.version).first.map { .string($0.rawValue) } ?? .null),
             ("kind", .string(lookup.secret.kind.rawValue)), (key, .secret(value, lookup.version.encoding))],
            version: lookup.version.version
        )
    }
}
