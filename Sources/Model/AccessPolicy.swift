/// Who may do what. Default deny: a request is allowed only when something
/// below grants it. Decides only; the server acts on the decision and the
/// audit records it, with the reason for a denial.
///
/// Grants, in the order they are checked:
/// - superusers (root, the daemon's own user, dev mode's invoking user) may
///   do everything on the service and admin sockets;
/// - operators (the policy file's `operator` lines) may do everything on the
///   admin socket;
/// - a secret that names its own principals is read only by them, and only
///   through the sockets its scope allows;
/// - rules (`allow OPS on GLOBS to PRINCIPALS`) grant the rest: a name-scoped
///   operation on the names their globs match, a whole-store operation
///   (Operation.Reach) only when a glob is `**`.
public struct AccessPolicy: Sendable, Equatable {
    public struct Rule: Sendable, Equatable {
        public var operations: Set<Operation>
        public var names: [NamePattern]
        public var principals: [Principal]

        public init(operations: Set<Operation>, names: [NamePattern], principals: [Principal]) {
            self.operations = operations
            self.names = names
            self.principals = principals
        }

        func grants(_ peer: PeerIdentity, _ operation: Operation, name: SecretName?) -> Bool {
            guard operations.contains(operation), principals.contains(where: { $0.matches(peer) }) else { return false }
            switch operation.reach {
            case .nothing:
                return true
            case .wholeStore:
                // Export, seal, the keys, the audit: they reach every name at
                // once, so only a rule on every name grants them. `all` on
                // `team-a/**` never does.
                return reachesEveryName
            case .names:
                // No name: list and watch, which show each name only if it
                // is granted on its own (mayList, the change feed).
                guard let name else { return true }
                return names.contains { $0.matches(name) }
            }
        }

        /// Whether the rule's names are the whole store (`**`).
        public var reachesEveryName: Bool { names.contains(.any) }
    }

    /// A `credential` line: for units matching `unit`, the credential `id`
    /// of LoadCredential= is the secret `name`, and that unit may have it.
    public struct CredentialMapping: Sendable, Equatable {
        public var unit: NamePattern
        public var id: String
        public var name: SecretName

        public init(unit: NamePattern, id: String, name: SecretName) {
            self.unit = unit
            self.id = id
            self.name = name
        }
    }

    public var superusers: Set<UInt32>
    public var operators: [Principal]
    public var rules: [Rule]
    public var credentials: [CredentialMapping]

    public init(superusers: Set<UInt32>, operators: [Principal] = [], rules: [Rule] = [], credentials: [CredentialMapping] = []) {
        self.superusers = superusers
        self.operators = operators
        self.rules = rules
        self.credentials = credentials
    }

    /// Everything, for `uid` only (dev mode's invoking user).
    public static func owner(uid: UInt32) -> AccessPolicy {
        AccessPolicy(superusers: [uid])
    }

    /// The same superusers, with the operators, rules and mappings of a
    /// policy file.
    public func with(_ file: PolicyFile) -> AccessPolicy {
        AccessPolicy(superusers: superusers, operators: file.operators, rules: file.rules, credentials: file.credentials)
    }

    /// Whether `peer` may use the admin socket at all: superusers, operators,
    /// and principals that some rule grants an administrative operation.
    /// Checked right after accept; everyone else is turned away.
    public func admitsToAdminSocket(_ peer: PeerIdentity) -> Bool {
        superusers.contains(peer.uid)
            || operators.contains { $0.matches(peer) }
            || rules.contains { rule in
                rule.operations.contains(where: \.isAdministrative) && rule.principals.contains { $0.matches(peer) }
            }
    }

