/// Who may do what: a list of grants, default deny. Decides only; the server
/// acts on the decision and the audit records it.
///
/// This is the foundation's policy: dev mode grants its invoking user
/// everything; production grants the admin socket to root and the daemon's
/// own user. The policy file (principals, groups, units, globs) builds on it.
public struct AccessPolicy: Sendable, Equatable {
    public struct Grant: Sendable, Equatable {
        public var uid: UInt32
        public var operations: Set<Operation>
        public var names: NamePattern

        public init(uid: UInt32, operations: Set<Operation>, names: NamePattern) {
            self.uid = uid
            self.operations = operations
            self.names = names
        }
    }

    public var grants: [Grant]

    public init(grants: [Grant]) {
        self.grants = grants
    }

    /// Everything, for `uid` (dev mode's invoking user).
    public static func owner(uid: UInt32) -> AccessPolicy {
        AccessPolicy(grants: [Grant(uid: uid, operations: Set(Operation.allCases), names: .any)])
    }

    /// The decision for `peer` doing `operation` on `name` (nil for
    /// operations without a name) through `listener`.
    public func decide(_ peer: PeerIdentity, _ operation: Operation, name: SecretName?, on listener: Listener) -> PolicyDecision {
        if operation == .ping { return .allow }
        if operation.isAdministrative, listener != .admin {
            return .deny(.administrativeOperationOnServiceSocket)
        }
        for grant in grants where grant.uid == peer.uid && grant.operations.contains(operation) {
            if let name, !grant.names.matches(name) { continue }
            return .allow
        }
        return .deny(.noGrant)
    }

    /// Whether `peer` may see `name` in a list.
    public func mayList(_ peer: PeerIdentity, _ name: SecretName, on listener: Listener) -> Bool {
        grants.contains { $0.uid == peer.uid && $0.operations.contains(.list) && $0.names.matches(name) }
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
}

/// A glob over secret names: `*` matches within one segment, `**` across
/// segments; every other character matches itself.
public struct NamePattern: Sendable, Equatable, CustomStringConvertible {
    public static let any = NamePattern("**")
    public let pattern: String

    public init(_ pattern: String) {
        self.pattern = pattern
    }

    public func matches(_ name: SecretName) -> Bool {
        Self.match(Array(pattern.utf8)[...], Array(name.rawValue.utf8)[...])
    }

    private static func match(_ p: ArraySlice<UInt8>, _ s: ArraySlice<UInt8>) -> Bool {
        guard let first = p.first else { return s.isEmpty }
        if first == UInt8(ascii: "*") {
            let doubled = p.dropFirst().first == UInt8(ascii: "*")
            let rest = doubled ? p.dropFirst(2) : p.dropFirst()
            var tail = s
            while true {
                if match(rest, tail) { return true }
                guard let c = tail.first, doubled || c != UInt8(ascii: "/") else { return false }
                tail = tail.dropFirst()
            }
        }
        guard let c = s.first, c == first else { return false }
        return match(p.dropFirst(), s.dropFirst())
    }

    public var description: String { pattern }
}
