import CofferCore
import Model

/// `reload`: reads the policy file again. A broken file is refused with the
/// line it breaks on, and the policy in force stays in force.
struct ReloadHandler: OperationHandler {
    let policies: any PolicyReloading
    /// The file names users and groups, resolved through NSS, which may
    /// wait on a network directory: not on a thread of the concurrency
    /// pool, nor of the blocking pool (`AccountLookups`).
    let lookups: any BlockingWork
    let operation = Operation.reload
    let members: Set<String> = []

    func handle(_ request: Request, context: RequestContext) async throws -> HandlerOutcome {
        let policies = self.policies, peer = context.peer, listener = context.listener
        let policy = try await lookups.run { try policies.reloadPolicy(requestedBy: peer, on: listener).get() }
        return HandlerOutcome([
            ("rules", .integer(Int64(policy.rules.count))),
            ("operators", .integer(Int64(policy.operators.count))),
            ("credentials", .integer(Int64(policy.credentials.count))),
        ])
    }
}
