import CofferCore
import Model

/// `rotate-master-key`: `key_file` (a key file the daemon can read: 0600,
/// owned by its user) or `generate: true` (the default). Answers when the
/// re-sealed store is committed; `status` shows the progress meanwhile.
struct RotateMasterKeyHandler: OperationHandler {
    let keys: any KeyManagement
    let operation = Operation.rotateMasterKey
    let members: Set<String> = ["key_file", "generate"]

    func handle(_ request: Request, context: RequestContext) async throws -> HandlerOutcome {
        let file = try request.string("key_file")
        let generate = try request.bool("generate")
        if file != nil, generate == true { throw CofferError(.badRequest, "give 'key_file' or 'generate', not both") }
        if file == nil, generate == false { throw CofferError(.badRequest, "give 'key_file', or 'generate': true") }
        let outcome = try await keys.rotateMasterKey(file.map { .file($0) } ?? .generate)
        return HandlerOutcome([
            ("key_id", .string(outcome.newKeyID)),
            ("previous_key_ids", .array(outcome.oldKeyIDs.map { .string($0) })),
            ("resealed", .integer(Int64(outcome.resealed))),
            ("retired", .array(outcome.retired.map { .string($0) })),
        ])
    }
}

/// `seal`: wipes every master key from memory at once.
struct SealHandler: OperationHandler {
    let keys: any KeyManagement
    let operation = Operation.seal
    let members: Set<String> = []

    func handle(_ request: Request, context: RequestContext) async throws -> HandlerOutcome {
        try await keys.sealKeys()
        return HandlerOutcome([("sealed", .bool(true))])
    }
}

/// `unseal`: loads the master keys again (the configured source, or
/// `key_file` in its place, plus the keys rotations added) and takes them
/// only if they open every record of the store.
struct UnsealHandler: OperationHandler {
    let keys: any KeyManagement
    let operation = Operation.unseal
    let members: Set<String> = ["key_file"]

    func handle(_ request: Request, context: RequestContext) async throws -> HandlerOutcome {
        let keyID = try await keys.unseal(keyFile: try request.string("key_file"))
        return HandlerOutcome([("sealed", .bool(false)), ("key_id", .string(keyID.hex))])
    }
}
