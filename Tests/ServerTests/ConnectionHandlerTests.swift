import Foundation
import Model
import NIOCore
import NIOEmbedded
import Testing

@testable import Server

/// Counts the reads that get past the connection handler to the socket.
final class ReadCounter: ChannelOutboundHandler {
    typealias OutboundIn = ByteBuffer
    var reads = 0
    func read(context: ChannelHandlerContext) {
        reads += 1
        context.read()
    }
}

/// ConnectionHandler on an EmbeddedChannel: framing, order, the pipelining
/// bound and its backpressure, an oversized line, a half-close, and the
/// timeouts' clock, without a socket.
@Suite struct ConnectionHandlerTests {
    struct Connection {
        let channel: EmbeddedChannel
        let loop: EmbeddedEventLoop
        let reads: ReadCounter
        let harness: Harness
    }

    func connect(_ change: (inout ServerLimits) -> Void = { _ in }) throws -> Connection {
        let harness = try Harness()
        var limits = ServerLimits()
        change(&limits)
        let loop = EmbeddedEventLoop()
        let channel = EmbeddedChannel(loop: loop)
        let reads = ReadCounter()
        let handler = ConnectionHandler(peer: Harness.owner, listener: .admin, dispatcher: harness.dispatcher, limits: limits,
                                        account: BufferBudget().account(for: Harness.owner.uid, exempt: false, limits: limits))
        try channel.pipeline.syncOperations.addHandler(reads)
        try channel.pipeline.syncOperations.addHandler(handler)
        try channel.connect(to: SocketAddress(unixDomainSocketPath: "/embedded")).wait()
        return Connection(channel: channel, loop: loop, reads: reads, harness: harness)
    }

    func send(_ text: String, to connection: Connection) throws {
        try connection.channel.writeInbound(connection.channel.allocator.buffer(string: text))
        connection.loop.run()
    }

    /// Every answer line written so far, in order.
    func answers(_ connection: Connection) throws -> [[String: Any]] {
        var text = ""
        while let buffer = try connection.channel.readOutbound(as: ByteBuffer.self) {
            text += String(buffer: buffer)
        }
        return try text.split(separator: "\n").map {
            try #require(try JSONSerialization.jsonObject(with: Data($0.utf8)) as? [String: Any])
        }
    }

    @Test func pipelinedRequestsAreAnsweredInOrderAcrossReads() throws {
        let c = try connect()
        var lines = (1...40).map { #"{"id":\#($0),"op":"ping"}"# + "\n" }.joined()
        // Split mid-line: the framer keeps the half until the rest comes.
        let cut = lines.index(lines.startIndex, offsetBy: 25)
        try send(String(lines[..<cut]), to: c)
        lines = String(lines[cut...])
        try send(lines, to: c)
        let ids = try answers(c).map { $0["id"] as? Int }
        #expect(ids == (1...40).map { Optional($0) })
    }

    /// A full queue holds reads back until answers make room.
    @Test func aFullQueueHoldsReadsUntilThereIsRoom() throws {
        let c = try connect { $0.maxPipelinedRequests = 2 }
        c.channel.read()
        let before = c.reads.reads
        // 20 lines in one read: 16 answers per visit, the rest on the
        // loop's next turn.
        try c.channel.writeInbound(c.channel.allocator.buffer(string: (1...20).map { #"{"id":\#($0),"op":"ping"}"# + "\n" }.joined()))
        c.channel.read()
        #expect(c.reads.reads == before, "the queue is full: the read is held")
        c.loop.run()
        #expect(try answers(c).count == 20)
        c.channel.read()
        #expect(c.reads.reads > before, "room again: reads go on")
    }

    @Test func anOversizedLineIsAnsweredThenTheConnectionCloses() throws {
        let c = try connect { $0.maxLineBytes = 64 }
        try send(String(repeating: "x", count: 100) + "\n" + #"{"id":2,"op":"ping"}"# + "\n", to: c)
        let answers = try answers(c)
        #expect(answers.count == 1)
        #expect((answers.first?["error"] as? [String: Any])?["code"] as? String == "FRAME_TOO_LARGE")
        #expect(!c.channel.isActive)
    }

    /// A client that sends its requests and shuts down its write side gets
    /// every answer, then the close.
    @Test func aHalfCloseIsAnsweredThenClosed() throws {
        let c = try connect()
        try c.channel.writeInbound(c.channel.allocator.buffer(string: #"{"id":1,"op":"ping"}"# + "\n" + #"{"id":2,"op":"ping"}"# + "\n"))
        c.channel.pipeline.fireUserInboundEventTriggered(ChannelEvent.inputClosed)
        c.loop.run()
        #expect(try answers(c).map { $0["id"] as? Int } == [1, 2])
        #expect(!c.channel.isActive)
    }

    @Test func anUnfinishedLineIsCutOffAfterTheRequestTimeout() throws {
        let c = try connect { $0.requestTimeout = .seconds(2) }
        try send(#"{"id":1,"op":"pi"#, to: c)
        c.loop.advanceTime(by: .seconds(1))
        #expect(c.channel.isActive)
        c.loop.advanceTime(by: .seconds(2))
        #expect(!c.channel.isActive)
    }

    @Test func anIdleConnectionIsClosedAfterTheIdleTimeout() throws {
        let c = try connect { $0.idleTimeout = .seconds(5) }
        try send(#"{"id":1,"op":"ping"}"# + "\n", to: c)
        c.loop.advanceTime(by: .seconds(4))
        #expect(c.channel.isActive)
        // The clock is checked every quarter of the shortest timeout.
        c.loop.advanceTime(by: .seconds(3))
        #expect(!c.channel.isActive)
    }
}
