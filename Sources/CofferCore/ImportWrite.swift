import FileStore
import LockedMemory
import Model
#if canImport(Glibc)
import Glibc
#endif

/// One secret of an import: its name, the kind to give it, and its value.
package struct ImportItem: Sendable {
    package let name: SecretName
    package let kind: SecretKind?
    package let value: LockedBytes
    package let encoding: ValueEncoding

    package init(name: SecretName, kind: SecretKind?, value: LockedBytes, encoding: ValueEncoding) {
        self.name = name
        self.kind = kind
        self.value = value
        self.encoding = encoding
    }
}

extension CofferServices {
    /// The import use case: every item as the next current version of its
    /// secret (a new sealed secret when there is none), in one durable
    /// commit, all or none; then tells the watchers. A hashed secret is
    /// refused: import stores revealable values only. Returns how many.
    package func importValues(_ items: [ImportItem], by author: String) async throws -> Int {
        for item in items where item.value.count > VersionWrite.maxValueBytes {
            throw CofferError(.badRequest, "the value of \(item.name) is larger than \(VersionWrite.maxValueBytes) bytes")
        }
        let keyring = self.keyring, sealer = self.sealer, retain = retainVersions
        let now = Int64(time(nil))
        let written = try await commitOnBlockingPool { storeID, secrets in
            // The key is taken under the writer lock, as in `write`.
            let key = try keyring.current()
            var changes: [(SecretChange, SecretAccess?)] = []
            for item in items {
                var secret = secrets[item.name] ?? Secret(name: item.name, kind: item.kind ?? .generic, protection: .sealed, versions: [])
                guard secret.protection == .sealed else {
                    throw CofferError(.conflict, "\(item.name) is hashed; import stores revealable values only")
                }
                if let kind = item.kind { secret.kind = kind }
                let number = try item.value.withUnsafeBytes {
                    try secret.addSealedVersion($0, storeID: storeID, key: key, sealer: sealer, encoding: item.encoding,
                                                at: now, by: author, retain: retain)
                }
                secrets[item.name] = secret
                changes.append((SecretChange(event: .put, name: item.name, version: number, stage: "current"), secret.access))
            }
            return changes
        }
        publish(written)
        return written.count
    }
}
