/// Where the daemon records its decisions: the configured sink, and the
/// only maker of `AuditReceipt`s. An answer that reveals something (a
/// value, a token, a verify verdict) can be written only with the receipt
/// of the event that recorded it (Server's `Revelation`), so a reveal whose
/// event was not accepted cannot reach the wire, whatever operation made it.
public struct AuditTrail: Sendable {
    public let sink: any AuditSink

    public init(_ sink: any AuditSink) {
        self.sink = sink
    }

    /// Records `event` (a decision that reveals nothing).
    public func record(_ event: AuditEvent) throws(AuditError) {
        try sink.record(event)
    }

    /// Records `event`; the receipt says the sink accepted it, and lets
    /// what the event records be revealed.
    public func receipt(recording event: AuditEvent) throws(AuditError) -> AuditReceipt {
        try sink.record(event)
        return AuditReceipt()
    }

    public var name: String { sink.name }
    public var isReachable: Bool { sink.isReachable }
    public var sequences: [UInt64]? { sink.sequences }
    public var isStalled: Bool { sink.isStalled }
    public func checkDelivery() throws(AuditError) { try sink.checkDelivery() }
}

/// Proof that an audit event was accepted by the sink. Made only by
/// `AuditTrail.receipt(recording:)` (its initializer is private to this
/// file).
public struct AuditReceipt: Sendable {
    fileprivate init() {}
}
