#if canImport(Glibc)
import CofferCore
import Glibc
#endif
import LockedMemory
import Model

/// `status`: the daemon's state for operators: mode, uptime, store, keys,
/// memory protection, audit sink. Never a value or key bytes.
struct StatusHandler: OperationHandler {
    /// Status reports on every part of the core: the one handler given it whole.
    let core: CofferServices
    let operation = Operation.status
    let members: Set<String> = []
    static let version = "0.1.0"

    func handle(_ request: Request, context: RequestContext) async throws -> HandlerOutcome {
        let snapshot = context.snapshot
        let keys = core.keyring.keyIDs
        let uptime = core.startedAt.duration(to: .now).components.seconds
        let totals = snapshot.secrets.totals
        return HandlerOutcome([
            ("version", .string(Self.version)),
            ("mode", .string(core.mode.rawValue)),
            ("uptime_seconds", .integer(uptime)),
            ("sealed", .bool(keys.current == nil)),
            ("store", .object([
                ("path", .string(core.store.path)),
                ("store_id", .string(snapshot.storeID)),
                ("generation", .unsigned(snapshot.generation)),
                ("secrets", .integer(Int64(snapshot.secrets.count))),
                ("versions", .integer(Int64(totals.versions))),
                ("hashed", .integer(Int64(totals.hashed))),
                ("file_key_id", core.store.fileKeyID.map { .string($0) } ?? .null),
                ("last_reload", core.lastReload.map { .object([("at", .integer($0.at)), ("result", .string($0.result))]) } ?? .null),
            ])),
            ("keys", .object([
                ("current", keys.current.map { .string($0.hex) } ?? .null),
                ("retired", .array(keys.retired.map { .string($0.hex) })),
                ("rotation", Self.rotation(core.rotation)),
            ])),
            ("memory", .object([
                ("secure_heap_bytes", .integer(Int64(SecureHeap.size))),
                ("secure_heap_used_bytes", .integer(Int64(SecureHeap.usedBytes))),
                ("locked_bytes", ProcessHardening.lockedBytesReportedByKernel().map { .integer(Int64($0)) } ?? .null),
                ("dumpable", .bool(ProcessHardening.isDumpable)),
            ])),
            ("mirror", Self.mirror(core)),
            ("audit", .object([
                ("sink", .string(core.audit.name)),
                ("reachable", .bool(core.audit.isReachable)),
                ("stalled", .bool(core.audit.isStalled)),
                // Events stamped in all lanes together, and each lane's last
                // number (docs/audit.md, "Lanes").
                ("seq", core.audit.sequences.map { .unsigned($0.reduce(0, +)) } ?? .null),
                ("lanes", core.audit.sequences.map { .array($0.map { .unsigned($0) }) } ?? .null),
            ])),
        ])
    }
}

extension StatusHandler {
    /// A running rotation's phase and counts, else the last one's result.
    static func rotation(_ rotation: MasterKeyRotation) -> ResponseValue {
        if let progress = rotation.progress {
            return .object([
                ("state", .string("running")), ("phase", .string(progress.phase)), ("key_id", .string(progress.newKeyID)),
                ("done", .integer(Int64(progress.done))), ("total", .integer(Int64(progress.total))),
            ])
        }
        if let (outcome, finishedAt) = rotation.lastOutcome {
            return .object([
                ("state", .string("finished")), ("key_id", .string(outcome.newKeyID)),
                ("resealed", .integer(Int64(outcome.resealed))), ("finished_at", .integer(finishedAt)),
            ])
        }
        return .object([("state", .string("idle"))])
    }
}

extension StatusHandler {
    /// Whether the mirror is connected, how much waits in the outbox and
    /// since when, and what it took from the other hosts.
    static func mirror(_ core: CofferServices) -> ResponseValue {
        guard let mirror = core.mirror else { return .object([("configured", .bool(false))]) }
        let status = mirror.status
        // What PostgreSQL has not confirmed (confirmed entries may linger in
        // the store file until the mirror's next store commit).
        let outbox = mirror.pending(in: core.store.snapshot.outbox)
        let oldest = outbox.values.map(\.queuedAt).min()
        return .object([
            ("configured", .bool(true)),
            ("connected", .bool(status.connected)),
            ("queue_depth", .integer(Int64(outbox.count))),
            ("lag_seconds", oldest.map { .integer(max(0, Int64(time(nil)) - $0)) } ?? .integer(0)),
            ("last_error", status.lastError.map { .string($0) } ?? .null),
            ("last_push_at", status.lastPushAt.map { .integer($0) } ?? .null),
            ("pushed_rows", .integer(Int64(status.pushedRows))),
            ("pulled_sequence", .integer(status.pulledSequence)),
            ("refused_rows", .integer(Int64(status.refusedRows))),
            ("stuck", .integer(Int64(status.stuck))),
        ])
    }
}
