import CofferCore
import Model

/// `describe`: one secret's metadata and its versions, never a value.
struct DescribeHandler: ImmediateOperationHandler {
    let operation = Operation.describe
    let members: Set<String> = ["name"]

    func answer(_ request: Request, context: RequestContext) throws -> HandlerOutcome {
        let lookup = try SecretLookup.describing(try request.name(), in: context)
        let versions: [ResponseValue] = lookup.secret.versions.map { v in
            .object([
                ("version", .unsigned(v.version)), ("created_at", .integer(v.createdAt)),
                ("created_by", .string(v.createdBy)), ("key_id", .string(v.sealed.keyID.hex)),
                ("stages", .array(lookup.secret.stages.held(by: v.version).map { .string($0.rawValue) })),
            ])
        }
        return HandlerOutcome(lookup.metadata + [("history", .array(versions))], version: lookup.version.version)
    }
}
