import CLibCrypto
import CofferCore
import Logging
import Model
import NIOCore
import Synchronization

/// Asks a connection to finish what it has queued, then close (graceful
/// shutdown).
struct DrainRequest: Sendable {}

/// One client connection: frames lines, dispatches them one at a time (so
/// answers come back in request order even when many are pipelined), writes
/// each answer and wipes it once written if it held a secret.
///
/// Backpressure: while `maxPipelined` requests wait, the handler stops
/// asking the socket for more (it holds back `read`), so a client that
/// floods requests is slowed down instead of growing our memory.
///
/// Timeouts (docs/protocol.md, "Limits"): a connection with nothing to do
/// and no watch is closed after `idleTimeout`; a request line must arrive
/// whole within `requestTimeout` of its first byte; an answer the client
/// does not read within `writeTimeout` closes the connection. None of them
/// holds up another connection: each lives on its own channel.
final class ConnectionHandler: ChannelDuplexHandler {
    typealias InboundIn = ByteBuffer
    typealias OutboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer

    private let peer: PeerIdentity
    private let listener: Listener
    private let dispatcher: RequestDispatcher
    private let limits: ServerLimits

    /// Framing, the requests waiting their turn, and winding down.
    private var requests: RequestQueue
    /// This connection's share of its uid's and the server's budget.
    private let account: BufferBudget.Account
    private var drainCheck: Scheduled<Void>?
    private var closed = false
    private var readHeld = false

    private var context: ChannelHandlerContext?
    private var outlet: WatchOutlet?
    private var subscriptions: [ChangeFeed.Token] = []
    /// Watch events that arrived while an answer was being prepared: written
    /// right after it, so a watch's own answer always comes first.
    private var heldEvents: [[UInt8]] = []
    /// Event lines written but not yet taken by the client.
    private var unsentEvents = 0

    private var deadlines: ConnectionDeadlines
    private var timer: RepeatedTask?

    init(peer: PeerIdentity, listener: Listener, dispatcher: RequestDispatcher, limits: ServerLimits, account: BufferBudget.Account) {
        self.account = account
        self.peer = peer
        self.listener = listener
        self.dispatcher = dispatcher
        self.limits = limits
        self.requests = RequestQueue(maxLineBytes: limits.maxLineBytes, maxPipelined: limits.maxPipelinedRequests)
        self.deadlines = ConnectionDeadlines(idleTimeout: limits.idleTimeout, requestTimeout: limits.requestTimeout,
                                             writeTimeout: limits.writeTimeout, now: .now())
    }

    func handlerAdded(context: ChannelHandlerContext) {
        self.context = context
        // The loop's clock (EventLoop.now): real time on a socket's loop,
        // the test's time on an EmbeddedEventLoop.
        deadlines = ConnectionDeadlines(idleTimeout: limits.idleTimeout, requestTimeout: limits.requestTimeout,
                                        writeTimeout: limits.writeTimeout, now: context.eventLoop.now)
        outlet = WatchOutlet(eventLoop: context.eventLoop, handler: self)
        let period = TimeAmount.nanoseconds(max(limits.shortestTimeout.nanoseconds / 4, TimeAmount.milliseconds(50).nanoseconds))
        let bound = NIOLoopBound(self, eventLoop: context.eventLoop)
        // Cancelled in stop(), which every way out of the pipeline goes through.
        timer = context.eventLoop.scheduleRepeatedTask(initialDelay: period, delay: period) { _ in
            bound.value.checkTimeouts()
        }
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        stop()
        self.context = nil
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let bytes = unwrapInboundIn(data)
        // The received buffer may hold a secret: zero it in NIO's pooled
        // storage before NIO reuses it, also when it is dropped below.
        defer { bytes.wipeInPlace() }
        guard !closed, bytes.withUnsafeReadableBytes({ requests.received($0) }) else { return }
        deadlines.received(at: context.eventLoop.now)
        framesTaken(context: context)
        processNext(context: context)
    }

    func read(context: ChannelHandlerContext) {
        if mayRead {
            context.read()
        } else {
            readHeld = true
        }
    }

    /// Room in the queue, nothing refused, and the uid and the server
    /// under their budgets of held bytes.
    private var mayRead: Bool { requests.mayRead && account.mayRead }

    /// Reads again if reads were held and may go on now. An unfinished
    /// line's clock starts again: the wait was ours, not the client's.
    private func resumeReading(context: ChannelHandlerContext) {
        guard readHeld, mayRead else { return }
        readHeld = false
        deadlines.readsResumed(at: context.eventLoop.now)
        context.read()
    }

