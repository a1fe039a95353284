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
    /// Open connections across all sockets; more are refused at accept.
    public var maxConnections = 1024

    public init() {}
}

/// Where the sockets go and how they are protected.
public struct ServerConfiguration: Sendable {
    public var runtimeDirectory: String
    public var limits = ServerLimits()
    /// How long graceful shutdown waits for connections to finish.
    public var drainTimeout: Duration = .seconds(10)

    public init(runtimeDirectory: String) {
        self.runtimeDirectory = runtimeDirectory
    }

    public func socketPath(_ name: String) -> String { runtimeDirectory + "/" + name }
}
