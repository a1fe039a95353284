import Audit
import CofferCore
import LockedMemory
import Logging
import Model

/// Parses a request line, resolves the snapshot and the targets once, asks
/// the policy, runs the operation's handler and records one audit event for
/// the decision. The only place requests are routed and authorized: the
/// network layer hands it lines (or, for credentials.sock, a unit's
/// connection) and writes what it returns.
public struct RequestDispatcher: Sendable {
    let services: CofferServices
    let logger: Logger
    private let handlers: [Operation: any OperationHandler]
    /// credentials.sock's reveals open records with it, as get does.
    private let opener: RecordOpener
    private let losses: AuditLossLog

    public init(services: CofferServices, logger: Logger) {
        self.services = services
        self.logger = logger
        self.losses = AuditLossLog(logger: logger)
        handlers = Dictionary(uniqueKeysWithValues: Operation.allCases.map { ($0, Self.handler(for: $0, core: services)) })
        opener = services.opener
    }

    /// Each operation's handler, given only the parts of the core it uses
    /// (CoreRoles). A switch without `default`: a new Operation does not
    /// compile until it has one.
    static func handler(for operation: Operation, core: CofferServices) -> any OperationHandler {
        switch operation {
        case .ping: PingHandler()
        case .get: GetHandler(opener: core.opener)
        case .verify: VerifyHandler(opener: core.opener, hashing: core.hashing)
        case .list: ListHandler()
        case .describe: DescribeHandler()
        case .watch: WatchHandler(changes: core.changes)
        case .put: PutHandler(writes: core, lookups: core.accountLookups)
        case .rotate: RotateHandler(writes: core)
        case .promote: StageChangeHandler(writes: core, operation: .promote)
        case .rollback: StageChangeHandler(writes: core, operation: .rollback)
        case .delete: DeleteHandler(writes: core)
        case .history: HistoryHandler(retainVersions: core.retainVersions)
        case .tokenCreate: TokenCreateHandler(writes: core)
        case .rotateMasterKey: RotateMasterKeyHandler(keys: core)
        case .seal: SealHandler(keys: core)
        case .unseal: UnsealHandler(keys: core)
        case .reload: ReloadHandler(policies: core)
        case .status: StatusHandler(core: core)
        case .audit: AuditHandler(audit: core.audit, opener: core.opener, chainKeys: core.auditChainKeys, pool: core.blockingPool)
        case .import: ImportHandler(writes: core)
        case .export: ExportHandler(store: core.store, opener: core.opener)
        case .restore: RestoreHandler(mirror: core.mirror, store: core.store, pool: core.blockingPool)
        }
    }

    /// Answers one request line as a connection would, without a socket:
    /// the response line, newline included. For tests and the fuzzer.
    public func answer(line: [UInt8], peer: PeerIdentity, listener: Listener) async -> [UInt8] {
        let transient = line.withUnsafeBytes { TransientBytes(copying: $0) }
        return await handle(line: transient, peer: peer, listener: listener).encoded().bytes
    }

    func handle(line: TransientBytes, peer: PeerIdentity, listener: Listener, watchOutlet: WatchOutlet? = nil) async -> Response {
        switch begin(line: line, peer: peer, listener: listener, watchOutlet: watchOutlet) {
        case .answered(let response): return response
        case .awaiting(let work): return await complete(work)
        }
    }

    /// What `begin` leaves to do: a request that passed the policy and
    /// whose handler may wait.
    struct AwaitedRequest: Sendable {
        fileprivate let handler: any OperationHandler
        fileprivate let request: Request
        fileprivate let context: RequestContext
        fileprivate let targets: [SecretName]
        /// Run `complete` on the connection's event loop
        /// (LoopBoundOperationHandler), else on the concurrency pool.
        var runsOnEventLoop: Bool { handler is any LoopBoundOperationHandler }
    }

    enum Step: Sendable {
        /// Answered without waiting: refused, or run by an ImmediateOperationHandler.
        case answered(Response)
        /// Run `complete` (off the event loop) for the answer.
        case awaiting(AwaitedRequest)
    }

