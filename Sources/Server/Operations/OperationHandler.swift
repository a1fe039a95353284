import Audit
import CofferCore
import Model

/// One operation of the protocol. The dispatcher has already parsed the
/// request, checked its members, resolved the snapshot and asked the
/// policy (RequestContext holds both); a handler does the work on that
/// snapshot and says what happened. It decides nothing about who may.
/// Each handler holds only the parts of the core it uses (CoreRoles),
/// given when the dispatcher builds it.
protocol OperationHandler: Sendable {
    var operation: Operation { get }
    /// Request members this operation takes, besides `id` and `op`.
    var members: Set<String> { get }
    /// The names the policy must allow (empty: the operation as a whole).
    func targets(of request: Request) throws(CofferError) -> [SecretName]
    /// Whether the request sets a secret's own principals or scope, which
    /// only operators may (AccessPolicy.mayChangeAccess).
    func setsAccess(_ request: Request) -> Bool
    func handle(_ request: Request, context: RequestContext) async throws -> HandlerOutcome
}

/// A handler whose work never waits: it reads the store snapshot and opens
/// at most one record, with nothing that blocks on a lock held across I/O,
/// a commit or a slow KDF. The network layer runs it on the connection's
/// event loop, which saves the hop to the concurrency pool and back (two
/// thread wake-ups per request, the largest cost of a get under perf;
/// docs/performance.md). Anything else, or anything that can take long
/// (list of a large store, scrypt), stays an ordinary OperationHandler.
protocol ImmediateOperationHandler: OperationHandler {
    func answer(_ request: Request, context: RequestContext) throws -> HandlerOutcome
}

/// A handler whose every slow step is awaited (the blocking pool, the
/// store's sync) and whose steps between waits are short: its task runs on
/// the connection's event loop (EventLoopTaskExecutor), so no thread of
/// the concurrency pool wakes for it and its answer needs no hop back.
/// The writes are: they stage on the loop when the store's lock is had
/// within 500 µs (else on the blocking pool) and wait for the sync.
protocol LoopBoundOperationHandler: OperationHandler {}

extension ImmediateOperationHandler {
    func handle(_ request: Request, context: RequestContext) async throws -> HandlerOutcome {
        try answer(request, context: context)
    }
}

extension OperationHandler {
    func targets(of request: Request) throws(CofferError) -> [SecretName] {
        operation.actsOnSecret ? [try request.name()] : []
    }

    func setsAccess(_ request: Request) -> Bool { false }
}

/// A handler's answer: the response members and what the audit records.
struct HandlerOutcome: Sendable {
    var fields: [(String, ResponseValue)]
    var version: UInt64?
    var result: AuditResult

    init(_ fields: [(String, ResponseValue)], version: UInt64? = nil, result: AuditResult = .ok) {
        self.fields = fields
        self.version = version
        self.result = result
    }
}
