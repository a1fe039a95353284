import CofferTestSupport
@testable import FileStore
import Foundation
import Model
import Testing

/// The outbox must behave exactly as one dictionary would, across many
/// commits and the packings of a full layer, and say what each commit
/// changed, however the two outboxes it compares were packed.
@Suite struct OutboxTests {
    func name(_ i: Int) throws -> SecretName { try SecretName("app/s\(i)") }

    /// Dictionary differences, the slow way.
    func difference(from old: [SecretName: OutboxEntry], to new: [SecretName: OutboxEntry])
        -> (set: [SecretName: OutboxEntry], removed: [SecretName]) {
        (new.filter { old[$0.key] != $0.value }, old.keys.filter { new[$0] == nil }.sorted())
    }

    @Test func manyCommitsMatchADictionaryThroughEveryPacking() throws {
        var dictionary: [SecretName: OutboxEntry] = [:]
        for i in 0..<300 { dictionary[try name(i)] = OutboxEntry(generation: 1, queuedAt: 100) }
        var outbox = Outbox(dictionary)
        var generator = SplitMix(seed: 7)
        var packings = 0
        for generation in UInt64(2)..<1_500 {
            let before = outbox, dictionaryBefore = dictionary
            for _ in 0..<(1 + Int(generator.next() % 4)) {
                let i = Int(generator.next() % 400)
                let entry = generator.next() % 3 == 0 ? nil : OutboxEntry(generation: generation, queuedAt: Int64(generation))
                outbox[try name(i)] = entry
                dictionary[try name(i)] = entry
            }
            if !outbox.sharesPacking(with: before) { packings += 1 }
            #expect(outbox.layerCount <= Outbox.layerLimit(packedCount: outbox.packedCount))
            #expect(outbox.count == dictionary.count)
            let changes = outbox.changes(since: before)
            let expected = difference(from: dictionaryBefore, to: dictionary)
            #expect(changes.set == expected.set && changes.removed == expected.removed, "commit \(generation)")
        }
        #expect(outbox.entries == dictionary)
        #expect(Dictionary(uniqueKeysWithValues: outbox.map { ($0.key, $0.value) }) == dictionary)
        #expect(packings > 3, "the layer filled and was packed several times")
    }

    /// Many changes at once (every name queued, every name confirmed)
    /// make one new packing; a few go through the layer. Either way the
    /// result is the dictionary's.
    @Test(arguments: [3, 500])
    func anUpdateOfManyPacksOnceAndOfFewLayers(changed: Int) throws {
        var dictionary: [SecretName: OutboxEntry] = [:]
        for i in 0..<100 { dictionary[try name(i)] = OutboxEntry(generation: 1, queuedAt: 1) }
        let before = Outbox(dictionary)
        var changes: [SecretName: OutboxEntry?] = [:]
        for i in 0..<changed { changes[try name(i * 2)] = i % 5 == 0 ? .some(nil) : OutboxEntry(generation: 2, queuedAt: 2) }
        var outbox = before
        outbox.update(changes)
        for (name, entry) in changes { dictionary[name] = entry }
        #expect(outbox.entries == dictionary && outbox.count == dictionary.count)
        #expect(outbox.sharesPacking(with: before) == (changed == 3))
        #expect(outbox.layerCount == (changed == 3 ? 3 : 0))
        let difference = difference(from: before.entries, to: dictionary)
        #expect(outbox.changes(since: before) == difference)
    }

    @Test func anEntrySetBackToWhatWasPackedLeavesTheLayer() throws {
        let a = try name(1), b = try name(2)
        let first = OutboxEntry(generation: 1, queuedAt: 1)
        let packed: Outbox = [a: first]
        var outbox = packed
        outbox[a] = OutboxEntry(generation: 2, queuedAt: 2)
        outbox[b] = OutboxEntry(generation: 2, queuedAt: 2)
        outbox[b] = nil
        outbox[a] = first
        #expect(outbox.layerCount == 0 && outbox.count == 1)
        #expect(outbox == packed)
        #expect(outbox.changes(since: packed) == ([:], []))
    }

    @Test func outboxesEqualWhateverTheirPacking() throws {
        let entries = Dictionary(uniqueKeysWithValues: try (0..<10).map { (try name($0), OutboxEntry(generation: 3, queuedAt: 3)) })
        var layered = Outbox([:])
        for (name, entry) in entries { layered[name] = entry }
        #expect(layered == Outbox(entries))
        #expect(layered.changes(since: Outbox(entries)) == ([:], []))
        var other = layered
        other[try name(0)] = OutboxEntry(generation: 4, queuedAt: 4)
        #expect(other != Outbox(entries))
        #expect(other.changes(since: Outbox(entries)).set == [try name(0): OutboxEntry(generation: 4, queuedAt: 4)])
    }

    /// With a mirror away and every name queued, a put's commit logs only
    /// the name it changed, and a reopen rebuilds the same outbox.
    @Test func aCommitWithAFullOutboxLogsOnlyWhatItChanged() throws {
        let fixture = SecretStoreTests()
        let authenticator = try fixture.authenticator()
        let dir = try TemporaryDirectory()
        let store = try SecretStore.open(directory: dir.path, authenticator: authenticator)
        store.keepsOutbox = true
        for i in 0..<200 { try fixture.put("app/s\(i)", in: store) }
        try store.queueEverything()
        let before = store.snapshot
        try fixture.put("app/s7", in: store)
        let entry = StoreLogFormat.entry(from: before, to: store.snapshot, edits: EditedSecrets(before.secrets))
        #expect(Array(entry.outbox.keys) == [try name(7)] && entry.outboxRemoved.isEmpty)
        #expect(store.snapshot.outbox.count == 200)
        let reopened = try SecretStore.open(directory: dir.path, authenticator: authenticator)
        #expect(reopened.snapshot.outbox == store.snapshot.outbox)
        #expect(reopened.snapshot.outbox[try name(7)]?.generation == store.snapshot.generation)
    }
}