    /// Everything that needs no waiting: parse, members, policy; and the
    /// whole request when its handler is immediate. Called on the event
    /// loop by the network layer.
    func begin(line: TransientBytes, peer: PeerIdentity, listener: Listener, watchOutlet: WatchOutlet? = nil) -> Step {
        let request: Request
        switch Request.parse(line) {
        case .failure(let failure):
            return .answered(.failure(failure.id, failure.error))
        case .success(let parsed):
            request = parsed
        }
        guard let handler = handlers[request.operation] else {
            return .answered(.failure(request.id, CofferError(.unknownOperation, "\(request.operation.rawValue) is not served by this version of cofferd")))
        }
        let targets: [SecretName]
        do {
            try request.checkMembers(allowed: handler.members)
            targets = try handler.targets(of: request)
        } catch {
            return .answered(.failure(request.id, error))
        }
        let context = RequestContext(peer: peer, listener: listener, requestID: request.id, watchOutlet: watchOutlet,
                                     snapshot: services.store.snapshot, policy: services.policy, targets: targets)
        if let refusal = refusal(request, handler: handler, targets: targets, context: context) { return .answered(refusal) }
        guard let immediate = handler as? any ImmediateOperationHandler else {
            return .awaiting(AwaitedRequest(handler: handler, request: request, context: context, targets: targets))
        }
        let outcome = run(request.operation) { try immediate.answer(request, context: context) }
        return .answered(finish(request.operation, targets: targets, context: context, outcome: outcome))
    }

    /// The rest of a request `begin` left awaiting.
    func complete(_ work: AwaitedRequest) async -> Response {
        let (request, context) = (work.request, work.context)
        let outcome = await run(request.operation) { try await work.handler.handle(request, context: context) }
        return finish(request.operation, targets: work.targets, context: context, outcome: outcome)
    }

    /// credentials.sock: one connection from systemd for a unit's
    /// LoadCredential=. The same path as a `get` on coffer.sock: one
    /// snapshot, the policy's decision (AccessPolicy.decideCredential), the
    /// same lookup and refusals (GetHandler.reveal), the same audit event
    /// and receipt. The caller writes `Response.revealedValue()` raw.
    func credential(peer: PeerIdentity, address: (unit: String, id: String)?) -> Response {
        let snapshot = services.store.snapshot
        let policy = services.policy
        let decided = policy.decideCredential(peer, address: address, secret: { snapshot[$0]?.access })
        let targets = decided.name.map { [$0] } ?? []
        let context = RequestContext(peer: decided.requester, listener: .credentials, requestID: .null,
                                     snapshot: snapshot, policy: policy, targets: targets)
        if case .deny(let reason) = decided.decision {
            return deny(.get, id: .null, name: decided.name, reason: reason, context: context)
        }
        guard let name = decided.name else { return deny(.get, id: .null, name: nil, reason: .unknownCredential, context: context) }
        let outcome = run(.get) { try GetHandler.reveal(name, version: nil, stage: nil, context: context, opener: opener) }
        return finish(.get, targets: targets, context: context, outcome: outcome)
    }

    /// admin.sock, right after accept: superusers, operators and principals
    /// a rule grants an administrative operation get a connection; anyone
    /// else is audited here and turned away.
    func admitsToAdminSocket(_ peer: PeerIdentity) -> Bool {
        guard !services.policy.admitsToAdminSocket(peer) else { return true }
        record(AuditEvent(kind: .denied, result: .denied, peer: peer, listener: .admin, reason: DenialReason.notAnOperator.rawValue))
        return false
    }

    /// The policy's answer for every target, and for a request that sets a
    /// secret's principals or scope whether the caller may; a denial is
    /// audited here.
    private func refusal(
        _ request: Request, handler: any OperationHandler, targets: [SecretName], context: RequestContext
    ) -> Response? {
        if let (name, decision) = context.decisions(request.operation, targets: targets).first(where: { !$0.1.isAllowed }),
           case .deny(let reason) = decision {
            return deny(request.operation, id: request.id, name: name, reason: reason, context: context)
        }
        if handler.setsAccess(request), !context.policy.mayChangeAccess(context.peer, on: context.listener) {
            return deny(request.operation, id: request.id, name: targets.first, reason: .notAnOperator, context: context)
        }
        return nil
    }

