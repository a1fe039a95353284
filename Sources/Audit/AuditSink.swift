/// Where audit events go. `record` throws when the event could not be
/// delivered, so a caller can refuse to reveal (fail closed).
public protocol AuditSink: Sendable {
    func record(_ event: AuditEvent) throws(AuditError)
    /// A short name for status output: "journal" or "stderr".
    var name: String { get }
    /// Whether an event sent now would arrive (status shows it).
    var isReachable: Bool { get }
    /// The last COFFER_SEQ stamped in each lane (lane 0 first), when the
    /// sink chains its events.
    var sequences: [UInt64]? { get }
    /// Throws when an event sent now would be lost. Cheap enough for every
    /// read (a coalesced read sends nothing, yet must fail closed as one
    /// that sends would); `isReachable` may cost a connect.
    func checkDelivery() throws(AuditError)
    /// Whether the sink has stopped taking events for now (a journald that
    /// does not read); status shows it.
    var isStalled: Bool { get }
}

extension AuditSink {
    public var isReachable: Bool { true }
    public var sequences: [UInt64]? { nil }
    public func checkDelivery() throws(AuditError) {}
    public var isStalled: Bool { false }
}

public struct AuditError: Error, CustomStringConvertible {
    public let message: String
    public init(_ message: String) { self.message = message }
    public var description: String { message }
}