    /// Graceful shutdown, and a client that shuts down its write side after
    /// sending (`echo … | socat`, `nc -N`): answer what is queued, then close.
    /// A watcher that half-closes keeps watching until it closes for good.
    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        let inputClosed = (event as? ChannelEvent) == .inputClosed
        guard event is DrainRequest || inputClosed else { return context.fireUserInboundEventTriggered(event) }
        let closing = inputClosed ? requests.inputClosed(watching: !subscriptions.isEmpty) : requests.drainRequested()
        close(closing, context: context)
    }

    /// Closes a draining connection once it is idle. After a half-close at
    /// once; at shutdown only after `drainGrace` with nothing asked: a
    /// client that connected just before the listeners closed has its
    /// request on the way, and closing under it would lose it (a reset, or
    /// an end of file where an answer was due).
    private func close(_ closing: RequestQueue.Closing, context: ChannelHandlerContext) {
        guard !closed else { return }
        switch closing {
        case .no:
            return
        case .now:
            context.close(promise: nil)
        case .afterGrace:
            drainCheck?.cancel()
            let bound = NIOLoopBound(self, eventLoop: context.eventLoop)
            drainCheck = context.eventLoop.scheduleTask(in: limits.drainGrace) {
                let handler = bound.value
                guard !handler.closed, handler.requests.stillIdle else { return }
                handler.context?.close(promise: nil)
            }
        }
    }

    func channelInactive(context: ChannelHandlerContext) {
        stop()
        context.fireChannelInactive()
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        context.close(promise: nil)
    }

    private func stop() {
        guard !closed else { return }
        closed = true
        timer?.cancel()
        timer = nil
        drainCheck?.cancel()
        drainCheck = nil
        requests.reset()
        heldEvents.removeAll()
        account.hold(0)
        for token in subscriptions { dispatcher.services.changes.unsubscribe(token) }
        subscriptions.removeAll()
        // The outlet may outlive the connection in a request still in
        // flight; it holds the handler weakly, and the handler lets it go.
        outlet = nil
    }

    /// After the queue took lines: the budget's count and the clock of an
    /// unfinished line follow it.
    private func framesTaken(context: ChannelHandlerContext) {
        account.hold(requests.heldBytes)
        deadlines.lineUnfinished(requests.lineUnfinished, at: context.eventLoop.now)
    }

    private func checkTimeouts() {
        guard !closed, let context else { return }
        let idle = !requests.busy && requests.isEmpty && subscriptions.isEmpty
        // Reads held for the budget stop a line's clock: it cannot finish
        // then, and that is cofferd's doing.
        guard deadlines.verdict(at: context.eventLoop.now, idle: idle, readsHeldByUs: readHeld && !mayRead) == .keep else {
            return context.close(promise: nil)
        }
        // Reads held for the budget resume once other connections of the
        // uid freed it (nothing on this connection would say so).
        resumeReading(context: context)
    }

    /// Answers queued requests in order. An answer written at once calls
    /// back into here (its write completed): `processing` turns that into
    /// another turn of the loop below instead of a deeper stack, and after
    /// `turnsPerVisit` answers the rest waits for the loop's next tick, so a
    /// client that pipelines thousands of gets neither overflows the stack
    /// nor keeps the other connections on its event loop waiting.
    private func processNext(context: ChannelHandlerContext) {
        guard !processing else { return }
        processing = true
        defer { processing = false }
        var turns = 0
        while !requests.busy, !closed, !requests.isEmpty {
            guard turns < Self.turnsPerVisit else {
                let bound = NIOLoopBound(self, eventLoop: context.eventLoop)
                context.eventLoop.execute { bound.value.processQueued() }
                return
            }
            turns += 1
            processOne(context: context)
        }
    }

    private static let turnsPerVisit = 16

    /// Made at the first write on the connection.
    private var taskExecutor: EventLoopTaskExecutor?

    private func loopExecutor(_ eventLoop: any EventLoop) -> EventLoopTaskExecutor {
        if let taskExecutor { return taskExecutor }
        let made = EventLoopTaskExecutor(eventLoop)
        taskExecutor = made
        return made
    }
    private var processing = false

    private func processQueued() {
        guard let context else { return }
        processNext(context: context)
    }

    private func processOne(context: ChannelHandlerContext) {
        guard let frame = requests.next() else { return }
        account.hold(requests.heldBytes)
        switch frame {
        case .tooLarge:
            let error = CofferError(.frameTooLarge, "request line longer than \(requests.maxLineBytes) bytes; closing")
            send(.failure(.null, error), closeAfter: true, context: context)
        case .line(let line):
            // Gets and the like are answered right here on the event loop;
            // only handlers that may wait go to the concurrency pool
            // (ImmediateOperationHandler says why).
            switch dispatcher.begin(line: line, peer: peer, listener: listener, watchOutlet: outlet) {
            case .answered(let response):
                send(response, closeAfter: false, context: context)
            case .awaiting(let work):
                let promise = context.eventLoop.makePromise(of: Response.self)
                let dispatcher = self.dispatcher
                if work.runsOnEventLoop {
                    Task(executorPreference: loopExecutor(context.eventLoop)) { promise.succeed(await dispatcher.complete(work)) }
                } else {
                    promise.completeWithTask { await dispatcher.complete(work) }
                }
                promise.futureResult.assumeIsolated().whenSuccess { response in
                    self.send(response, closeAfter: false, context: context)
                }
            }
        }
    }

    private func send(_ response: Response, closeAfter: Bool, context: ChannelHandlerContext) {
        guard !closed else { return }
        var encoded = response.encoded()
        let buffer = context.channel.allocator.buffer(bytes: encoded.bytes)
        let wipeAfterWrite = response.reveals
        if wipeAfterWrite { encoded.wipe() }
        deadlines.writeStarted(at: context.eventLoop.now)
        context.writeAndFlush(wrapOutboundOut(buffer)).assumeIsolated().whenComplete { _ in
            if wipeAfterWrite { buffer.wipeInPlace() }
            self.deadlines.writeFinished(at: context.eventLoop.now)
            self.requests.answered()
            if closeAfter {
                context.close(promise: nil)
                return
            }
            self.framesTaken(context: context)
            self.resumeReading(context: context)
            self.processNext(context: context)
            self.close(self.requests.closing, context: context)
        }
        for event in heldEvents { writeEvent(event, context: context) }
        heldEvents.removeAll()
    }

    // MARK: watch

    fileprivate func adopt(_ token: ChangeFeed.Token, from feed: ChangeFeed) {
        guard !closed else { return feed.unsubscribe(token) }
        subscriptions.append(token)
    }

    fileprivate func deliver(_ line: [UInt8]) {
        guard !closed, let context else { return }
        if requests.busy {
            heldEvents.append(line)
            if heldEvents.count > limits.maxQueuedEvents { context.close(promise: nil) }
            return
        }
        writeEvent(line, context: context)
    }

    private func writeEvent(_ line: [UInt8], context: ChannelHandlerContext) {
        // A watcher that stops reading is cut off rather than buffered for
        // without bound; it reconnects and lists to catch up.
        guard unsentEvents < limits.maxQueuedEvents else { return context.close(promise: nil) }
        unsentEvents += 1
        context.writeAndFlush(wrapOutboundOut(context.channel.allocator.buffer(bytes: line))).assumeIsolated().whenComplete { _ in
            self.unsentEvents -= 1
        }
    }
}

