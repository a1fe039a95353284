import Testing

@testable import Server

/// A connection's queue decided without a channel (RequestQueue): the
/// pipelining bound, the bytes held, an oversized line, and winding down.
@Suite struct RequestQueueTests {
    func receive(_ text: String, into queue: inout RequestQueue) -> Bool {
        Array(text.utf8).withUnsafeBytes { queue.received($0) }
    }

    @Test func linesPastTheBoundStayAsBytesAndReadsStop() {
        var queue = RequestQueue(maxLineBytes: 1024, maxPipelined: 2)
        #expect(receive("aa\nbbb\ncccc\nd", into: &queue))
        #expect(queue.count == 2 && !queue.mayRead)
        #expect(queue.queuedBytes == 5, "the two lines taken, newlines excluded")
        #expect(queue.bufferedBytes == 6, "cccc\\nd waits in the framer")
        #expect(queue.heldBytes == 11)
        #expect(!queue.lineUnfinished, "the wait is ours while the queue is full")
        guard case .line? = queue.next() else { Issue.record("the first line is next"); return }
        #expect(queue.busy && queue.next() == nil, "one at a time")
        queue.answered()
        #expect(queue.count == 2 && queue.queuedBytes == 7, "bbb and cccc now")
        #expect(queue.lineUnfinished == false && !queue.mayRead)
        _ = queue.next()
        queue.answered()
        #expect(queue.count == 1 && queue.mayRead && queue.lineUnfinished, "d is the client's to finish")
    }

    @Test func afterALineTooLongNothingMoreIsTaken() {
        var queue = RequestQueue(maxLineBytes: 8, maxPipelined: 10)
        #expect(receive("ok\n" + String(repeating: "x", count: 20) + "\nlater\n", into: &queue))
        #expect(queue.count == 2 && queue.endsInError && !queue.mayRead)
        #expect(!receive("more\n", into: &queue), "dropped")
        _ = queue.next()
        queue.answered()
        guard case .tooLarge? = queue.next() else { Issue.record("the refusal comes in its turn"); return }
    }

    @Test func aHalfCloseClosesOnceAnsweredButAWatcherKeepsWatching() {
        var queue = RequestQueue(maxLineBytes: 64, maxPipelined: 4)
        _ = receive("a\n", into: &queue)
        #expect(queue.inputClosed(watching: false) == .no, "a request is still to be answered")
        _ = queue.next()
        #expect(queue.closing == .no, "still answering")
        queue.answered()
        #expect(queue.closing == .now)

        var watcher = RequestQueue(maxLineBytes: 64, maxPipelined: 4)
        #expect(watcher.inputClosed(watching: true) == .no && !watcher.draining && !watcher.mayRead)
    }

    @Test func shutdownClosesAnIdleConnectionAfterTheGrace() {
        var queue = RequestQueue(maxLineBytes: 64, maxPipelined: 4)
        #expect(queue.drainRequested() == .afterGrace)
        #expect(queue.stillIdle)
        _ = receive("late\n", into: &queue)
        #expect(!queue.stillIdle && queue.closing == .no, "a request that arrived in the grace is answered")
        _ = queue.next()
        queue.answered()
        #expect(queue.closing == .afterGrace)
    }
}
