import CofferCore
import FileStore
import Mirror
import Model

/// `restore`: `{"from": "postgres", "store_id"?}` rebuilds an empty store
/// from the mirror (docs/mirror.md, "Restore"). Refused when the store
/// holds anything: a restore never merges into or replaces live data.
struct RestoreHandler: OperationHandler {
    let mirror: Mirror?
    let store: SecretStore
    let pool: any BlockingWork
    let operation = Operation.restore
    let members: Set<String> = ["from", "store_id"]

    func handle(_ request: Request, context: RequestContext) async throws -> HandlerOutcome {
        guard try request.string("from") == "postgres" else {
            throw CofferError(.badRequest, "'from' must be \"postgres\" (the only source restore knows)")
        }
        let storeID = try request.string("store_id")
        if let storeID, !Hex.isDigits(storeID, count: 32) {
            throw CofferError(.badRequest, "'store_id' is 32 lowercase hex digits")
        }
        guard let mirror else {
            throw CofferError(.unavailable, "no PostgreSQL mirror is configured (--postgres, postgres.conninfo or COFFER_POSTGRES_URL)")
        }
        guard store.snapshot.secrets.isEmpty, mirror.pending(in: store.snapshot.outbox).isEmpty else {
            throw CofferError(.conflict, "restore needs an empty store; this one holds secrets or changes not yet mirrored")
        }
        let restored: Mirror.Restored
        do {
            restored = try await pool.run { try mirror.restore(storeID: storeID) }
        } catch let error as MirrorError {
            throw CofferError(.unavailable, "restore failed: \(error.message)", underlying: error.debugDescription)
        }
        // Watchers hear of it from the store's commit (CofferServices).
        return HandlerOutcome([
            ("store_id", .string(restored.storeID)),
            ("restored", .integer(Int64(restored.secrets))),
            ("refused", .array(restored.refused.map { .string($0) })),
        ])
    }
}
