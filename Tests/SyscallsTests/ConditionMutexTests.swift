import Foundation
import Syscalls
import Testing

/// `withLock(within:)`, which an event loop stages commits through: it
/// waits for a holder that lets go within its patience, and gives up,
/// having run nothing, on one that does not.
@Suite struct ConditionMutexTests {
    /// Holds `mutex` on another thread until `release` is signalled;
    /// returns once the lock is held.
    func hold(_ mutex: ConditionMutex<Int>, until release: DispatchSemaphore) {
        let held = DispatchSemaphore(value: 0)
        Thread.detachNewThread {
            mutex.withLock { _ in
                held.signal()
                release.wait()
            }
        }
        held.wait()
    }

    @Test func givesUpOnAHolderThatOutlastsItsPatience() {
        let mutex = ConditionMutex(0)
        let release = DispatchSemaphore(value: 0)
        hold(mutex, until: release)
        defer { release.signal() }
        let start = ContinuousClock.now
        let ran = mutex.withLock(within: .milliseconds(50), when: { _ in true }) { value -> Bool in
            value += 1
            return true
        }
        let waited = ContinuousClock.now - start
        #expect(ran == nil, "the lock was held throughout: nothing ran")
        #expect(waited >= .milliseconds(50), "it waited its patience first (\(waited))")
        #expect(waited < .seconds(5), "and not for the holder (\(waited))")
    }

    @Test func takesTheLockFromAHolderThatLetsGoInTime() {
        let mutex = ConditionMutex(0)
        let release = DispatchSemaphore(value: 0)
        hold(mutex, until: release)
        DispatchQueue.global().asyncAfter(deadline: .now() + .milliseconds(20)) { release.signal() }
        let ran = mutex.withLock(within: .seconds(30), when: { _ in true }) { value -> Int in
            value += 1
            return value
        }
        #expect(ran == 1, "the holder let go after about 20 ms, well within 30 s")
    }

    @Test func runsNothingWhenNotReady() {
        let mutex = ConditionMutex(0)
        let ran = mutex.withLock(within: .seconds(1), when: { $0 > 0 }) { value -> Bool in
            value += 1
            return true
        }
        #expect(ran == nil && mutex.withLock { $0 } == 0)
    }

    /// The syncer's linger: a wait for a change that gives up at its
    /// timeout, and one that sees a change made in time.
    @Test func aTimedWaitGivesUpAtItsTimeout() {
        let mutex = ConditionMutex(0)
        let start = ContinuousClock.now
        let ran = mutex.withLock(when: { $0 > 0 }, waitingAtMost: .milliseconds(50)) { _ in true }
        let waited = ContinuousClock.now - start
        #expect(ran == nil)
        #expect(waited >= .milliseconds(50) && waited < .seconds(5), "waited \(waited)")
    }

    @Test func aTimedWaitSeesAChangeMadeInTime() {
        let mutex = ConditionMutex(0)
        DispatchQueue.global().asyncAfter(deadline: .now() + .milliseconds(20)) { mutex.withLock { $0 = 7 } }
        let seen = mutex.withLock(when: { $0 > 0 }, waitingAtMost: .seconds(30)) { $0 }
        #expect(seen == 7, "the change came after about 20 ms, well within 30 s")
    }
}
