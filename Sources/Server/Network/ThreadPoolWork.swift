import CofferCore
import NIOPosix

/// The core's blocking work on NIO's thread pool (the daemon's is
/// `NIOThreadPool.singleton`): off the event loops and the concurrency pool.
public struct ThreadPoolWork: BlockingWork {
    let pool: NIOThreadPool

    public init(_ pool: NIOThreadPool = .singleton) {
        self.pool = pool
    }

    public func run<R: Sendable>(_ body: @escaping @Sendable () throws -> R) async throws -> R {
        try await pool.runIfActive(body)
    }
}
