/// A secret's own say over who reads it (the omni_credentials model: each
/// credential names its principal and scope). Empty principals and the
/// `all` scope leave the decision to the policy file's rules.
public struct SecretAccess: Sendable, Equatable, Encodable {
    /// When not empty, only these principals read the secret (get, verify,
    /// describe, list, watch, LoadCredential=); rules do not widen it.
    public var principals: [Principal]
    public var scope: SecretScope

    public static let unrestricted = SecretAccess(principals: [], scope: .all)

    public init(principals: [Principal], scope: SecretScope) {
        self.principals = principals
        self.scope = scope
    }

    public var isUnrestricted: Bool { self == .unrestricted }

    enum CodingKeys: String, CodingKey { case principals, scope }

    public func encode(to encoder: any Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(principals.map(\.description), forKey: .principals)
        try c.encode(scope, forKey: .scope)
    }
}

/// Where a secret may be served: everywhere (`{"all": true}`), or only
/// through the listed sockets (`{"sockets": ["credentials"]}` keeps a
/// LoadCredential= secret off coffer.sock). The admin socket's superusers
/// and operators are not limited by it.
public enum SecretScope: Sendable, Equatable, Encodable {
    case all
    case sockets(Set<Listener>)

    public func allows(_ listener: Listener) -> Bool {
        switch self {
        case .all: return true
        case .sockets(let allowed): return allowed.contains(listener)
        }
    }

    enum CodingKeys: String, CodingKey { case all, sockets }

    public func encode(to encoder: any Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        switch self {
        case .all: try c.encode(true, forKey: .all)
        case .sockets(let s): try c.encode(s.map(\.rawValue).sorted(), forKey: .sockets)
        }
    }
}

/// Resolves no names: for principals stored in canonical (numeric) form.
public struct NumericAccounts: AccountDirectory {
    public init() {}
    public func userID(named: String) -> UInt32? { nil }
    public func groupID(named: String) -> UInt32? { nil }
}
