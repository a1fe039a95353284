import Keyring
import Model

/// `rotate-master-key`: `key_file` (a key file the daemon can read: 0600,
/// owned by its user) or `generate: true` (the default). Answers when the
/// re-sealed store is committed; `status` shows the progress meanwhile.
struct RotateMasterKeyHandler: OperationHandler {
    let operation = Operation.rotateMasterKey
    let members: Set<String> = ["key_file", "generate"]

    func handle(_ request: Request, context: RequestContext, services: CofferServices) async throws -> HandlerOutcome {
        let file = try request.string("key_file")
        let generate = try request.bool("generate")
        if file != nil, generate == true { throw CofferError(.badRequest, "give 'key_file' or 'generate', not both") }
        if file == nil, generate == false { throw CofferError(.badRequest, "give 'key_file', or 'generate': true") }
        guard let locations = services.keyLocations else {
            throw CofferError(.unavailable, "this cofferd has no state directory to record a new key in")
        }
        let source: MasterKeyRotation.NewKey = file.map { .file($0) } ?? .generate
        let rotation = services.rotation
        let outcome = try await services.exclusively(.rotateMasterKey) {
            try await services.blockingPool.runIfActive { try rotation.run(source, services: services, locations: locations) }
        }
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
    let operation = Operation.seal
    let members: Set<String> = []

    func handle(_ request: Request, context: RequestContext, services: CofferServices) async throws -> HandlerOutcome {
        try await services.exclusively(.seal) {
            // Under the store's writer lock: no commit is sealing with a
            // key while it is wiped.
            services.store.whileNoCommitRuns { services.keyring.seal() }
        }
        return HandlerOutcome([("sealed", .bool(true))])
    }
}

/// `unseal`: loads the master keys again (the configured source, or
/// `key_file` in its place, plus the keys rotations added) and takes them
/// only if they open every record of the store.
struct UnsealHandler: OperationHandler {
    let operation = Operation.unseal
    let members: Set<String> = ["key_file"]

    func handle(_ request: Request, context: RequestContext, services: CofferServices) async throws -> HandlerOutcome {
        let file = try request.string("key_file")
        guard let locations = services.keyLocations else {
            throw CofferError(.unavailable, "this cofferd has no key source to unseal from")
        }
        return try await services.exclusively(.unseal) { try await unseal(file, locations: locations, services: services) }
    }

    private func unseal(_ file: String?, locations: MasterKeyLocations, services: CofferServices) async throws -> HandlerOutcome {
        guard services.keyring.isSealed else { throw CofferError(.conflict, "cofferd is not sealed") }
        let loaded: MasterKeyLocations.Loaded
        do {
            loaded = try await services.blockingPool.runIfActive { try locations.load(primaryPath: file) }
        } catch let error as KeyringError {
            throw CofferError(.badRequest, "cannot load the master key: \(error.message)")
        }
        let held = Set(loaded.all.map(\.id))
        let missing = services.store.neededKeyIDs.subtracting(held)
        guard missing.isEmpty else {
            throw CofferError(.conflict, "these keys do not open the store (it needs key ids \(missing.map(\.hex).sorted().joined(separator: ", "))); still sealed")
        }
        services.keyring.unseal(current: loaded.current, others: loaded.all)
        // The file may have changed while nothing could check it.
        services.reloadStore()
        return HandlerOutcome([("sealed", .bool(false)), ("key_id", .string(loaded.current.id.hex))])
    }
}
