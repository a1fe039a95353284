import Audit
import Logging
import Synchronization

/// Says in the log when audit events start being lost, and when they are
/// recorded again with how many were lost between: not a line per event.
/// While the journal is gone or stalled every request loses its event, and
/// a line each would flood the log (and, under systemd, the log goes to the
/// very journald that is not reading).
final class AuditLossLog: Sendable {
    private let losing = Atomic<Bool>(false)
    private let lost = Mutex(0)
    let logger: Logger

    init(logger: Logger) {
        self.logger = logger
    }

    func lost(_ error: AuditError, event: AuditEventKind) {
        let first = lost.withLock { count -> Bool in
            count += 1
            return count == 1
        }
        losing.store(true, ordering: .relaxed)
        if first {
            logger.critical("audit events are being lost: reveals are refused until the journal takes them again",
                            metadata: ["error": "\(error)", "event": "\(event.rawValue)"])
        }
    }

    /// Called after every recorded event: one relaxed load unless events
    /// were being lost.
    func recorded() {
        guard losing.load(ordering: .relaxed) else { return }
        let count = lost.withLock { count -> Int in
            defer { count = 0 }
            return count
        }
        losing.store(false, ordering: .relaxed)
        if count > 0 { logger.notice("audit events are recorded again", metadata: ["lost": "\(count)"]) }
    }
}
