
/// How a secret may be used. `sealed` values can be revealed with get;
/// `hashed` ones only checked with verify.
public enum Protection: String, Sendable, Codable, CaseIterable {
    case sealed
    case hashed
}

/// Whether the value was given as text (`value`) or bytes (`value_base64`),
/// so that get answers in the same form.
public enum ValueEncoding: String, Sendable, Codable {
    case text
    case binary
}

/// An operator's label for what a secret is (password, api-key, …): short,
/// lowercase, `[a-z0-9_-]{1,32}`. Not interpreted by cofferd.
public struct SecretKind: Hashable, Sendable, Codable, CustomStringConvertible {
    public static let generic = SecretKind(unchecked: "generic")
    public let rawValue: String

    public init(_ text: String) throws(CofferError) {
        let ok = (1...32).contains(text.utf8.count) && text.utf8.allSatisfy {
            (97...122).contains($0) || (48...57).contains($0) || $0 == 95 || $0 == 45
        }
        guard ok else { throw CofferError(.badRequest, "invalid kind: use 1 to 32 of a-z 0-9 _ -") }
        rawValue = text
    }

    private init(unchecked: String) { rawValue = unchecked }

    public init(from decoder: any Decoder) throws {
        let text = try decoder.singleValueContainer().decode(String.self)
        self = try SecretKind(text)
    }

    public func encode(to encoder: any Encoder) throws {
        var c = encoder.singleValueContainer()
        try c.encode(rawValue)
    }

    public var description: String { rawValue }
}

/// One version of a secret: its ciphertext and who made it, when.
public struct SecretVersion: Sendable, Equatable {
    public var version: UInt64
    public var sealed: SealedRecord
    public var encoding: ValueEncoding
    /// Seconds since the Unix epoch.
    public var createdAt: Int64
    /// The kernel-reported principal that wrote it, e.g. "uid:1000".
    public var createdBy: String
    /// Set for (and only for) the versions of a `hashed` secret.
    public var hash: HashParameters?
    /// Random, fixed at creation and kept through re-seals: tells two
    /// hosts' versions with the same number apart (docs/mirror.md, "Two
    /// hosts writing one name"). nil for versions made before it existed.
    public var id: String?

    public init(
        version: UInt64, sealed: SealedRecord, encoding: ValueEncoding, createdAt: Int64, createdBy: String,
        hash: HashParameters? = nil, id: String? = nil
    ) {
        self.version = version
        self.sealed = sealed
        self.encoding = encoding
        self.createdAt = createdAt
        self.createdBy = createdBy
        self.hash = hash
        self.id = id
    }
}

/// A secret: its name, kind, protection, versions (oldest first) and which
/// of them hold the stages. Values are only ever held sealed.
public struct Secret: Sendable, Equatable {
    public var name: SecretName
    public var kind: SecretKind
    public var protection: Protection
    public var versions: [SecretVersion]
    /// Which version is current, previous and pending (SecretStages).
    public var stages: SecretStages
    /// The secret's own principals and scope (unrestricted by default).
    public var access: SecretAccess
    /// How long after a rotation verify still accepts the previous version
    /// (0: not at all), so clients mid-rotation keep working.
    public var graceSeconds: Int64
    /// Seconds since the Unix epoch after which nothing of it is served or
    /// verified (EXPIRED); nil: never.
    public var expiresAt: Int64?
    /// For tokens: the operations it allows (verify with `operation` checks
    /// them); empty: not restricted.
    public var operations: [String]

    /// What an operation a token allows may be named: 1 to 64 of
    /// a-z 0-9 . _ : -. No comma, so the store MAC's comma-joined list of
    /// them (docs/file-format.md) stands for one list only.
    public static func isValidOperation(_ text: String) -> Bool {
        (1...64).contains(text.utf8.count)
            && text.utf8.allSatisfy { (97...122).contains($0) || (48...57).contains($0) || [46, 95, 58, 45].contains($0) }
    }

    public init(
        name: SecretName, kind: SecretKind, protection: Protection, versions: [SecretVersion],
        stages: SecretStages? = nil, access: SecretAccess = .unrestricted,
        graceSeconds: Int64 = 0, expiresAt: Int64? = nil, operations: [String] = []
    ) {
        self.name = name
        self.kind = kind
        self.protection = protection
        self.versions = versions
        self.stages = stages ?? SecretStages(newest: versions.last)
        self.access = access
        self.graceSeconds = graceSeconds
        self.expiresAt = expiresAt
        self.operations = operations
    }

    /// The version holding the current stage.
    public var current: SecretVersion? { version(stages.current) }

    public func version(_ number: UInt64) -> SecretVersion? {
        versions.first { $0.version == number }
    }

    public var nextVersion: UInt64 { (versions.last?.version ?? 0) + 1 }

    /// The longest grace period: a year.
    public static let maxGraceSeconds: Int64 = 366 * 86400

    /// What a record of this secret is bound to (the AAD, docs/crypto.md).
    public func identity(storeID: String, version: UInt64) -> RecordIdentity {
        RecordIdentity(storeID: storeID, name: name.rawValue, version: version, protection: protection.rawValue)
    }
}
