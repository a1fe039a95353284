import CofferCore
import Model
import NIOCore
#if canImport(Glibc)
import Glibc
#endif

/// Limits every connection is held to (docs/protocol.md, "Limits").
public struct ServerLimits: Sendable {
    /// A request line longer than this is answered FRAME_TOO_LARGE and the
    /// connection closed.
    public var maxLineBytes = 64 * 1024
    /// Requests read ahead of the one being answered, per connection.
    public var maxPipelinedRequests = 64
    /// Open connections on coffer.sock; more are refused at accept.
    public var maxConnections = 1024
    /// Open connections on coffer.sock from one uid (root and cofferd's own
    /// user excepted), so one local user cannot take every slot.
    public var maxConnectionsPerUser = 128
    /// admin.sock and credentials.sock each have their own slots, so a
    /// flood on coffer.sock never locks out operators or systemd.
    public var reservedConnections = 64
    /// A connection with nothing queued and no watch is closed after this.
    public var idleTimeout: TimeAmount = .seconds(60)
    /// A request line must arrive whole within this of its first byte.
    public var requestTimeout: TimeAmount = .seconds(10)
    /// An answer the client does not read within this closes the connection.
    public var writeTimeout: TimeAmount = .seconds(10)
    /// Watch events waiting for a client that does not read; past it the
    /// watcher is disconnected.
    public var maxQueuedEvents = 1024
    /// Request bytes (unfinished lines, requests waiting their turn) all
    /// connections of one uid may make cofferd hold; past it they stop
    /// being read until answers or closes bring it down (BufferBudget).
    public var maxBufferedBytesPerUser = 4 << 20
    /// The same for every connection together.
    public var maxBufferedBytes = 64 << 20
    /// scrypt computations (verify and put of hashed passwords) running at
    /// once; past it such a request is answered UNAVAILABLE at once.
    public var maxConcurrentScrypt = WorkPermits.defaultScryptLimit

    /// At shutdown, how long an idle connection is kept for a request that
    /// may be on its way (a client that connected just before the
    /// listeners closed) before it is closed.
    public var drainGrace: TimeAmount = .milliseconds(250)

    var shortestTimeout: TimeAmount { min(idleTimeout, requestTimeout, writeTimeout) }

    public init() {}
}

/// Where the sockets go and how they are protected.
public struct ServerConfiguration: Sendable {
    public var runtimeDirectory: String
    public var limits = ServerLimits()
    /// When set, admin.sock is 0660 with this group, so that operators who
    /// are not root can reach it (the policy still decides who is served).
    public var adminSocketGroup: gid_t?
    /// Listening sockets handed over by systemd (socket activation), by
    /// listener; the others are bound by cofferd itself.
    public var activatedSockets: [Listener: Int32] = [:]
    /// How long graceful shutdown waits for connections to finish.
    public var drainTimeout: Duration = .seconds(10)

    public init(runtimeDirectory: String) {
        self.runtimeDirectory = runtimeDirectory
    }

    public func socketPath(_ name: String) -> String { runtimeDirectory + "/" + name }
}
