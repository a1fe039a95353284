import Model

/// One immutable state of the store: what every reader sees until the next
/// commit swaps in a new one. Holds ciphertext only.
public struct StoreSnapshot: Sendable, Equatable {
    public let storeID: String
    /// Incremented by every commit.
    public let generation: UInt64
    public let secrets: [SecretName: Secret]

    public init(storeID: String, generation: UInt64, secrets: [SecretName: Secret]) {
        self.storeID = storeID
        self.generation = generation
        self.secrets = secrets
    }

    public subscript(name: SecretName) -> Secret? { secrets[name] }

    public var sortedNames: [SecretName] { secrets.keys.sorted() }
}
