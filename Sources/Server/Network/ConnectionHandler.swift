import CLibCrypto
import Logging
import Model
import NIOCore

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
final class ConnectionHandler: ChannelDuplexHandler {
    typealias InboundIn = ByteBuffer
    typealias OutboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer

    private let peer: PeerIdentity
    private let listener: Listener
    private let dispatcher: RequestDispatcher
    private let maxPipelined: Int

    private var framer: LineFramer
    private var queue: [LineFramer.Frame] = []
    private var busy = false
    private var draining = false
    private var closed = false
    private var readHeld = false

    init(peer: PeerIdentity, listener: Listener, dispatcher: RequestDispatcher, limits: ServerLimits) {
        self.peer = peer
        self.listener = listener
        self.dispatcher = dispatcher
        self.maxPipelined = limits.maxPipelinedRequests
        self.framer = LineFramer(maxLineBytes: limits.maxLineBytes)
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        var bytes = unwrapInboundIn(data)
        guard !closed, !draining, !queueEndsInError else { return }
        bytes.withUnsafeReadableBytes { framer.append($0) }
        // The received buffer may hold a secret; zero it before NIO reuses it.
        bytes.withUnsafeMutableReadableBytes { OPENSSL_cleanse($0.baseAddress, $0.count) }
        while let frame = framer.next() {
            queue.append(frame)
            if case .tooLarge = frame { break }
        }
        processNext(context: context)
    }

    func read(context: ChannelHandlerContext) {
        if queue.count >= maxPipelined || queueEndsInError || draining {
            readHeld = true
        } else {
            context.read()
        }
    }

    /// Graceful shutdown, and a client that shuts down its write side after
    /// sending (`echo … | socat`, `nc -N`): answer what is queued, then close.
    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        let inputClosed = (event as? ChannelEvent) == .inputClosed
        guard event is DrainRequest || inputClosed else { return context.fireUserInboundEventTriggered(event) }
        draining = true
        if !busy && queue.isEmpty { context.close(promise: nil) }
    }

    func channelInactive(context: ChannelHandlerContext) {
        closed = true
        queue.removeAll()
        framer.reset()
        context.fireChannelInactive()
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        context.close(promise: nil)
    }

    private var queueEndsInError: Bool {
        if case .tooLarge? = queue.last { return true }
        return false
    }

    private func processNext(context: ChannelHandlerContext) {
        guard !busy, !closed, !queue.isEmpty else { return }
        let frame = queue.removeFirst()
        busy = true
        switch frame {
        case .tooLarge:
            let error = CofferError(.frameTooLarge, "request line longer than \(framer.maxLineBytes) bytes; closing")
            send(.failure(.null, error), closeAfter: true, context: context)
        case .line(let line):
            let promise = context.eventLoop.makePromise(of: Response.self)
            let (dispatcher, peer, listener) = (self.dispatcher, self.peer, self.listener)
            promise.completeWithTask { await dispatcher.handle(line: line, peer: peer, listener: listener) }
            promise.futureResult.assumeIsolated().whenSuccess { response in
                self.send(response, closeAfter: false, context: context)
            }
        }
    }

    private func send(_ response: Response, closeAfter: Bool, context: ChannelHandlerContext) {
        guard !closed else { return }
        var encoded = response.encoded()
        var buffer = context.channel.allocator.buffer(bytes: encoded.bytes)
        let wipeAfterWrite = response.holdsSecret
        if wipeAfterWrite { encoded.wipe() }
        context.writeAndFlush(wrapOutboundOut(buffer)).assumeIsolated().whenComplete { _ in
            if wipeAfterWrite {
                buffer.withUnsafeMutableReadableBytes { OPENSSL_cleanse($0.baseAddress, $0.count) }
            }
            self.busy = false
            if closeAfter || (self.draining && self.queue.isEmpty) {
                context.close(promise: nil)
                return
            }
            if self.readHeld, self.queue.count < self.maxPipelined {
                self.readHeld = false
                context.read()
            }
            self.processNext(context: context)
        }
    }
}
