import Model

/// `list`: names and metadata of the secrets the caller may see, never
/// values. `prefix` narrows it to names that start with the given text.
struct ListHandler: OperationHandler {
    let operation = Operation.list
    let members: Set<String> = ["prefix"]

    func handle(_ request: Request, context: RequestContext, services: CofferServices) async throws -> HandlerOutcome {
        let prefix = try request.string("prefix") ?? ""
        let snapshot = services.store.snapshot
        let policy = services.policy
        var items: [ResponseValue] = []
        for name in snapshot.sortedNames where name.rawValue.hasPrefix(prefix) {
            guard policy.mayList(context.peer, name, on: context.listener, secret: snapshot[name]?.access) else { continue }
            let lookup = try SecretLookup.describing(name, in: snapshot)
            items.append(.object(lookup.metadata))
        }
        return HandlerOutcome([("secrets", .array(items))])
    }
}
