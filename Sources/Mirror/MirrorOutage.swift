/// The mirror loop's view of PostgreSQL being away (docs/mirror.md, "The
/// outbox"): an outage is reported once, when it starts, and its end
/// once; between attempts the loop waits out a backoff that doubles up to
/// `maxBackoff`, and starts again from the first after a success. It
/// decides only; `Mirror.run` connects, waits and reports.
struct MirrorOutage {
    static let firstBackoff = Duration.milliseconds(500)

    enum Report: Equatable {
        case nothing
        /// The first failure of an outage: audit it.
        case failing
        /// The first success after an outage.
        case recovered
    }

    let maxBackoff: Duration
    private(set) var failing = false
    private(set) var backoff = MirrorOutage.firstBackoff

    init(maxBackoff: Duration) {
        self.maxBackoff = max(maxBackoff, Self.firstBackoff)
    }

    /// A connection was made.
    mutating func connected() -> Report {
        defer {
            failing = false
            backoff = Self.firstBackoff
        }
        return failing ? .recovered : .nothing
    }

    /// Something failed: what to report, and how long to wait before the
    /// next attempt.
    mutating func failed() -> (report: Report, wait: Duration) {
        let report: Report = failing ? .nothing : .failing
        let wait = backoff
        failing = true
        backoff = min(backoff * 2, maxBackoff)
        return (report, wait)
    }
}