/// A connection's end of the change feed: hands events over to the
/// connection's event loop, where the handler writes them. It holds the
/// handler weakly: the connection owns its outlet, never the other way
/// round, so a closed connection is freed whoever still holds the outlet
/// (a subscription not yet dropped, a request in flight).
final class WatchOutlet: Sendable {
    private let eventLoop: any EventLoop
    private let handler: NIOLoopBound<WeakHandler>
    private let watching = Atomic<Bool>(false)

    private final class WeakHandler {
        weak var value: ConnectionHandler?
        init(_ value: ConnectionHandler) { self.value = value }
    }

    fileprivate init(eventLoop: any EventLoop, handler: ConnectionHandler) {
        self.eventLoop = eventLoop
        self.handler = NIOLoopBound(WeakHandler(handler), eventLoop: eventLoop)
    }

    /// One watch per connection (a connection is cheap; a subscription
    /// costs every change a match). false when this one already has it.
    func claim() -> Bool {
        watching.compareExchange(expected: false, desired: true, ordering: .relaxed).exchanged
    }

    func deliver(_ line: [UInt8]) {
        let handler = self.handler
        eventLoop.execute { handler.value.value?.deliver(line) }
    }

    func adopt(_ token: ChangeFeed.Token, from feed: ChangeFeed) {
        let handler = self.handler
        eventLoop.execute {
            // A connection gone before its subscription arrived: drop it.
            guard let connection = handler.value.value else { return feed.unsubscribe(token) }
            connection.adopt(token, from: feed)
        }
    }
}
