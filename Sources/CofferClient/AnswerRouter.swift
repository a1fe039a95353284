import JSON
import NIOCore

/// Splits what cofferd sends into lines (the protocol's framing: one JSON
/// object per line).
struct LineFrameDecoder: ByteToMessageDecoder {
    typealias InboundOut = ByteBuffer
    /// cofferd's answers are bounded by its own line limit; a longer
    /// "line" is not cofferd.
    static let maxLineBytes = 4 << 20

    mutating func decode(context: ChannelHandlerContext, buffer: inout ByteBuffer) throws -> DecodingState {
        guard let newline = buffer.readableBytesView.firstIndex(of: UInt8(ascii: "\n")) else {
            if buffer.readableBytes > Self.maxLineBytes {
                throw CofferClientError(.malformedAnswer, "an answer longer than \(Self.maxLineBytes) bytes")
            }
            return .needMoreData
        }
        let line = buffer.readSlice(length: newline - buffer.readerIndex)!
        buffer.moveReaderIndex(forwardBy: 1)
        context.fireChannelRead(wrapInboundOut(line))
        return .continue
    }
}

/// Matches answers to requests: cofferd answers one connection's requests
/// in the order they came, so each request's promise waits in a queue; a
/// line with an `event` member is a watch's and goes to the watch instead.
final class AnswerRouter: ChannelDuplexHandler {
    typealias InboundIn = ByteBuffer
    typealias OutboundIn = (ByteBuffer, EventLoopPromise<ByteBuffer>)
    typealias OutboundOut = ByteBuffer

    private var waiting = CircularBuffer<EventLoopPromise<ByteBuffer>>()
    /// Where event lines go, once a watch was answered.
    var events: ((ByteBuffer) -> Void)?
    var closed: ((CofferClientError) -> Void)?

    func write(context: ChannelHandlerContext, data: NIOAny, promise: EventLoopPromise<Void>?) {
        let (line, answer) = unwrapOutboundIn(data)
        waiting.append(answer)
        context.write(wrapOutboundOut(line), promise: promise)
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let line = unwrapInboundIn(data)
        // Parsed only while a watch is on: without one every line is an answer.
        if let events, Self.isEvent(line) {
            events(line)
            return
        }
        guard let answer = waiting.popFirst() else {
            // An answer nobody asked for: not cofferd's protocol.
            fail(context: context, CofferClientError(.malformedAnswer, "an answer to no request"))
            return
        }
        answer.succeed(line)
    }

    func channelInactive(context: ChannelHandlerContext) {
        fail(context: context, CofferClientError(.unreachable, "cofferd closed the connection"))
        context.fireChannelInactive()
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        fail(context: context, error as? CofferClientError ?? CofferClientError(.unreachable, "\(error)"))
    }

    private func fail(context: ChannelHandlerContext, _ error: CofferClientError) {
        while let answer = waiting.popFirst() { answer.fail(error) }
        closed?(error)
        closed = nil
        events = nil
        context.close(promise: nil)
    }

    /// A line whose top-level object has an `event` member; an answer
    /// never has one (docs/protocol.md, `watch`).
    static func isEvent(_ line: ByteBuffer) -> Bool {
        line.withUnsafeReadableBytes { bytes in
            guard let parsed = try? JSONParser.parse(bytes), case .object(let members) = parsed else { return false }
            return members["event"] != nil
        }
    }
}
