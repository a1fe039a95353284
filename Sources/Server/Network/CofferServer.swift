import Audit
import CCofferShims
import Logging
import Model
import NIOCore
import NIOPosix
import ServiceLifecycle
import Synchronization
import Syscalls
#if canImport(Glibc)
import Glibc
#endif

/// The listeners: binds the three sockets, identifies every peer from the
/// kernel right after accept (SO_PEERCRED; no credentials, no connection),
/// and on graceful shutdown stops accepting, lets connections finish what
/// they have queued, and removes the socket files.
public final class CofferServer: Service {
    private let configuration: ServerConfiguration
    private let dispatcher: RequestDispatcher
    private let group: any EventLoopGroup
    private let logger: Logger
    private let onReady: @Sendable ([String]) -> Void
    private let onShutdown: @Sendable () -> Void
    private let connections = Mutex<[ObjectIdentifier: OpenConnection]>([:])
    /// Request bytes held for each uid and in all (ServerLimits).
    private let budget = BufferBudget()
    /// The limits new connections get; SIGHUP may change them.
    private let currentLimits: Mutex<ServerLimits>
    /// Set once graceful shutdown drains connections: one admitted after
    /// that is told to drain as soon as it has its handler.
    private let draining = Atomic<Bool>(false)

    private struct OpenConnection {
        let channel: any Channel
        let listener: Listener
        var uid: UInt32?
    }

    public init(
        configuration: ServerConfiguration, dispatcher: RequestDispatcher, group: any EventLoopGroup,
        logger: Logger, onReady: @escaping @Sendable ([String]) -> Void = { _ in },
        onShutdown: @escaping @Sendable () -> Void = {}
    ) {
        self.onShutdown = onShutdown
        self.currentLimits = Mutex(configuration.limits)
        self.configuration = configuration
        self.dispatcher = dispatcher
        self.group = group
        self.logger = logger
        self.onReady = onReady
    }

    public func run() async throws {
        var bound: [(Listener, any Channel)] = []
        do {
            for listener in Listener.allCases {
                bound.append((listener, try await bind(listener)))
            }
        } catch {
            for (_, channel) in bound { try? await channel.close() }
            throw error
        }
        onReady(bound.map { configuration.socketPath($0.0.fileName) })

        // Returns when graceful shutdown starts (or the task is cancelled).
        try? await gracefulShutdown()
        onShutdown()

        logger.info("shutting down: no new connections; draining open ones")
        // Stop accepting, but keep the listeners open until every accepted
        // connection is drained: NIO closes a connection whose setup (our
        // peer check) finishes after its listener closed, with the client's
        // request unread (a reset). Connections not accepted stay queued in
        // the socket, for the next cofferd when systemd holds it.
        for (listener, channel) in bound {
            try? await channel.setOption(.autoRead, value: false).get()
            // A socket systemd handed over is systemd's to keep (it goes on
            // listening for the next start); our own we remove now, so that
            // no new client finds it while the rest drain.
            if configuration.activatedSockets[listener] == nil {
                unlink(configuration.socketPath(listener.fileName))
            }
        }
        await drainConnections()
        for (_, channel) in bound { try? await channel.close() }
    }

    private func bind(_ listener: Listener) async throws -> any Channel {
        let path = configuration.socketPath(listener.fileName)
        if let fd = configuration.activatedSockets[listener] {
            let channel = try await bootstrap(listener).withBoundSocket(fd).get()
            logger.info("listening on a socket from systemd", metadata: ["socket": "\(listener.fileName)", "fd": "\(fd)"])
            return channel
        }
        // A socket file nobody accepts on was left by a crash and is replaced
        // below; one that answers belongs to a running cofferd.
        if UnixSocket.isServed(path) {
            throw ServerStartupError("another process is serving \(path); is cofferd already running?")
        }
        let channel = try await bootstrap(listener)
            .bind(unixDomainSocketPath: path, cleanupExistingSocketFile: true)
            .get()
        // The socket was created under cofferd's umask (077): owner-only.
        // Loosen only the sockets meant for everyone, after they exist.
        if listener == .admin, let group = configuration.adminSocketGroup {
            try syscall("chown(\(listener.fileName))") { chown(path, uid_t.max, group) }
            try syscall("chmod(\(listener.fileName))") { chmod(path, 0o660) }
        } else {
            try syscall("chmod(\(listener.fileName))") { chmod(path, listener.mode) }
        }
        logger.info("listening", metadata: ["socket": "\(path)", "mode": "\(String(listener.mode, radix: 8))"])
        return channel
    }

    /// New limits for connections accepted from now on (configuration
    /// reload); open connections keep the limits they started with.
    public func updateLimits(_ limits: ServerLimits) {
        currentLimits.withLock { $0 = limits }
    }

    public var limits: ServerLimits { currentLimits.withLock { $0 } }

    private func bootstrap(_ listener: Listener) -> ServerBootstrap {
        let dispatcher = self.dispatcher
        return ServerBootstrap(group: group)
            // As deep as the kernel allows (net.core.somaxconn caps it): a
            // burst of connects queues instead of being refused.
            .serverChannelOption(.backlog, value: SOMAXCONN)
            .childChannelOption(.autoRead, value: true)
            // Buffers that may hold values are wiped before they are freed.
            .childChannelOption(.allocator, value: .wiping)
            // A client may send its requests and shut down its write side;
            // it still gets every answer (ConnectionHandler drains on inputClosed).
            .childChannelOption(.allowRemoteHalfClosure, value: true)
            .childChannelInitializer { [self] channel in
                self.admit(channel, on: listener, dispatcher: dispatcher, limits: self.limits)
            }
    }

