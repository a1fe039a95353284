#if canImport(Glibc)
import Glibc
#endif

/// A value behind a pthread mutex, with a condition variable to wait on
/// for the value to change (pthread_cond_wait(3)): Synchronization's
/// `Mutex` has no way to wait.
public final class ConditionMutex<Value>: @unchecked Sendable {
    private let mutex: UnsafeMutablePointer<pthread_mutex_t>
    private let condition: UnsafeMutablePointer<pthread_cond_t>
    private var value: Value

    public init(_ value: Value) {
        self.value = value
        mutex = .allocate(capacity: 1)
        mutex.initialize(to: pthread_mutex_t())
        condition = .allocate(capacity: 1)
        condition.initialize(to: pthread_cond_t())
        var rc = pthread_mutex_init(mutex, nil)
        precondition(rc == 0, "pthread_mutex_init: \(rc)")
        rc = pthread_cond_init(condition, nil)
        precondition(rc == 0, "pthread_cond_init: \(rc)")
    }

    deinit {
        pthread_cond_destroy(condition)
        pthread_mutex_destroy(mutex)
        condition.deallocate()
        mutex.deallocate()
    }

    /// Runs `body` with the lock held. Waiters are woken afterwards: any
    /// change may be the one they wait for.
    public func withLock<R, E: Error>(_ body: (inout Value) throws(E) -> R) throws(E) -> R {
        pthread_mutex_lock(mutex)
        defer {
            pthread_cond_broadcast(condition)
            pthread_mutex_unlock(mutex)
        }
        return try body(&value)
    }

    /// Waits, with the lock held between checks, until `ready` holds, then
    /// runs `body` with the lock still held.
    public func withLock<R, E: Error>(
        when ready: (Value) -> Bool, _ body: (inout Value) throws(E) -> R
    ) throws(E) -> R {
        pthread_mutex_lock(mutex)
        defer {
            pthread_cond_broadcast(condition)
            pthread_mutex_unlock(mutex)
        }
        while !ready(value) { pthread_cond_wait(condition, mutex) }
        return try body(&value)
    }

    /// `withLock(when:)` for a caller that must not wait: nil, having run
    /// nothing, when another thread holds the lock or `ready` does not hold.
    public func withLockIfFree<R, E: Error>(
        when ready: (Value) -> Bool, _ body: (inout Value) throws(E) -> R
    ) throws(E) -> R? {
        guard pthread_mutex_trylock(mutex) == 0 else { return nil }
        defer {
            pthread_cond_broadcast(condition)
            pthread_mutex_unlock(mutex)
        }
        guard ready(value) else { return nil }
        return try body(&value)
    }
}
