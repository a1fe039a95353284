import Dispatch
import Synchronization
import Syscalls

/// Frees replaced snapshots in the background, a moment after the swap.
///
/// Freeing a 100k-secret snapshot takes tens of milliseconds. Dropped inside
/// the snapshot lock, every reader would wait for it; dropped by whoever
/// holds the last reference, a get on an event loop that took the snapshot
/// just before the swap would pay for it. Held here for half a second (a
/// get holds its snapshot for microseconds), they are freed on a pool
/// thread, and the freed pages go back to the kernel. Snapshots retired
/// meanwhile join the batch already waiting: however many commits a second
/// there are, the heap is trimmed at most twice a second (malloc_trim
/// walks the whole heap).
enum SnapshotRetirement {
    private static let waiting = Mutex<(snapshots: [StoreSnapshot], scheduled: Bool)>(([], false))

    static let delay = DispatchTimeInterval.milliseconds(500)

    static func retire(_ old: StoreSnapshot) {
        let schedule = waiting.withLock { state -> Bool in
            state.snapshots.append(old)
            defer { state.scheduled = true }
            return !state.scheduled
        }
        guard schedule else { return }
        DispatchQueue.global().asyncAfter(deadline: .now() + delay) {
            var batch = waiting.withLock { state -> [StoreSnapshot] in
                state.scheduled = false
                defer { state.snapshots = [] }
                return state.snapshots
            }
            batch.removeAll()
            HeapPages.returnFree()
        }
    }
}
