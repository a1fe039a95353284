/// A connection's requests between the socket and the dispatcher: the
/// bytes of an unfinished line (LineFramer), the complete lines waiting
/// their turn, up to the pipelining bound, the one being answered, and
/// whether the connection is winding down. It decides when more may be
/// read, which request is next and when the connection may close;
/// `ConnectionHandler` does the I/O and tells it what happened.
///
/// Lines beyond the bound stay as bytes in the framer (one read's worth at
/// most: reads are held while the queue is full), not as a growing list of
/// requests. A line too long is answered FRAME_TOO_LARGE and nothing after
/// it is taken.
struct RequestQueue {
    /// What may happen to a connection that is winding down.
    enum Closing: Equatable {
        case no
        /// The client shut its write side and everything is answered.
        case now
        /// Shutdown with nothing to answer: close after the drain grace
        /// unless a request arrives meanwhile.
        case afterGrace
    }

    let maxPipelined: Int
    private var framer: LineFramer
    private var waiting: [LineFramer.Frame] = []
    /// Bytes of the complete lines in `waiting`.
    private(set) var queuedBytes = 0
    /// A request is being answered.
    private(set) var busy = false
    /// Close once idle: shutdown, or the client shut its write side.
    private(set) var draining = false
    /// The client shut down its write side: no request can come any more.
    private(set) var inputEnded = false

    init(maxLineBytes: Int, maxPipelined: Int) {
        framer = LineFramer(maxLineBytes: maxLineBytes)
        self.maxPipelined = maxPipelined
    }

    var maxLineBytes: Int { framer.maxLineBytes }
    var count: Int { waiting.count }
    var isEmpty: Bool { waiting.isEmpty }
    /// What this connection makes cofferd hold (BufferBudget).
    var heldBytes: Int { framer.bufferedBytes + queuedBytes }
    var bufferedBytes: Int { framer.bufferedBytes }

    var endsInError: Bool {
        if case .tooLarge? = waiting.last { return true }
        return false
    }

    /// Room in the queue, nothing refused, input not ended (the budget is
    /// the handler's to add).
    var mayRead: Bool { waiting.count < maxPipelined && !endsInError && !inputEnded }

    /// An unfinished line waits on the client (complete lines waiting for
    /// room are cofferd's delay, not the client's).
    var lineUnfinished: Bool { framer.bufferedBytes > 0 && waiting.count < maxPipelined && !endsInError }

    /// Bytes arrived; false when they are to be dropped (after a line too
    /// long, nothing more is taken).
    mutating func received(_ bytes: UnsafeRawBufferPointer) -> Bool {
        guard !endsInError else { return false }
        framer.append(bytes)
        take()
        return true
    }

    /// Moves complete lines from the framer to the queue, up to the bound.
    mutating func take() {
        while waiting.count < maxPipelined, !endsInError, let frame = framer.next() {
            if case .line(let line) = frame { queuedBytes += line.count }
            waiting.append(frame)
        }
    }

    /// The next request to answer, if none is being answered.
    mutating func next() -> LineFramer.Frame? {
        guard !busy, !waiting.isEmpty else { return nil }
        let frame = waiting.removeFirst()
        if case .line(let line) = frame { queuedBytes -= line.count }
        busy = true
        return frame
    }

    /// The answer to the request from `next` was written.
    mutating func answered() {
        busy = false
        take()
    }

    /// Shutdown asks the connection to finish what it has, then close.
    mutating func drainRequested() -> Closing {
        draining = true
        return closing
    }

    /// The client shut its write side. A watcher keeps watching until it
    /// closes for good.
    mutating func inputClosed(watching: Bool) -> Closing {
        inputEnded = true
        guard !watching else { return .no }
        draining = true
        return closing
    }

    /// Whether a winding-down connection may close now.
    var closing: Closing {
        guard draining, !busy, waiting.isEmpty else { return .no }
        return inputEnded ? .now : .afterGrace
    }

    /// At the end of the drain grace: still nothing asked?
    var stillIdle: Bool { !busy && waiting.isEmpty && framer.bufferedBytes == 0 }

    mutating func reset() {
        waiting.removeAll()
        framer.reset()
        queuedBytes = 0
    }
}
