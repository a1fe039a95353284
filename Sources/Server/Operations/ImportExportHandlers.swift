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
    let opener: RecordOpener
    let operation = Operation.import
    let members: Set<String> = ["secrets"]
    static let maxItems = 1000

    func targets(of request: Request) throws(CofferError) -> [SecretName] {
        try items(of: request).map(\.name)
    }

    struct Item {
        let name: SecretName
        let kind: SecretKind?
        let members: [String: JSONValue]
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
        let items = try items(of: request)
        var inputs: [(Item, SecretInput)] = []
        for item in items {
            guard let input = try request.secretInput(in: item.members) else {
                throw CofferError(.badRequest, "\(item.name) has no 'value' or 'value_base64'")
            }
            guard input.bytes.count <= VersionWrite.maxValueBytes else {
                throw CofferError(.badRequest, "the value of \(item.name) is larger than \(VersionWrite.maxValueBytes) bytes")
            }
            inputs.append((item, input))
        }
        let keyring = opener.keyring
        let sealer = opener.sealer
        let author = context.peer.principal
        let now = Int64(time(nil))
        let prepared = inputs
        let retain = writes.retainVersions
        let written = try await writes.commit { storeID, secrets in
            // Under the writer lock, as in NewVersion.
            let key = try keyring.current()
            var changes: [(SecretChange, SecretAccess?)] = []
            for (item, input) in prepared {
                var secret = secrets[item.name] ?? Secret(name: item.name, kind: item.kind ?? .generic, protection: .sealed, versions: [])
                guard secret.protection == .sealed else {
                    throw CofferError(.conflict, "\(item.name) is hashed; import stores revealable values only")
                }
                if let kind = item.kind { secret.kind = kind }
                let number = secret.nextVersion
                let sealed = try input.bytes.withUnsafeBytes {
                    try sealer.seal($0, for: secret.identity(storeID: storeID, version: number), with: key)
                }
                try secret.add(SecretVersion(version: number, sealed: sealed, encoding: input.encoding,
                                             createdAt: now, createdBy: author, id: try SecureRandom.hex(8)),
                               pending: false, at: now, by: author)
                secret.applyRetention(keep: retain)
                secrets[item.name] = secret
                changes.append((SecretChange(event: .put, name: item.name, version: number, stage: "current"), secret.access))
            }
            return changes
        }
        writes.publish(written)
        return HandlerOutcome([("imported", .integer(Int64(written.count)))])
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
