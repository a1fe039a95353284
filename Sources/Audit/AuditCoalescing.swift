import Model

/// `--audit-coalesce SECONDS` (docs/audit.md): the first successful read by
/// a (peer, secret, operation) in a window is audited as usual, before the
/// answer; repeats within the window are only counted, and one summary
/// event with COFFER_COUNT closes the window. Denials, failures and writes
/// are never coalesced. Decides only: the sink records what it returns.
public struct AuditCoalescing: Sendable {
    public enum Decision: Sendable, Equatable {
        /// Record the event now (and open a window for its key).
        case record
        /// A repeat inside an open window: counted, recorded later in sum.
        case absorbed
    }

    struct Key: Hashable {
        let uid: UInt32
        let gid: UInt32
        let unit: String?
        let secret: String?
        let kind: AuditEventKind
    }

    struct Window {
        let opened: UInt64
        var repeats: Int
        let first: AuditEvent
    }

    public let windowMilliseconds: UInt64
    private var windows: [Key: Window] = [:]

    public init(windowMilliseconds: UInt64) {
        self.windowMilliseconds = windowMilliseconds
    }

    static let coalescible: Set<AuditEventKind> = [.get, .verify, .describe, .list]

    public mutating func admit(_ event: AuditEvent, now: UInt64) -> Decision {
        guard event.result == .ok, Self.coalescible.contains(event.kind), let peer = event.peer else { return .record }
        let key = Key(uid: peer.uid, gid: peer.gid, unit: peer.unit, secret: event.secret, kind: event.kind)
        if var window = windows[key], now < window.opened + windowMilliseconds {
            window.repeats += 1
            windows[key] = window
            return .absorbed
        }
        return .record
    }

    /// The event `admit` said to record was recorded: it opens a window.
    /// Only then, so a read whose own event failed never lets later ones
    /// through unaudited.
    public mutating func recorded(_ event: AuditEvent, now: UInt64) {
        guard event.result == .ok, Self.coalescible.contains(event.kind), let peer = event.peer else { return }
        let key = Key(uid: peer.uid, gid: peer.gid, unit: peer.unit, secret: event.secret, kind: event.kind)
        // An expired window with repeats still owes its summary.
        if let expired = windows[key], expired.repeats > 0 { pending.append(Self.summary(expired)) }
        windows[key] = Window(opened: now, repeats: 0, first: event)
    }

    private var pending: [AuditEvent] = []

    /// Summaries for the windows that have closed by `now`.
    public mutating func due(now: UInt64) -> [AuditEvent] {
        var out = pending
        pending.removeAll()
        for (key, window) in windows where now >= window.opened + windowMilliseconds {
            if window.repeats > 0 { out.append(Self.summary(window)) }
            windows[key] = nil
        }
        return out
    }

    /// Every summary still owed (shutdown).
    public mutating func drain() -> [AuditEvent] {
        due(now: UInt64.max - windowMilliseconds)
    }

    static func summary(_ window: Window) -> AuditEvent {
        var event = window.first
        event.count = window.repeats
        event.requestID = nil
        event.version = nil
        return event
    }
}
