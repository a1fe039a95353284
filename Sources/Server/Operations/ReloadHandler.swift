import CofferCore
import Model

/// `reload`: reads the policy file again. A broken file is refused with the
/// line it breaks on, and the policy in force stays in force.
struct ReloadHandler: OperationHandler {
    let policies: any PolicyReloading
    let operation = Operation.reload
    let members: Set<String> = []

    func handle(_ request: Request, context: RequestContext) async throws -> HandlerOutcome {
        let policies = self.policies, peer = context.peer, listener = context.listener
        // The file names users and groups, resolved through NSS, which may
        // wait on a network directory: on the account lookups' thread.
        let policy = try await policies.reloadPolicyOffLoop(requestedBy: peer, on: listener).get()
        return HandlerOutcome([
            ("rules", .integer(Int64(policy.rules.count))),
            ("operators", .integer(Int64(policy.operators.count))),
            ("credentials", .integer(Int64(policy.credentials.count))),
        ])
    }
}
