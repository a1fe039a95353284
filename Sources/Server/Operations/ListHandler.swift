import CofferCore
import Model

/// `list`: names and metadata of the secrets the caller may see, never
/// values. `prefix` narrows it to names that start with the given text.
struct ListHandler: OperationHandler {
    let operation = Operation.list
    let members: Set<String> = ["prefix"]

    func handle(_ request: Request, context: RequestContext) async throws -> HandlerOutcome {
        let prefix = try request.string("prefix") ?? ""
        let snapshot = context.snapshot
        var items: [ResponseValue] = []
        for name in snapshot.sortedNames where name.rawValue.hasPrefix(prefix) {
            // Decoded once: for the policy (its own access) and the metadata.
            guard let secret = snapshot[name],
                  context.policy.mayList(context.peer, name, on: context.listener, secret: secret.access) else { continue }
            items.append(.object(try SecretLookup.describing(secret, storeID: snapshot.storeID).metadata))
        }
        return HandlerOutcome([("secrets", .array(items))])
    }
}
