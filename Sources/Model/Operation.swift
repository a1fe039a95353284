/// Every operation of the wire protocol (docs/protocol.md).
public enum Operation: String, Sendable, Hashable, CaseIterable {
    case ping, get, verify, list, describe, watch
    case put, rotate, promote, rollback, delete, history
    case tokenCreate = "token.create"
    case rotateMasterKey = "rotate-master-key"
    case seal, unseal, reload, status, audit
    case `import`, export, restore

    /// Operations that change the store or the daemon: served on the admin
    /// socket only.
    public var isAdministrative: Bool {
        switch self {
        case .ping, .get, .verify, .list, .describe, .watch: return false
        default: return true
        }
    }

    /// Operations that act on a named secret (the policy checks the name).
    public var actsOnSecret: Bool {
        switch self {
        case .get, .verify, .describe, .put, .rotate, .promote, .rollback, .delete, .history, .tokenCreate: return true
        default: return false
        }
    }
}
