import NIOCore

/// When a connection is closed for taking too long (docs/protocol.md,
/// "Limits"), decided from the clock and what the connection is doing,
/// without a channel: `ConnectionHandler` reports what happens and asks on
/// each timer tick.
///
/// - An answer the client does not read within `writeTimeout` closes it.
/// - A request line must arrive whole within `requestTimeout` of its first
///   byte; only an unfinished line is on that clock, and not while cofferd
///   itself holds reads back (its budget, its full queue).
/// - A connection with nothing to do and no watch is closed after
///   `idleTimeout` without activity.
struct ConnectionDeadlines {
    enum Verdict: Equatable {
        case keep
        case closeSlowReader
        case closeSlowLine
        case closeIdle
    }

    let idleTimeout: TimeAmount
    let requestTimeout: TimeAmount
    let writeTimeout: TimeAmount
    private(set) var lastActivity: NIODeadline
    private(set) var partialSince: NIODeadline?
    private(set) var writeSince: NIODeadline?

    init(idleTimeout: TimeAmount, requestTimeout: TimeAmount, writeTimeout: TimeAmount, now: NIODeadline) {
        self.idleTimeout = idleTimeout
        self.requestTimeout = requestTimeout
        self.writeTimeout = writeTimeout
        self.lastActivity = now
    }

    /// Bytes came in.
    mutating func received(at now: NIODeadline) { lastActivity = now }

    /// Whether an unfinished line is waiting on the client; its clock starts
    /// at the first time it is.
    mutating func lineUnfinished(_ unfinished: Bool, at now: NIODeadline) {
        partialSince = unfinished ? (partialSince ?? now) : nil
    }

    /// Reads resume after cofferd held them: the wait was ours, not the
    /// client's, so an unfinished line's clock starts again.
    mutating func readsResumed(at now: NIODeadline) {
        if partialSince != nil { partialSince = now }
    }

    mutating func writeStarted(at now: NIODeadline) { writeSince = writeSince ?? now }

    mutating func writeFinished(at now: NIODeadline) {
        writeSince = nil
        lastActivity = now
    }

    /// `idle`: nothing queued, nothing being answered, no watch.
    /// `readsHeldByUs`: reads are held and may not resume yet.
    func verdict(at now: NIODeadline, idle: Bool, readsHeldByUs: Bool) -> Verdict {
        if let since = writeSince, now - since > writeTimeout { return .closeSlowReader }
        if let since = partialSince, now - since > requestTimeout, !readsHeldByUs { return .closeSlowLine }
        if idle, partialSince == nil, now - lastActivity > idleTimeout { return .closeIdle }
        return .keep
    }
}
