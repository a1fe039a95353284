import Audit
import ServiceLifecycle

/// Emits the coalesced summaries whose window has closed (four times per
/// second is well inside any window), and the rest at shutdown.
struct AuditFlush: Service {
    let sink: CoalescingAuditSink

    func run() async throws {
        while !Task.isCancelled, !Task.isShuttingDownGracefully {
            try? await Task.sleep(for: .milliseconds(250))
            sink.flushDue()
        }
        sink.flushAll()
    }
}
