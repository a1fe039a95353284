import Foundation

/// Runs two independent pieces of work at once, the second on a thread of
/// its own, and returns both results. The second writes only its slot, and
/// the semaphore orders that write before the read.
enum BothAtOnce {
    private final class Slot<B>: @unchecked Sendable {
        var value: B?
    }

    /// `whenLarge` false runs them one after the other on the calling
    /// thread: for a small input a thread costs more than it saves.
    static func run<A, B>(whenLarge: Bool, _ first: () -> A, _ second: @escaping @Sendable () -> B) -> (A, B) {
        guard whenLarge else { return (first(), second()) }
        let slot = Slot<B>()
        let done = DispatchSemaphore(value: 0)
        Thread.detachNewThread {
            slot.value = second()
            done.signal()
        }
        let a = first()
        done.wait()
        return (a, slot.value!)
    }
}
