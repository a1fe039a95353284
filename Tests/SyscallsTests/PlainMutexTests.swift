import Foundation
import Syscalls
import Testing

/// The plain mutex the audit chain records under: one holder at a time,
/// and a body's error comes out as it went in.
@Suite struct PlainMutexTests {
    struct Refused: Error, Equatable {}

    @Test func threadsTakeTurnsAndNoIncrementIsLost() {
        let counter = PlainMutex((count: 0, inside: 0, overlapped: false))
        let group = DispatchGroup()
        for _ in 0..<8 {
            group.enter()
            Thread.detachNewThread {
                for _ in 0..<20_000 {
                    counter.withLock { state in
                        state.inside += 1
                        if state.inside > 1 { state.overlapped = true }
                        state.count += 1
                        state.inside -= 1
                    }
                }
                group.leave()
            }
        }
        #expect(group.wait(timeout: .now() + 60) == .success, "8 threads finished within 60 s")
        let final = counter.withLock { $0 }
        #expect(final.count == 160_000)
        #expect(!final.overlapped, "two bodies never ran at once")
    }

    @Test func aTypedErrorPassesThroughAndTheLockIsFreedAfterIt() {
        let mutex = PlainMutex(1)
        #expect(throws: Refused.self) {
            try mutex.withLock { (value: inout Int) throws(Refused) -> Void in
                value = 2
                throw Refused()
            }
        }
        #expect(mutex.withLock { $0 } == 2, "taken again after the throw; the change made before it stays")
    }
}
