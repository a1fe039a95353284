import NIOCore
import Testing

@testable import Server

/// A connection's timeouts decided from the clock alone (ConnectionDeadlines).
@Suite struct ConnectionDeadlinesTests {
    let start = NIODeadline.uptimeNanoseconds(1_000_000_000)

    func deadlines() -> ConnectionDeadlines {
        ConnectionDeadlines(idleTimeout: .seconds(60), requestTimeout: .seconds(10), writeTimeout: .seconds(5), now: start)
    }

    @Test func anIdleConnectionIsClosedOnlyAfterTheIdleTimeout() {
        var d = deadlines()
        #expect(d.verdict(at: start + .seconds(59), idle: true, readsHeldByUs: false) == .keep)
        #expect(d.verdict(at: start + .seconds(61), idle: true, readsHeldByUs: false) == .closeIdle)
        #expect(d.verdict(at: start + .seconds(61), idle: false, readsHeldByUs: false) == .keep, "a watch or work keeps it")
        d.received(at: start + .seconds(30))
        #expect(d.verdict(at: start + .seconds(61), idle: true, readsHeldByUs: false) == .keep)
    }

    @Test func anUnfinishedLineMustArriveWithinTheRequestTimeoutUnlessWeHoldReads() {
        var d = deadlines()
        d.lineUnfinished(true, at: start)
        d.lineUnfinished(true, at: start + .seconds(5))
        #expect(d.partialSince == start, "the clock starts at the first byte")
        #expect(d.verdict(at: start + .seconds(11), idle: true, readsHeldByUs: false) == .closeSlowLine)
        #expect(d.verdict(at: start + .seconds(11), idle: true, readsHeldByUs: true) == .keep, "our wait, not the client's")
        d.readsResumed(at: start + .seconds(11))
        #expect(d.verdict(at: start + .seconds(20), idle: true, readsHeldByUs: false) == .keep)
        #expect(d.verdict(at: start + .seconds(22), idle: true, readsHeldByUs: false) == .closeSlowLine)
        d.lineUnfinished(false, at: start + .seconds(22))
        #expect(d.verdict(at: start + .seconds(22), idle: false, readsHeldByUs: false) == .keep)
    }

    @Test func anAnswerNotReadWithinTheWriteTimeoutClosesTheConnection() {
        var d = deadlines()
        d.writeStarted(at: start)
        d.writeStarted(at: start + .seconds(3))
        #expect(d.verdict(at: start + .seconds(4), idle: false, readsHeldByUs: false) == .keep)
        #expect(d.verdict(at: start + .seconds(6), idle: false, readsHeldByUs: false) == .closeSlowReader)
        d.writeFinished(at: start + .seconds(6))
        #expect(d.writeSince == nil && d.lastActivity == start + .seconds(6))
        #expect(d.verdict(at: start + .seconds(60), idle: true, readsHeldByUs: false) == .keep)
    }
}
