import CofferTestSupport
import Foundation

// Async tests that start cofferd and run cofferctl. Those are blocking
// calls (waitpid, a read until READY=1, Foundation's waitUntilExit), and an
// async test would make them on the cooperative pool, which has one thread
// per core: two here. While they are held, every other async test of the
// test binary waits, and whatever they wait for may itself need the pool.
// So the blocking work runs on threads of its own.

/// Runs `work` on a thread of its own and resumes with what it returned
/// or threw.
func offPool<R: Sendable>(_ work: @escaping @Sendable () throws -> R) async throws -> R {
    try await withCheckedThrowingContinuation { continuation in
        Thread.detachNewThread { continuation.resume(with: Result { try work() }) }
    }
}

// DevDaemon's state is set while it starts and only read afterwards; an
// async test hands it between its own thread and offPool's.
extension DevDaemon: @unchecked Sendable {}

/// A dev cofferd for `body`, started and stopped off the pool. It is
/// stopped when `body` ends, however it ends, so its deinit never waits
/// for a running process on a pool thread.
func withDevDaemon<R: Sendable>(_ body: (DevDaemon) async throws -> R) async throws -> R {
    let daemon = try await offPool { try DevDaemon() }
    let result: Result<R, any Error>
    do { result = .success(try await body(daemon)) } catch { result = .failure(error) }
    _ = try await offPool { daemon.stop() }
    return try result.get()
}

extension DevDaemon {
    /// cofferctl against this instance, run off the pool.
    func ctl(_ arguments: [String], stdin: String? = nil) async throws -> ProgramResult {
        try await offPool { try self.ctl(arguments, stdin: stdin) }
    }
}

struct DeadlinePassed: Error, CustomStringConvertible {
    let what: String
    var description: String { "waited too long for \(what)" }
}

/// `body`, or DeadlinePassed once `limit` has gone by.
func withDeadline<R: Sendable>(_ limit: Duration, _ what: String, _ body: @escaping @Sendable () async throws -> R) async throws -> R {
    try await withThrowingTaskGroup(of: R.self) { group in
        group.addTask { try await body() }
        group.addTask {
            try await Task.sleep(for: limit)
            throw DeadlinePassed(what: what)
        }
        let first = try await group.next()!
        group.cancelAll()
        return first
    }
}
