import Audit
import Logging
import NIOPosix
import ServiceLifecycle

/// Four times a second: emits the coalesced summaries whose window has
/// closed (well inside any window), and while the journal is stalled tries
/// it again on a thread of its own (a probe may wait out the send timeout;
/// the blocking pool's threads are for commits and scrypt), so that events
/// flow again soon after journald reads again. At shutdown the remaining
/// summaries go out.
struct AuditUpkeep: Service {
    let coalescing: CoalescingAuditSink?
    let journal: JournalAuditSink?
    let logger: Logger

    func run() async throws {
        let prober = NIOThreadPool(numberOfThreads: 1)
        prober.start()
        while !Task.isCancelled, !Task.isShuttingDownGracefully {
            try? await cancelWhenGracefulShutdown { try await Task.sleep(for: .milliseconds(250)) }
            coalescing?.flushDue()
            if let journal, journal.stall.isStalled {
                if (try? await prober.runIfActive({ journal.probe() })) == true {
                    logger.notice("the journal takes audit events again")
                }
            }
        }
        coalescing?.flushAll()
        try? await prober.shutdownGracefully()
    }
}