    /// Runs on the accepted channel's event loop before any byte is read:
    /// the peer is identified from the kernel and checked before the
    /// connection gets a handler (ssh-agent's order; fail closed).
    private func admit(
        _ channel: any Channel, on listener: Listener, dispatcher: RequestDispatcher, limits: ServerLimits
    ) -> EventLoopFuture<Void> {
        let id = ObjectIdentifier(channel)
        let limit = listener == .service ? limits.maxConnections : limits.reservedConnections
        let admitted = connections.withLock { open -> Bool in
            guard open.values.count(where: { $0.listener == listener }) < limit else { return false }
            open[id] = OpenConnection(channel: channel, listener: listener)
            return true
        }
        guard admitted else {
            logger.warning("connection refused", metadata: ["socket": "\(listener.fileName)", "open": "\(limit)"])
            return refuse(channel, CofferError(.unavailable, "too many connections; try again later"))
        }
        channel.closeFuture.whenComplete { [self] _ in
            _ = self.connections.withLock { $0.removeValue(forKey: id) }
        }
        let services = dispatcher.services
        return PeerResolution.identify(channel).flatMapThrowing { [self] peer in
            let handler: any ChannelHandler
            let superuser = services.policy.superusers.contains(peer.uid)
            let perUser = connections.withLock { open -> Int in
                open[id]?.uid = peer.uid
                return open.values.count { $0.listener == .service && $0.uid == peer.uid }
            }
            switch listener {
            case .service where !superuser && perUser > limits.maxConnectionsPerUser:
                logger.warning("connection refused", metadata: ["uid": "\(peer.uid)", "open": "\(limits.maxConnectionsPerUser)"])
                handler = RefusalHandler(CofferError(.unavailable, "too many connections from this user; try again later"))
            case .credentials:
                handler = CredentialSocketHandler(peer: peer, dispatcher: dispatcher)
            case .admin where !dispatcher.admitsToAdminSocket(peer):
                handler = RefusalHandler(CofferError(.denied, "permission denied: the admin socket serves operators only"))
            case .service, .admin:
                let account = budget.account(for: peer.uid, exempt: superuser, limits: limits)
                handler = ConnectionHandler(peer: peer, listener: listener, dispatcher: dispatcher, limits: limits,
                                            account: account)
            }
            try channel.pipeline.syncOperations.addHandler(handler)
            // Identified only after the drain began (its peer was still being
            // resolved): it drains too, after the grace for its request.
            if draining.load(ordering: .sequentiallyConsistent) {
                channel.pipeline.fireUserInboundEventTriggered(DrainRequest())
            }
        }
    }

    private func refuse(_ channel: any Channel, _ error: CofferError) -> EventLoopFuture<Void> {
        channel.eventLoop.makeCompletedFuture { try channel.pipeline.syncOperations.addHandler(RefusalHandler(error)) }
    }

    private func drainConnections() async {
        draining.store(true, ordering: .sequentiallyConsistent)
        // Connections the listeners accepted just before they closed are
        // still being set up on their event loops (accepted on one, then
        // registered and admitted on another): let those steps run, so that
        // every accepted connection is in `connections` and is drained, not
        // left open until the process exits and resets it under its client.
        for _ in 0..<2 {
            for loop in group.makeIterator() { try? await loop.submit {}.get() }
        }
        let deadline = ContinuousClock.now + configuration.drainTimeout
        var asked = Set<ObjectIdentifier>()
        while ContinuousClock.now < deadline {
            let open = connections.withLock { $0.map { ($0.key, $0.value.channel) } }
            guard !open.isEmpty else { return }
            for (id, channel) in open where asked.insert(id).inserted {
                channel.pipeline.fireUserInboundEventTriggered(DrainRequest())
            }
            let (_, channel) = open[0]
            let remaining = deadline - .now
            _ = try? await withThrowingTaskGroup(of: Void.self) { group in
                group.addTask { try await channel.closeFuture.get() }
                group.addTask { try await Task.sleep(for: remaining) }
                try await group.next()
                group.cancelAll()
            }
        }
        for channel in connections.withLock({ $0.values.map(\.channel) }) { try? await channel.close() }
    }
}

/// Answers one error line as soon as the connection is up, then closes:
/// how a refused client learns why instead of seeing a bare EOF.
final class RefusalHandler: ChannelInboundHandler {
    typealias InboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer
    private let error: CofferError

    init(_ error: CofferError) { self.error = error }

    func channelActive(context: ChannelHandlerContext) {
        let line = Response.failure(.null, error).encoded().bytes
        context.writeAndFlush(wrapOutboundOut(context.channel.allocator.buffer(bytes: line))).assumeIsolated().whenComplete { _ in
            context.close(promise: nil)
        }
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        // A refused client's request may carry a value: wiped unread.
        unwrapInboundIn(data).wipeInPlace()
    }
}

public struct ServerStartupError: Error, CustomStringConvertible {
    public let description: String
    init(_ description: String) { self.description = description }
}

extension coffer_ucred: @retroactive @unchecked Sendable {}
