import NIOCore
import NIOPosix

/// A third baseline: the echo server on SwiftNIO, with the event loop group
/// cofferd uses (one loop per core). It answers each read with the bytes
/// read (a request is one small line, read whole), with one journal event
/// per read when `journal`. Against the blocking echo server it shows what
/// the event loop and its pipeline cost before cofferd does any work of its
/// own (docs/performance.md, "What limits the get path").
struct NIOEchoServer {
    let path: String
    private let channel: any Channel

    init(path: String, journal: Bool) throws {
        self.path = path
        channel = try ServerBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .serverChannelOption(.backlog, value: 256)
            .childChannelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.addHandler(Echo(journal: journal))
                }
            }
            .bind(unixDomainSocketPath: path, cleanupExistingSocketFile: true)
            .wait()
    }

    func close() throws {
        try channel.close().wait()
    }

    private final class Echo: ChannelInboundHandler {
        typealias InboundIn = ByteBuffer
        typealias OutboundOut = ByteBuffer
        let journal: Bool
        let fields = EchoServer.eventFields

        init(journal: Bool) { self.journal = journal }

        func channelRead(context: ChannelHandlerContext, data: NIOAny) {
            if journal { EchoServer.sendEvent(fields) }
            context.writeAndFlush(data, promise: nil)
        }
    }
}
