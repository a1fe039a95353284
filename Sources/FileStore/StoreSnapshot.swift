import Model

/// One immutable state of the store: what every reader sees until the next
/// commit swaps in a new one. Holds ciphertext only.
public struct StoreSnapshot: Sendable, Equatable {
    public let storeID: String
    /// Incremented by every commit.
    public let generation: UInt64
    /// Packed, with the latest changes layered over (LayeredSecrets): a
    /// lookup decodes the one secret it finds.
    public let secrets: LayeredSecrets
    /// The mirror's outbox: names changed (or deleted) since PostgreSQL
    /// last confirmed them. Kept in the store file, so it is exactly as
    /// durable as the change itself (docs/mirror.md).
    public let outbox: Outbox

    public init(storeID: String, generation: UInt64, secrets: LayeredSecrets, outbox: Outbox = [:]) {
        self.storeID = storeID
        self.generation = generation
        self.secrets = secrets
        self.outbox = outbox
    }

    public init(storeID: String, generation: UInt64, secrets: [SecretName: Secret], outbox: Outbox = [:]) {
        self.init(storeID: storeID, generation: generation, secrets: LayeredSecrets(secrets), outbox: outbox)
    }

    public subscript(name: SecretName) -> Secret? { secrets[name] }

    public var sortedNames: [SecretName] { secrets.names }
}

/// A name waiting for the mirror: the commit that queued it, and when.
public struct OutboxEntry: Sendable, Equatable {
    public let generation: UInt64
    /// Seconds since the epoch: how far behind the mirror is.
    public let queuedAt: Int64

    public init(generation: UInt64, queuedAt: Int64) {
        self.generation = generation
        self.queuedAt = queuedAt
    }
}
