import FileStore
import Model
import Testing

@testable import Mirror

/// What PostgreSQL has confirmed of the outbox, without a database
/// (SettledChanges): the watermark, names confirmed above it, and what
/// stays pending.
@Suite struct SettledChangesTests {
    let a = try! SecretName("a"), b = try! SecretName("b"), c = try! SecretName("c")

    func entry(_ generation: UInt64) -> OutboxEntry { OutboxEntry(generation: generation, queuedAt: 0) }

    @Test func theWatermarkStopsBelowTheOldestPendingChange() {
        var settled = SettledChanges(watermark: 0)
        let outbox: Outbox = [a: entry(3), b: entry(5), c: entry(7)]
        settled.confirm([a: 3, c: 7])
        #expect(settled.advance(over: outbox, generation: 7) == 4, "b at 5 is still pending")
        #expect(settled.isSettled(a, entry(3)) && settled.isSettled(c, entry(7)) && !settled.isSettled(b, entry(5)))
        #expect(Set(settled.pending(in: outbox).keys) == [b])
        settled.confirm([b: 5])
        #expect(settled.advance(over: outbox, generation: 9) == 9, "nothing pending: up to the snapshot's generation")
        #expect(settled.pending(in: outbox).isEmpty)
        #expect(settled.advance(over: outbox, generation: 9) == nil, "it did not move")
    }

    @Test func droppingLeavesOnlyWhatIsStillPending() {
        var settled = SettledChanges(watermark: 4)
        settled.confirm([c: 7])
        var outbox: Outbox = [a: entry(3), b: entry(5), c: entry(7)]
        settled.drop(from: &outbox)
        #expect(Array(outbox.keys) == [b], "a is under the watermark, c confirmed above it; b waits")
    }

    /// A name changed again after its push is pending again; a
    /// confirmation of an older generation does not cover it.
    @Test func aNewerChangeOfAConfirmedNameIsPendingAgain() {
        var settled = SettledChanges(watermark: 0)
        settled.confirm([a: 3])
        #expect(settled.isSettled(a, entry(3)))
        #expect(!settled.isSettled(a, entry(8)))
        #expect(settled.advance(over: [a: entry(8)], generation: 8) == 7)
        #expect(!settled.isSettled(a, entry(8)) && settled.isSettled(b, entry(7)))
    }

    /// What was confirmed only above the watermark is not kept across a
    /// restart: those names are pushed again (upserts make it harmless).
    @Test func aRestartKeepsOnlyTheWatermark() {
        var settled = SettledChanges(watermark: 0)
        settled.confirm([c: 7])
        _ = settled.advance(over: [a: entry(3), c: entry(7)], generation: 7)
        #expect(settled.watermark == 2 && settled.isSettled(c, entry(7)))
        let restarted = SettledChanges(watermark: settled.watermark)
        #expect(!restarted.isSettled(c, entry(7)) && restarted.isSettled(b, entry(2)))
    }
}
