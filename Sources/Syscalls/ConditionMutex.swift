#if canImport(Glibc)
import Glibc
#endif
import CCofferShims

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
        // Timed waits count on CLOCK_MONOTONIC, which the wall clock's
        // steps do not move (pthread_condattr_setclock(3)).
        var attributes = pthread_condattr_t()
        pthread_condattr_init(&attributes)
        defer { pthread_condattr_destroy(&attributes) }
        rc = pthread_condattr_setclock(&attributes, CLOCK_MONOTONIC)
        precondition(rc == 0, "pthread_condattr_setclock: \(rc)")
        rc = pthread_cond_init(condition, &attributes)
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

    /// `withLock(when:)` that waits at most `timeout` for `ready`: nil,
    /// having run nothing, when it still does not hold by then.
    public func withLock<R, E: Error>(
        when ready: (Value) -> Bool, waitingAtMost timeout: Duration, _ body: (inout Value) throws(E) -> R
    ) throws(E) -> R? {
        var deadline = Self.monotonicDeadline(after: timeout)
        pthread_mutex_lock(mutex)
        defer {
            pthread_cond_broadcast(condition)
            pthread_mutex_unlock(mutex)
        }
        while !ready(value) {
            if pthread_cond_timedwait(condition, mutex, &deadline) == ETIMEDOUT, !ready(value) { return nil }
        }
        return try body(&value)
    }

    /// `timeout` (at least zero) from now on CLOCK_MONOTONIC, the clock
    /// the condition and `coffer_mutex_clocklock` count on.
    private static func monotonicDeadline(after timeout: Duration) -> timespec {
        var deadline = timespec()
        clock_gettime(CLOCK_MONOTONIC, &deadline)
        let (seconds, attoseconds) = max(timeout, .zero).components
        deadline.tv_sec += Int(seconds)
        deadline.tv_nsec += Int(attoseconds / 1_000_000_000)
        if deadline.tv_nsec >= 1_000_000_000 {
            deadline.tv_sec += 1
            deadline.tv_nsec -= 1_000_000_000
        }
        return deadline
    }

    /// `withLock(when:)` for a caller that may wait only briefly (an event
    /// loop): nil, having run nothing, when the lock is not had within
    /// `patience` or `ready` does not hold. Waiting that long for a holder
    /// that is quick (another thread staging a commit) costs less than
    /// handing the work to another thread; a holder that is slow (an
    /// exclusive operation) cannot stall the caller past `patience`.
    public func withLock<R, E: Error>(
        within patience: Duration, when ready: (Value) -> Bool, _ body: (inout Value) throws(E) -> R
    ) throws(E) -> R? {
        guard pthread_mutex_trylock(mutex) == 0 || Self.lock(mutex, by: Self.monotonicDeadline(after: patience)) else { return nil }
        defer {
            pthread_cond_broadcast(condition)
            pthread_mutex_unlock(mutex)
        }
        guard ready(value) else { return nil }
        return try body(&value)
    }

    private static func lock(_ mutex: UnsafeMutablePointer<pthread_mutex_t>, by deadline: timespec) -> Bool {
        var deadline = deadline
        return coffer_mutex_clocklock(mutex, &deadline) == 0
    }
}
