import Model

/// What kind of decision an event records (COFFER_EVENT).
public enum AuditEventKind: String, Sendable, CaseIterable {
    case get, verify, list, describe, put, rotate, delete, status, watch
    case promote, rollback, history
    case tokenCreate = "token_create"
    case masterKeyRotated = "master_key_rotated"
    case seal, unseal
    case restore
    case mirrorError = "mirror_error"
    case mirrorRecovered = "mirror_recovered"
    case reload
    case reloadFailed = "reload_failed"
    case auditReview = "audit_review"
    case tamper
    case auditLost = "audit_lost"
    case `import`, export
    case denied
    case started, stopped

    /// A stable 128-bit MESSAGE_ID per event type (systemd/coffer.catalog
    /// explains each; `journalctl -x` shows the entry).
    public var messageID: String {
        switch self {
        case .get: return "af67983483574365883e90c9b4934ceb"
        case .verify: return "7bbfa57a66754615a745f6a18e638401"
        case .list: return "08938931ff66495d8e88f807a31c4ac9"
        case .describe: return "4d43efd4df2a4787b0e208a421bf40fb"
        case .put: return "248bc9ef09c64c43baffaae7ebbb5419"
        case .delete: return "5a1a307d8c0b47718834b302258230f4"
        case .status: return "705b3423131a4a69b3f8a56236e6cbf5"
        case .rotate: return "808bfbdcca5c446d841ab0dacfc290da"
        case .watch: return "a53c0defd57b456aac77e8051a86cb5c"
        case .restore: return "1cd4108c10b24027b2b63e1723fbf526"
        case .mirrorError: return "db25adf50d6347adbcc00a6ab87f4b24"
        case .mirrorRecovered: return "c7d879f899a14a1e8fbc285870db3e3e"
        case .promote: return "4577c67500da4dcfb08a928151ccfd7c"
        case .rollback: return "4cd7ae659e2a4ff093b450219de105c3"
        case .history: return "17b5d5e6da4148848f6dde5d41d0918c"
        case .tokenCreate: return "39cbe32734c44b50b8bf13a2c84955e8"
        case .masterKeyRotated: return "3f980909abba433192027c2b2f97b2da"
        case .seal: return "6a9e9975fda04fcd952ceedec51e8a8b"
        case .unseal: return "e577089e1d2d4b65bb665d1d0d9e5947"
        case .reload: return "2dc2f8002dbd4f15b68b17ff4cb23183"
        case .auditReview: return "ad4124e51bb8471f8b8ae65c10fd03ad"
        case .import: return "e1ef0924725f4412b44c1445828cdc19"
        case .export: return "9743e93a6b8a4c828f9c6ef7e99a8b9f"
        case .auditLost: return "998a402935514ca1a1bc0d216d615de7"
        case .tamper: return "f02e63575f9447989767c0e45a1dd593"
        case .reloadFailed: return "e9be9d0eaa9e4f5986a78953dd08c0de"
        case .denied: return "45d63f0aa9364f6f84dce37051b6a49b"
        case .started: return "5609d4fdfb7945d6afbfc6eb0dfdb7be"
        case .stopped: return "e47ceb0fba424a92ac614f7101b1277c"
        }
    }
}

/// The outcome of a decision (COFFER_RESULT).
public enum AuditResult: String, Sendable {
    case ok
    case denied
    case notFound = "not_found"
    case error
}

/// One audit event. It has no field that could hold a value, a verify
/// candidate or key bytes: only names, numbers and the kernel-reported peer.
public struct AuditEvent: Sendable, Equatable {
    public var kind: AuditEventKind
    public var result: AuditResult
    public var operation: Operation?
    public var secret: String?
    public var version: UInt64?
    public var peer: PeerIdentity?
    public var listener: Listener?
    public var requestID: String?
    /// Why, for denials and errors: a fixed phrase we wrote (DenialReason,
    /// an error code), never client input.
    public var reason: String?
    /// For a coalesced summary: how many more times it happened in the window.
    public var count: Int?
    /// For audit_lost: the sequence numbers that could not be sent ("5-7,9"),
    /// and the lane they were numbered in (the chain's lanes, AuditChainer).
    public var lost: String?
    public var lostLane: Int?

    public init(
        kind: AuditEventKind, result: AuditResult, operation: Operation? = nil, secret: String? = nil,
        version: UInt64? = nil, peer: PeerIdentity? = nil, listener: Listener? = nil,
        requestID: String? = nil, reason: String? = nil
    ) {
        self.kind = kind
        self.result = result
        self.operation = operation
        self.secret = secret
        self.version = version
        self.peer = peer
        self.listener = listener
        self.requestID = requestID
        self.reason = reason
    }

    /// syslog(3) priority by outcome: denials are warnings (4), errors
    /// errors (3), everything else informational (6).
    public var priority: Int {
        switch result {
        case .ok, .notFound: return 6
        case .denied: return 4
        case .error: return 3
        }
    }

    public var message: String {
        var text = "\(kind.rawValue)"
        if let operation, kind == .denied { text += " \(operation.rawValue)" }
        if let secret { text += " \(secret)" }
        if let version { text += " v\(version)" }
        text += ": \(result.rawValue)"
        if let count { text += " (\(count) more in the window)" }
        if let peer { text += " for \(peer)" }
        return text
    }

    /// The journal fields, in order (docs/operator-guide.md lists them).
    public var fields: [(String, String)] {
        var f: [(String, String)] = [
            ("MESSAGE", message),
            ("MESSAGE_ID", kind.messageID),
            ("PRIORITY", String(priority)),
            ("SYSLOG_IDENTIFIER", "cofferd"),
            ("COFFER_EVENT", kind.rawValue),
            ("COFFER_RESULT", result.rawValue),
        ]
        if let operation { f.append(("COFFER_OPERATION", operation.rawValue)) }
        if let secret { f.append(("COFFER_SECRET", secret)) }
        if let version { f.append(("COFFER_VERSION", String(version))) }
        if let peer {
            f.append(("COFFER_PEER_UID", String(peer.uid)))
            f.append(("COFFER_PEER_GID", String(peer.gid)))
            f.append(("COFFER_PEER_PID", String(peer.pid)))
            if let unit = peer.unit { f.append(("COFFER_PEER_UNIT", unit)) }
        }
        if let listener { f.append(("COFFER_LISTENER", listener.rawValue)) }
        if let requestID { f.append(("COFFER_REQUEST_ID", requestID)) }
        if let reason { f.append(("COFFER_REASON", reason)) }
        if let count { f.append(("COFFER_COUNT", String(count))) }
        if let lost { f.append(("COFFER_LOST", lost)) }
        if let lostLane { f.append(("COFFER_LOST_LANE", String(lostLane))) }
        return f
    }
}
