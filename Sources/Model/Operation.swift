/// Every operation of the wire protocol (docs/protocol.md).
public enum Operation: String, Sendable, Hashable, CaseIterable {
    case ping, get, verify, list, describe, watch
    case put, rotate, promote, rollback, delete, history
    case tokenCreate = "token.create"
    case rotateMasterKey = "rotate-master-key"
    case seal, unseal, reload, status, audit
    case `import`, export, restore

    /// What an operation reaches, which decides how a policy rule can grant
    /// it (docs/policy.md, "Who may run which operation").
    public enum Reach: Sendable, Equatable {
        /// Decides nothing (ping).
        case nothing
        /// Acts on named secrets: a rule grants it on the names its patterns
        /// match, and only those.
        case names
        /// Acts on the whole store or the daemon (every value at once, the
        /// keys, the audit): no name pattern narrower than `**` reaches it.
        case wholeStore
    }

    /// Switched over exhaustively (no `default:`): a new operation does not
    /// compile until someone says what it reaches.
    public var reach: Reach {
        switch self {
        case .ping: return .nothing
        case .get, .verify, .list, .describe, .watch: return .names
        case .put, .rotate, .promote, .rollback, .delete, .history, .tokenCreate, .import: return .names
        case .export, .seal, .unseal, .rotateMasterKey, .restore, .reload, .status, .audit: return .wholeStore
        }
    }

    /// Operations that change the store or the daemon: served on the admin
    /// socket only.
    public var isAdministrative: Bool {
        switch self {
        case .ping, .get, .verify, .list, .describe, .watch: return false
        case .put, .rotate, .promote, .rollback, .delete, .history, .tokenCreate, .import: return true
        case .export, .seal, .unseal, .rotateMasterKey, .restore, .reload, .status, .audit: return true
        }
    }

    /// Operations whose request names one secret in `name` (the policy
    /// checks it). list and watch reach names too, but filter what they
    /// show per name; delete and import name theirs in their own members.
    public var actsOnSecret: Bool {
        switch self {
        case .get, .verify, .describe, .put, .rotate, .promote, .rollback, .delete, .history, .tokenCreate: return true
        case .ping, .list, .watch, .import: return false
        case .export, .seal, .unseal, .rotateMasterKey, .restore, .reload, .status, .audit: return false
        }
    }

    /// Operations that read a secret or its metadata: the ones a secret's own
    /// principals and scope govern.
    public var reads: Bool {
        switch self {
        case .get, .verify, .describe, .list, .watch: return true
        case .ping, .put, .rotate, .promote, .rollback, .delete, .history, .tokenCreate, .import: return false
        case .export, .seal, .unseal, .rotateMasterKey, .restore, .reload, .status, .audit: return false
        }
    }
}