    /// The decision for `peer` doing `operation` on `name` (nil for
    /// operations without a name) through `listener`. `secret` is the
    /// secret's own access settings when it exists.
    public func decide(
        _ peer: PeerIdentity, _ operation: Operation, name: SecretName?, on listener: Listener,
        secret: SecretAccess? = nil
    ) -> PolicyDecision {
        if operation == .ping { return .allow }
        if listener == .admin, !admitsToAdminSocket(peer) { return .deny(.notAnOperator) }
        if operation.isAdministrative, listener != .admin { return .deny(.administrativeOperationOnServiceSocket) }
        // The admin socket's superusers and operators manage every secret.
        if listener == .admin, superusers.contains(peer.uid) || operators.contains(where: { $0.matches(peer) }) { return .allow }
        // A secret kept off a socket is kept off it for root too: a key
        // meant for LoadCredential= alone is not for a root process that
        // reaches coffer.sock (a container sharing the host's uids, a
        // confined root service).
        if name != nil, operation.reads, let secret, !secret.scope.allows(listener) { return .deny(.outsideSecretScope) }
        if superusers.contains(peer.uid) { return .allow }
        if name != nil, operation.reads, let secret, !secret.principals.isEmpty {
            return secret.principals.contains { $0.matches(peer) } ? .allow : .deny(.notASecretPrincipal)
        }
        return rules.contains { $0.grants(peer, operation, name: name) } ? .allow : .deny(.noGrant)
    }

    /// Whether `peer` may set a secret's own principals and scope: only
    /// superusers and operators on the admin socket. A rule granting `put`
    /// lets its principal store values, not choose who reads them.
    public func mayChangeAccess(_ peer: PeerIdentity, on listener: Listener) -> Bool {
        superusers.contains(peer.uid) || (listener == .admin && operators.contains { $0.matches(peer) })
    }

    /// Whether `peer` may see `name` in a list.
    public func mayList(_ peer: PeerIdentity, _ name: SecretName, on listener: Listener, secret: SecretAccess? = nil) -> Bool {
        decide(peer, .list, name: name, on: listener, secret: secret).isAllowed
    }

    /// systemd's LoadCredential=: which secret the credential `id` of `unit`
    /// is, and whether the unit may have it. A `credential` line maps and
    /// grants; otherwise the id is taken as the secret's name and a rule must
    /// grant the unit `get` on it. nil when the id is not a secret name.
    public func credential(unit: String, id: String, secret: (SecretName) -> SecretAccess?) -> (SecretName, PolicyDecision)? {
        let asUnit = PeerIdentity(uid: UInt32.max, gid: UInt32.max, pid: 0, unit: unit)
        let mapping = credentials.first { $0.id == id && $0.unit.matches(text: unit) }
        guard let name = mapping?.name ?? (try? SecretName(id)) else { return nil }
        // The secret's own principals and scope bind a mapping too.
        if let access = secret(name) {
            guard access.scope.allows(.credentials) else { return (name, .deny(.outsideSecretScope)) }
            if !access.principals.isEmpty {
                return (name, access.principals.contains { $0.matches(asUnit) } ? .allow : .deny(.notASecretPrincipal))
            }
        }
        if mapping != nil { return (name, .allow) }
        return (name, rules.contains { $0.grants(asUnit, .get, name: name) } ? .allow : .deny(.noGrant))
    }
}

public enum PolicyDecision: Sendable, Equatable {
    case allow
    case deny(DenialReason)

    public var isAllowed: Bool { self == .allow }
}

/// Why a request was denied; recorded in the audit, never sent in detail to
/// the caller (who only learns DENIED).
public enum DenialReason: String, Sendable, Equatable {
    case noGrant = "no_grant"
    case administrativeOperationOnServiceSocket = "admin_op_on_service_socket"
    case notAnOperator = "not_an_operator"
    case notASecretPrincipal = "not_a_secret_principal"
    case outsideSecretScope = "outside_secret_scope"
    case unitNotTrusted = "unit_not_trusted"
    /// credentials.sock: the address names a unit the connecting process
    /// does not run in.
    case peerOutsideUnit = "peer_outside_unit"
    case unknownCredential = "unknown_credential"
}
