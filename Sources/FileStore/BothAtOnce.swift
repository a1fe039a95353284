import Dispatch

/// Runs two independent pieces of work at once and returns both results.
/// DispatchQueue.concurrentPerform runs them on the pool's threads and the
/// caller's, and returns when both are done (if no other thread is free,
/// the caller runs both: it never waits on a thread that could not start).
/// Each piece writes only its own slot, and the read comes after the join.
enum BothAtOnce {
    /// Below this many records, a second thread costs more than it saves.
    static let worthwhileRecords = 1000

    private final class Slots<A, B>: @unchecked Sendable {
        var first: A?
        var second: B?
    }

    static func run<A, B>(_ first: @Sendable () -> A, _ second: @Sendable () -> B) -> (A, B) {
        let slots = Slots<A, B>()
        withoutActuallyEscaping(first) { first in
            withoutActuallyEscaping(second) { second in
                DispatchQueue.concurrentPerform(iterations: 2) { index in
                    if index == 0 { slots.first = first() } else { slots.second = second() }
                }
            }
        }
        return (slots.first!, slots.second!)
    }
}
