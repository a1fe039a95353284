#if canImport(Glibc)
import Glibc
#endif

/// Which of the audit chain's lanes the calling thread stamps its events in
/// (docs/audit.md, "Lanes").
///
/// Each event loop claims a lane of its own when the daemon starts, so the
/// loops never wait for one another to send an event; every other thread
/// (the blocking pool, the mirror, startup and shutdown) shares lane 0. A
/// lane is a property of the thread, kept in thread-specific data
/// (pthread_getspecific(3)), so no caller has to pass it along.
public enum AuditLane {
    /// The key is made once and never deleted: threads come and go, the
    /// value is a small integer, not memory to free.
    private static let key: pthread_key_t = {
        var key = pthread_key_t()
        let rc = pthread_key_create(&key, nil)
        precondition(rc == 0, "pthread_key_create: \(rc)")
        return key
    }()

    /// The calling thread's lane: 0 unless it claimed another.
    public static var current: Int {
        // Stored as lane + 1, so that "never set" (nil) reads as lane 0.
        guard let raw = pthread_getspecific(key) else { return 0 }
        return Int(bitPattern: raw) - 1
    }

    /// Makes `lane` the calling thread's lane from now on.
    public static func claim(_ lane: Int) {
        precondition(lane >= 0)
        pthread_setspecific(key, UnsafeRawPointer(bitPattern: lane + 1))
    }
}
