import Model
import Synchronization
#if canImport(Glibc)
import Glibc
#endif

/// How many of one kind of blocking work may run or wait at once. Past the
/// bound a request is answered UNAVAILABLE at once, never queued: the
/// caller hears that cofferd is busy rather than waiting behind work that
/// may never end.
public final class WorkPermits: Sendable {
    package let limit: Int
    private let inUse = Atomic<Int>(0)
    /// What a refused request is told.
    private let refusal: String

    package init(limit: Int, refusal: String) {
        precondition(limit >= 1)
        self.limit = limit
        self.refusal = refusal
    }

    /// scrypt is deliberately slow and large (32 MiB and tens of
    /// milliseconds each at the default parameters): unbounded, a caller
    /// allowed to verify one password could fill the blocking pool and
    /// cofferd's memory with them. Gets never wait for a permit (they run
    /// on the event loops), and the pool keeps threads for commits.
    package static func scrypt(limit: Int) -> WorkPermits {
        WorkPermits(limit: limit, refusal: "too many password hashes are being computed; try again shortly")
    }

    /// For scrypt: one fewer than the blocking pool's threads (one at
    /// least), so that commits always find a thread; four at most (128 MiB
    /// of scrypt). The pool has a thread per online core (NIO's
    /// `System.coreCount`).
    public static var defaultScryptLimit: Int { max(1, min(4, Int(sysconf(Int32(_SC_NPROCESSORS_ONLN))) - 1)) }

    /// Runs `body` on `pool` holding a permit, or throws UNAVAILABLE at
    /// once when every permit is taken.
    package func run<R: Sendable>(on pool: any BlockingWork, _ body: @escaping @Sendable () throws -> R) async throws -> R {
        guard take() else { throw CofferError(.unavailable, refusal) }
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

/// Blocking work on `pool`, each body holding one of `permits`.
package struct PermittedWork: BlockingWork {
    let pool: any BlockingWork
    let permits: WorkPermits

    package func run<R: Sendable>(_ body: @escaping @Sendable () throws -> R) async throws -> R {
        try await permits.run(on: pool, body)
    }
}

/// Where user and group names are resolved (getpwnam_r(3), getgrnam_r(3)):
/// a put's `principals`, a reload's policy file. NSS may ask a network
/// directory (LDAP, sssd) that does not answer for its whole timeout, or
/// ever. The daemon gives them a thread of their own, so a hung directory
/// holds neither an event loop nor a thread of the blocking pool (commits,
/// scrypt, a master-key rotation), and at most `limit` lookups run or wait
/// for that thread: past it a request is refused at once.
package enum AccountLookups {
    package static let limit = 4

    package static func on(_ pool: any BlockingWork) -> PermittedWork {
        PermittedWork(pool: pool, permits: WorkPermits(
            limit: limit,
            refusal: "too many user and group lookups are waiting (is the account directory answering?); try again shortly"))
    }
}
