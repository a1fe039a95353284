import Model
import Synchronization
#if canImport(Glibc)
import Glibc
#endif

/// How many scrypt computations may run at once. scrypt is deliberately
/// slow and large (32 MiB and tens of milliseconds each at the default
/// parameters): unbounded, a caller allowed to verify one password could
/// fill the blocking pool and cofferd's memory with them. Past the bound a
/// request is answered UNAVAILABLE at once, never queued; gets never wait
/// for a permit (they run on the event loops), and the pool keeps threads
/// for commits.
public final class ScryptPermits: Sendable {
    package let limit: Int
    private let inUse = Atomic<Int>(0)

    /// One fewer than the blocking pool's threads (one at least), so that
    /// commits always find a thread; four at most (128 MiB of scrypt). The
    /// pool has a thread per online core (NIO's `System.coreCount`).
    public static var defaultLimit: Int { max(1, min(4, Int(sysconf(Int32(_SC_NPROCESSORS_ONLN))) - 1)) }

    package init(limit: Int) {
        precondition(limit >= 1)
        self.limit = limit
    }

    /// Runs `body` on `pool` holding a permit, or throws UNAVAILABLE at
    /// once when every permit is taken.
    package func run<R: Sendable>(on pool: any BlockingWork, _ body: @escaping @Sendable () throws -> R) async throws -> R {
        guard take() else {
            throw CofferError(.unavailable, "too many password hashes are being computed; try again shortly")
        }
        defer { release() }
        return try await pool.run(body)
    }

    package func take() -> Bool {
        var current = inUse.load(ordering: .relaxed)
        while current < limit {
            let (exchanged, original) = inUse.compareExchange(expected: current, desired: current + 1, ordering: .acquiring)
            if exchanged { return true }
            current = original
        }
        return false
    }

    package func release() {
        inUse.subtract(1, ordering: .releasing)
    }

    package var running: Int { inUse.load(ordering: .relaxed) }
}
