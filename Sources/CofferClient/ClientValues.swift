/// A secret as `get` answers it.
public struct Secret: Sendable {
    public let name: String
    public let version: UInt64
    /// The stage the version holds; nil for an older, unstaged version.
    public let stage: String?
    public let kind: String?
    public let value: SecretValue

    init(_ answer: Answer) throws(CofferClientError) {
        guard let name = answer.string("name") else { throw CofferClientError(.malformedAnswer, "a get answer without a name") }
        self.name = name
        version = answer.unsigned("version") ?? 0
        stage = answer.string("stage")
        kind = answer.string("kind")
        value = try answer.value()
    }
}

/// What `list` and `describe` tell of a secret: never its value.
public struct SecretInfo: Sendable, Equatable {
    public let name: String
    public let kind: String?
    public let protection: String?
    /// The current version, and how many are kept.
    public let version: UInt64?
    public let versions: UInt64?
    /// Seconds since the epoch, and who wrote the current version.
    public let updatedAt: UInt64?
    public let updatedBy: String?

    init(_ answer: Answer) throws(CofferClientError) {
        guard let name = answer.string("name") else { throw CofferClientError(.malformedAnswer, "a secret without a name") }
        self.name = name
        kind = answer.string("kind")
        protection = answer.string("protection")
        version = answer.unsigned("version")
        versions = answer.unsigned("versions")
        updatedAt = answer.unsigned("updated_at")
        updatedBy = answer.string("updated_by")
    }
}

/// One change a watch heard (docs/protocol.md, `watch`). Never a value.
public struct ChangeEvent: Sendable, Equatable {
    public enum Kind: String, Sendable {
        case put, rotate, delete
        /// The policy or the store was read again: list to catch up.
        case reload
        /// An event this version of the client does not know.
        case other
    }

    public let kind: Kind
    public let name: String?
    public let version: UInt64?
    public let stage: String?

    public init(kind: Kind, name: String?, version: UInt64?, stage: String?) {
        self.kind = kind
        self.name = name
        self.version = version
        self.stage = stage
    }
}
