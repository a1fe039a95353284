import CofferCore
import Model

/// `delete`: removes one secret (`name`) or several (`names`) with every
/// version. All or none: if any name is missing, nothing is deleted.
struct DeleteHandler: LoopBoundOperationHandler {
    let writes: any SecretWrites
    let operation = Operation.delete
    let members: Set<String> = ["name", "names"]

    func targets(of request: Request) throws(CofferError) -> [SecretName] {
        try request.names()
    }

    func handle(_ request: Request, context: RequestContext) async throws -> HandlerOutcome {
        let names = try request.names()
        let removed = try await writes.commit(touching: names.count) { _, secrets in
            let missing = names.filter { secrets[$0] == nil }
            guard missing.isEmpty else {
                throw CofferError(.notFound, "no secret named \(missing.map(\.rawValue).joined(separator: ", ")); nothing was deleted")
            }
            return names.map { name in
                defer { secrets[name] = nil }
                return (SecretChange(event: .delete, name: name, version: nil, stage: nil), secrets[name]?.access)
            }
        }
        writes.publish(removed)
        return HandlerOutcome([("deleted", .array(names.map { .string($0.rawValue) }))])
    }
}
