import CofferCore
import JSON
import FileStore
import LockedMemory
import Model
import Seal
#if canImport(Glibc)
import Glibc
#endif

/// `import`: many secrets in one commit, all or none (`cofferctl import`
/// sends an env or JSON file in batches). Each becomes the secret's next
/// version, as `put` would make it.
struct ImportHandler: OperationHandler {
    let writes: any SecretWrites
    let operation = Operation.import
    let members: Set<String> = ["secrets"]
    static let maxItems = 1000

    func targets(of request: Request) throws(CofferError) -> [SecretName] {
        try items(of: request).map(\.name)
    }

    struct Item {
        let name: SecretName
        let kind: SecretKind?
        let members: JSONObject
    }

    func items(of request: Request) throws(CofferError) -> [Item] {
        guard case .array(let values)? = request.members["secrets"], !values.isEmpty else {
            throw CofferError(.badRequest, "'secrets' must be a non-empty array of {name, value | value_base64, kind}")
        }
        guard values.count <= Self.maxItems else { throw CofferError(.badRequest, "at most \(Self.maxItems) secrets per import") }
        var items: [Item] = []
        var seen: Set<SecretName> = []
        for value in values {
            guard case .object(let members) = value else { throw CofferError(.badRequest, "each of 'secrets' must be an object") }
            for key in members.keys where !["name", "value", "value_base64", "kind"].contains(key) {
                throw CofferError(.badRequest, "an import item does not take \(Request.shown(member: key))")
            }
            guard case .string(let nameString)? = members["name"] else { throw CofferError(.badRequest, "an import item needs a 'name'") }
            let name = try SecretName(request.text(nameString))
            guard seen.insert(name).inserted else { throw CofferError(.badRequest, "\(name) appears twice in the import") }
            var kind: SecretKind?
            if case .string(let k)? = members["kind"] { kind = try SecretKind(request.text(k)) }
            items.append(Item(name: name, kind: kind, members: members))
        }
        return items
    }

    func handle(_ request: Request, context: RequestContext) async throws -> HandlerOutcome {
        var values: [ImportItem] = []
        for item in try items(of: request) {
            guard let input = try request.secretInput(in: item.members) else {
                throw CofferError(.badRequest, "\(item.name) has no 'value' or 'value_base64'")
            }
            values.append(ImportItem(name: item.name, kind: item.kind, value: input.bytes, encoding: input.encoding))
        }
        let imported = try await writes.importValues(values, by: context.peer.principal)
        return HandlerOutcome([("imported", .integer(Int64(imported)))])
    }
}

/// `export`: the store as a store file (ciphertext only, with its MAC), or
/// with `plaintext: true` every revealable value. The plaintext form is for
/// migrations; cofferctl asks for it only with --plaintext and warns.
struct ExportHandler: OperationHandler {
    let store: SecretStore
    let opener: RecordOpener
    let operation = Operation.export
    let members: Set<String> = ["plaintext"]

    func handle(_ request: Request, context: RequestContext) async throws -> HandlerOutcome {
        guard try request.bool("plaintext") == true else {
            let file = try store.exportedFile(of: context.snapshot)
            return HandlerOutcome([("store_file", .revealed(Revelation(.storeFile(String(decoding: file, as: UTF8.self)))))])
        }
        let snapshot = context.snapshot
        var items: [ResponseValue] = []
        var skipped: [ResponseValue] = []
        for name in snapshot.sortedNames {
            let lookup = try SecretLookup.describing(name, in: context)
            guard lookup.secret.protection == .sealed else {
                skipped.append(.string(name.rawValue))
                continue
            }
            let value = try lookup.open(with: opener)
            let key = lookup.version.encoding == .text ? "value" : "value_base64"
            items.append(.object([("name", .string(name.rawValue)), ("kind", .string(lookup.secret.kind.rawValue)),
                                  (key, .secret(value, lookup.version.encoding))]))
        }
        return HandlerOutcome([("secrets", .array(items)), ("hashed_not_exported", .array(skipped))])
    }
}
