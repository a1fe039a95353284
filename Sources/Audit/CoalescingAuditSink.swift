import Synchronization

/// An audit sink that coalesces repeated successful reads (AuditCoalescing)
/// before handing events to `inner`. `flushDue` is called on a timer
/// (cofferd's AuditFlush service) and `flushAll` at shutdown.
public final class CoalescingAuditSink: AuditSink {
    private let inner: any AuditSink
    private let state: Mutex<AuditCoalescing>
    private let clock = ContinuousClock()
    private let start: ContinuousClock.Instant

    public init(inner: any AuditSink, windowSeconds: Double) {
        self.inner = inner
        self.state = Mutex(AuditCoalescing(windowMilliseconds: UInt64(windowSeconds * 1000)))
        self.start = clock.now
    }

    public var name: String { inner.name }
    public var isReachable: Bool { inner.isReachable }
    public var sequences: [UInt64]? { inner.sequences }
    public var isStalled: Bool { inner.isStalled }
    public func checkDelivery() throws(AuditError) { try inner.checkDelivery() }

    private var now: UInt64 {
        let elapsed = start.duration(to: clock.now).components
        return UInt64(elapsed.seconds) * 1000 + UInt64(elapsed.attoseconds / 1_000_000_000_000_000)
    }

    public func record(_ event: AuditEvent) throws(AuditError) {
        let now = self.now
        switch state.withLock({ $0.admit(event, now: now) }) {
        case .record:
            try inner.record(event)
            state.withLock { $0.recorded(event, now: now) }
        case .absorbed:
            // Counted for the summary; still fail closed when the journal
            // is gone, as an uncoalesced read would.
            try inner.checkDelivery()
        }
    }

    public func flushDue() {
        let now = self.now
        for event in state.withLock({ $0.due(now: now) }) { try? inner.record(event) }
    }

    public func flushAll() {
        for event in state.withLock({ $0.drain() }) { try? inner.record(event) }
    }
}
