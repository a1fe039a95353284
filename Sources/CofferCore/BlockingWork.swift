/// Where work that blocks a thread runs (fsync, scrypt, a libpq or journal
/// read): never on an event loop, never on the concurrency pool's few
/// threads. The core names only this; the server gives it NIO's thread pool.
public protocol BlockingWork: Sendable {
    /// Runs `body` on a thread that may block, or throws if the pool has
    /// shut down.
    func run<R: Sendable>(_ body: @escaping @Sendable () throws -> R) async throws -> R
}
