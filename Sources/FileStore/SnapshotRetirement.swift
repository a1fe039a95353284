import Dispatch
import Syscalls

/// Frees a replaced snapshot in the background, a moment after the swap.
///
/// Freeing a 100k-secret snapshot takes tens of milliseconds. Dropped inside
/// the snapshot lock, every reader would wait for it; dropped by whoever
/// holds the last reference, a get on an event loop that took the snapshot
/// just before the swap would pay for it. Held here for half a second (a
/// get holds its snapshot for microseconds), it is freed on a pool thread,
/// and the freed pages go back to the kernel.
enum SnapshotRetirement {
    private final class Held: @unchecked Sendable {
        // Touched by the retiring closure only, once.
        var snapshot: StoreSnapshot?
        init(_ snapshot: StoreSnapshot) { self.snapshot = snapshot }
    }

    static let delay = DispatchTimeInterval.milliseconds(500)

    static func retire(_ old: StoreSnapshot) {
        let held = Held(old)
        DispatchQueue.global().asyncAfter(deadline: .now() + delay) {
            held.snapshot = nil
            HeapPages.returnFree()
        }
    }
}