    /// A caller without rights learns only DENIED, whether or not the
    /// secret exists (so it cannot probe for names); the audit event says why.
    private func deny(
        _ operation: Operation, id: RequestID, name: SecretName?, reason: DenialReason, context: RequestContext
    ) -> Response {
        record(AuditEvent(kind: .denied, result: .denied, operation: operation, secret: name?.rawValue,
                          peer: context.peer, listener: context.listener, requestID: context.requestID.text,
                          reason: reason.rawValue))
        return .failure(id, CofferError(.denied, "permission denied"))
    }

    private func run(_ operation: Operation, _ body: () throws -> HandlerOutcome) -> Result<HandlerOutcome, CofferError> {
        do {
            return .success(try body())
        } catch {
            return .failure(mapped(error, operation))
        }
    }

    private func run(_ operation: Operation, _ body: () async throws -> HandlerOutcome) async -> Result<HandlerOutcome, CofferError> {
        do {
            return .success(try await body())
        } catch {
            return .failure(mapped(error, operation))
        }
    }

    private func mapped(_ error: any Error, _ operation: Operation) -> CofferError {
        let mapped = CofferError.from(error)
        if mapped.code == .internal || mapped.underlying != nil {
            logger.error("\(operation.rawValue) failed", metadata: ["error": "\(mapped.debugDescription)"])
        }
        return mapped
    }

    /// Records the decision's audit event, then answers with its receipt.
    /// Fail closed: an answer that reveals something and has no receipt is
    /// written as UNAVAILABLE (Response.encoded), whatever the operation.
    private func finish(
        _ operation: Operation, targets: [SecretName], context: RequestContext, outcome: Result<HandlerOutcome, CofferError>
    ) -> Response {
        guard let kind = operation.auditKind else {
            return response(context.requestID, outcome)
        }
        let event = AuditEvent(
            kind: kind,
            result: (try? outcome.get().result) ?? outcome.failureCode?.auditResult ?? .error,
            operation: operation,
            secret: targets.count == 1 ? targets[0].rawValue : nil,
            version: try? outcome.get().version,
            peer: context.peer, listener: context.listener, requestID: context.requestID.text,
            reason: outcome.failureCode.map { $0.wireName }
        )
        var answer = response(context.requestID, outcome)
        do {
            answer.receipt = try services.audit.receipt(recording: event)
            losses.recorded()
        } catch {
            losses.lost(error, event: kind)
        }
        return answer
    }

    private func response(_ id: RequestID, _ outcome: Result<HandlerOutcome, CofferError>) -> Response {
        switch outcome {
        case .success(let o): return .success(id, o.fields)
        case .failure(let e): return .failure(id, e)
        }
    }

    private func record(_ event: AuditEvent) {
        do {
            try services.audit.record(event)
            losses.recorded()
        } catch {
            losses.lost(error, event: event.kind)
        }
    }
}

extension Result where Failure == CofferError {
    var failureCode: CofferError.Code? {
        if case .failure(let e) = self { return e.code }
        return nil
    }
}

extension Operation {
    /// The audit event for an allowed operation; nil for ping (no decision)
    /// and reload (CofferServices.reloadPolicy records its own).
    var auditKind: AuditEventKind? {
        switch self {
        case .ping: return nil
        case .get: return .get
        case .verify: return .verify
        case .list: return .list
        case .describe: return .describe
        case .watch: return .watch
        case .put: return .put
        case .rotate: return .rotate
        case .delete: return .delete
        case .promote: return .promote
        case .rollback: return .rollback
        case .history: return .history
        case .tokenCreate: return .tokenCreate
        case .rotateMasterKey: return .masterKeyRotated
        case .seal: return .seal
        case .unseal: return .unseal
        case .restore: return .restore
        case .status: return .status
        case .audit: return .auditReview
        case .import: return .import
        case .export: return .export
        case .reload: return nil
        }
    }
}
