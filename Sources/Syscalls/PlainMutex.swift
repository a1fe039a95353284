#if canImport(Glibc)
import Glibc
#endif

/// A value behind a plain pthread mutex.
///
/// Synchronization's `Mutex` is a priority-inheritance futex on Linux
/// (FUTEX_LOCK_PI, futex(2)): when it is contended, every wait and every
/// hand-over goes through the kernel's rt_mutex. Under perf that was most of
/// the cost of the audit chain's lock when every event loop records at once
/// (docs/performance.md). Where no thread of higher priority waits on a
/// lower one, priority inheritance buys nothing; a default pthread mutex
/// waits on an ordinary futex.
public final class PlainMutex<Value: Sendable>: @unchecked Sendable {
    private let mutex: UnsafeMutablePointer<pthread_mutex_t>
    private var value: Value

    public init(_ value: Value) {
        self.value = value
        mutex = .allocate(capacity: 1)
        mutex.initialize(to: pthread_mutex_t())
        let rc = pthread_mutex_init(mutex, nil)
        precondition(rc == 0, "pthread_mutex_init: \(rc)")
    }

    deinit {
        pthread_mutex_destroy(mutex)
        mutex.deallocate()
    }

    public func withLock<R, E: Error>(_ body: (inout Value) throws(E) -> R) throws(E) -> R {
        pthread_mutex_lock(mutex)
        defer { pthread_mutex_unlock(mutex) }
        return try body(&value)
    }
}
