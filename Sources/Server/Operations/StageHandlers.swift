import CofferCore
import Model
import Seal
#if canImport(Glibc)
import Glibc
#endif

/// `promote` (pending becomes current) and `rollback` (previous becomes
/// current again): they move stages, seal nothing, and commit durably.
struct StageChangeHandler: LoopBoundOperationHandler {
    let writes: any SecretWrites
    let operation: Operation
    let members: Set<String> = ["name"]

    func handle(_ request: Request, context: RequestContext) async throws -> HandlerOutcome {
        let name = try request.name()
        let author = context.peer.principal
        let now = Int64(time(nil))
        let operation = self.operation
        let (stages, access) = try await writes.commit(touching: 1) { _, secrets in
            guard var secret = secrets[name] else { throw CofferError(.notFound, "no secret named \(name)") }
            if operation == .promote {
                try secret.promote(at: now, by: author)
            } else {
                try secret.rollback(at: now, by: author)
            }
            secrets[name] = secret
            return (secret.stages, secret.access)
        }
        writes.publish([(SecretChange(event: operation == .promote ? .promote : .rollback, name: name,
                                        version: stages.current, stage: Stage.current.rawValue), access)])
        return HandlerOutcome(
            [("name", .string(name.rawValue)), ("version", .unsigned(stages.current)),
             ("previous", stages.previous.map { .unsigned($0) } ?? .null)],
            version: stages.current)
    }
}

/// `history`: every kept version with its stages, when and by whom it was
/// made, and its key id; when current last changed and by whom. Never a
/// value.
struct HistoryHandler: OperationHandler {
    let retainVersions: Int
    let operation = Operation.history
    let members: Set<String> = ["name"]

    func handle(_ request: Request, context: RequestContext) async throws -> HandlerOutcome {
        let name = try request.name()
        guard let secret = context.secret(name) else { throw CofferError(.notFound, "no secret named \(name)") }
        let versions: [ResponseValue] = secret.versions.map { v in
            var fields: [(String, ResponseValue)] = [
                ("version", .unsigned(v.version)),
                ("stages", .array(secret.stages.held(by: v.version).map { .string($0.rawValue) })),
                ("created_at", .integer(v.createdAt)),
                ("created_by", .string(v.createdBy)),
                ("key_id", .string(v.sealed.keyID.hex)),
                ("encoding", .string(v.encoding.rawValue)),
            ]
            if let hash = v.hash { fields.append(("hash", .string(hash.algorithm))) }
            return .object(fields)
        }
        return HandlerOutcome([
            ("name", .string(name.rawValue)),
            ("protection", .string(secret.protection.rawValue)),
            ("versions", .array(versions)),
            ("stages_changed_at", .integer(secret.stages.changedAt)),
            ("stages_changed_by", .string(secret.stages.changedBy)),
            ("grace_seconds", .integer(secret.graceSeconds)),
            ("expires_at", secret.expiresAt.map { .integer($0) } ?? .null),
            ("retained_versions", .integer(Int64(retainVersions))),
        ], version: secret.stages.current)
    }
}

/// `token.create`: a `PREFIX_<64 lowercase hex>` token from 32 random
/// bytes (Postgate's form), stored hashed (HMAC-SHA256), answered exactly
/// once. Optional `expires_at` and `operations` (what verify with
/// `operation` accepts it for) are stored with it. A name that exists gets
/// a new version (the old token stays valid for the grace period).
struct TokenCreateHandler: LoopBoundOperationHandler {
    let writes: any SecretWrites
    let operation = Operation.tokenCreate
    let members: Set<String> = ["name", "prefix", "expires_at", "operations", "grace_seconds"]
    static let maxOperations = 32

    func handle(_ request: Request, context: RequestContext) async throws -> HandlerOutcome {
        let prefix = try request.string("prefix")
        if let prefix, !GeneratedValue.isValidPrefix(prefix) {
            throw CofferError(.badRequest, "'prefix' must be 1 to 32 of A-Z a-z 0-9 -")
        }
        let operations = try request.strings("operations", max: Self.maxOperations) ?? []
        for op in operations where !Secret.isValidOperation(op) {
            throw CofferError(.badRequest, "'operations' holds one that is not 1 to 64 of a-z 0-9 . _ : -")
        }
        let forced = NewVersion.Forced(
            generated: GeneratedValue(bytes: 32, format: .token, prefix: prefix),
            kind: try SecretKind("token"), operations: operations)
        return try await NewVersion(existing: .optional, event: .put, forced: forced)
            .commit(request, access: nil, context: context, writes: writes)
    }

}
