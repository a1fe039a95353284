import Model
import Testing

@testable import Mirror

/// A push pass's decisions, without a database: batching, watermarks,
/// conflicts, merges and names set aside (PushPass).
@Suite struct PushPassTests {
    func item(_ name: String, generation: UInt64 = 1) -> MirrorWriter.Item {
        MirrorWriter.Item(name: try! SecretName(name), secret: nil, generation: generation)
    }

    func names(_ batch: PushPass.Batch) -> [String] { batch.items.map(\.name.rawValue) }

    @Test func theOutboxGoesInBatchesUnderThePullWatermark() {
        let pass = PushPass(batchSize: 2, watermark: 40)
        let batches = pass.batches(of: [item("a"), item("b"), item("c")])
        #expect(batches.map(names) == [["a", "b"], ["c"]])
        #expect(batches.map(\.ceiling) == [40, 40])
    }

    @Test func writtenNamesAreConfirmedAtTheirGenerationAndNotSentAgain() {
        var pass = PushPass(batchSize: 10, watermark: 0)
        let batch = pass.batches(of: [item("a", generation: 7), item("b", generation: 9)])[0]
        pass.written(batch)
        #expect(pass.confirmed == [try! SecretName("a"): 7, try! SecretName("b"): 9])
        #expect(pass.done == [try! SecretName("a"), try! SecretName("b")])
    }

    /// A collision merges the names once, and the merged names then go
    /// alone, each with its merge's change_seq as the ceiling.
    @Test func aConflictMergesThenTheMergedNamesGoAloneAboveTheirMerge() {
        var pass = PushPass(batchSize: 10, watermark: 40)
        let a = try! SecretName("a"), b = try! SecretName("b")
        #expect(pass.conflicted([a]) == .merge([a]))
        pass.mergedIn([a], at: [a: 57])
        let batches = pass.batches(of: [item("a"), item("b"), item("c")])
        #expect(batches.map(names) == [["b", "c"], ["a"]])
        #expect(batches.map(\.ceiling) == [40, 57])
        // A merge that took in nothing newer than the watermark keeps it.
        pass.mergedIn([b], at: [b: 12])
        #expect(pass.batches(of: [item("b")]).map(\.ceiling) == [40])
    }

    /// A name that collides again after its merge is set aside for the next
    /// pass; the others are merged and go on.
    @Test func aNameThatCollidesAgainAfterItsMergeIsSetAside() {
        var pass = PushPass(batchSize: 10, watermark: 0)
        let a = try! SecretName("a"), b = try! SecretName("b")
        #expect(pass.conflicted([a]) == .merge([a]))
        pass.mergedIn([a], at: [a: 5])
        #expect(pass.conflicted([a, b]) == .merge([b]))
        #expect(pass.stuck == [a] && pass.done.contains(a) && !pass.done.contains(b))
        pass.mergedIn([b], at: [b: 6])
        #expect(pass.conflicted([b]) == .restart)
        #expect(pass.stuck == [a, b])
        #expect(pass.confirmed.isEmpty, "nothing set aside is confirmed: it stays in the outbox")
    }
}

/// The mirror loop's outage decisions (MirrorOutage): one report when an
/// outage starts, one when it ends, a doubling backoff up to the maximum.
@Suite struct MirrorOutageTests {
    @Test func anOutageIsReportedOnceAndItsBackoffDoublesToTheMaximum() {
        var outage = MirrorOutage(maxBackoff: .seconds(3))
        #expect(outage.connected() == .nothing, "a first connection is no recovery")
        let first = outage.failed()
        #expect(first.report == .failing && first.wait == .milliseconds(500))
        let waits = (0..<5).map { _ in outage.failed() }
        #expect(waits.allSatisfy { $0.report == .nothing })
        #expect(waits.map(\.wait) == [.seconds(1), .seconds(2), .seconds(3), .seconds(3), .seconds(3)])
        #expect(outage.connected() == .recovered)
        #expect(outage.connected() == .nothing)
        let again = outage.failed()
        #expect(again.report == .failing && again.wait == .milliseconds(500), "a new outage starts from the first backoff")
    }
}
