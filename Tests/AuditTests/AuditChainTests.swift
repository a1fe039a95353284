@testable import Audit
import Foundation
import Model
import Synchronization
import Testing

/// A stand-in MAC with the same shape (32 bytes, depends on every input
/// byte); the real HMAC is exercised end to end against journald.
func testMAC(_ data: [UInt8]) -> [UInt8] {
    var state = [UInt8](repeating: 0x5a, count: 32)
    for (i, b) in data.enumerated() {
        state[i % 32] = state[i % 32] &* 31 &+ b &+ UInt8(truncatingIfNeeded: i)
        state[(i + 7) % 32] ^= state[i % 32]
    }
    return state
}

@Suite struct AuditChainTests {
    func verify(_ events: [[(String, String)]]) -> AuditChainVerifier.Report {
        AuditChainVerifier.verify(events) { keyID, data in keyID == "k1" ? testMAC(data) : nil }
    }

    func events(_ count: Int, lane: Int = 0) -> [[(String, String)]] {
        var chain = AuditChain(lane: lane)
        return (0..<count).map { i in
            let event = AuditEvent(kind: .get, result: .ok, secret: "s\(i)", peer: PeerIdentity(uid: 1, gid: 1, pid: 2))
            // The journal adds its own `_` fields: they are not covered.
            return chain.extend(event.fields, chainID: "store", keyID: "k1", timeMicroseconds: 1_000 + UInt64(i), mac: testMAC)
                + [("_PID", "99")]
        }
    }

    @Test func anIntactChainVerifies() {
        let report = verify(events(5))
        #expect(report.isIntact)
        #expect(report.checked == 5)
        #expect(report.lanes == [.init(lane: 0, first: 1, last: 5)])
    }

    @Test func aMissingEventIsAGap() {
        var list = events(6)
        list.removeSubrange(2...3)
        let report = verify(list)
        #expect(report.gaps.count == 1)
        #expect(report.gaps.first?.after == 2 && report.gaps.first?.missing == 2)
        #expect(report.gaps.first?.reportedLost == false)
        #expect(report.edits.isEmpty)
    }

    @Test func anEditNextToAGapIsStillAnEdit() {
        var list = events(6)
        list.remove(at: 2)
        list[2] = list[2].map { $0.0 == "COFFER_PEER_UID" ? ($0.0, "0") : $0 }
        let report = verify(list)
        #expect(report.gaps.count == 1)
        #expect(report.edits(inLane: 0) == [4], "the event after the gap is checked by its own MAC")
    }

    @Test func theFirstEventOfAWindowIsChecked() {
        var list = Array(events(5).dropFirst(2))
        list[0] = list[0].map { $0.0 == "COFFER_SECRET" ? ($0.0, "elsewhere") : $0 }
        #expect(verify(list).edits(inLane: 0) == [3])
    }

    @Test func aTimeShiftIsAnEdit() {
        var list = events(3)
        list[1] = list[1].map { $0.0 == "COFFER_TIME_USEC" ? ($0.0, "1") : $0 }
        #expect(verify(list).edits(inLane: 0) == [2])
    }

    @Test func lostEventsReportedByCofferdAreToldApart() throws {
        let chainer = try AuditChainer(chainID: "s", keyID: "k1", statePath: nil, mac: testMAC)
        var journal: [[(String, String)]] = []
        var down = false
        func send(_ event: AuditEvent) {
            try? chainer.stamp(event.fields) { (f) throws(AuditError) in
                if down { throw AuditError("down") }
                journal.append(f)
            }
        }
        send(AuditEvent(kind: .put, result: .ok))
        down = true
        send(AuditEvent(kind: .put, result: .ok))
        send(AuditEvent(kind: .denied, result: .denied))
        down = false
        send(AuditEvent(kind: .get, result: .ok))
        #expect(journal.contains { $0.contains { $0 == ("COFFER_LOST", "2-3") } })
        let report = verify(journal)
        #expect(report.gaps.count == 1)
        #expect(report.gaps.first?.reportedLost == true)
        #expect(!report.isIntact)
    }

    @Test func resumingFromTheJournalNeverReusesANumber() throws {
        let list = events(4)
        let chainer = try AuditChainer(chainID: "store", keyID: "k1", statePath: nil, mac: testMAC)
        #expect(chainer.resume(fromJournal: list[3]))
        var next: [(String, String)] = []
        try chainer.stamp(AuditEvent(kind: .list, result: .ok).fields) { (f) throws(AuditError) in next = f }
        #expect(verify(list + [next]).isIntact)
        var forged = list[3]
        forged = forged.map { $0.0 == "COFFER_SEQ" ? ($0.0, "99") : $0 }
        #expect(!chainer.resume(fromJournal: forged), "an event whose MAC fails is not followed")
    }

    @Test func theEndIsCheckedAgainstWhatCofferdSent() {
        var verifier = AuditChainVerifier { _, data in testMAC(data) }
        for event in events(3) { verifier.add(event) }
        #expect(verifier.finish(expectLast: [5]).missingAtEnd == 2)
        #expect(verifier.finish(expectLast: [3]).isIntact)
    }

    @Test func anEditedFieldBreaksTheChain() {
        var list = events(4)
        list[2] = list[2].map { $0.0 == "COFFER_SECRET" ? ($0.0, "other") : $0 }
        #expect(verify(list).edits(inLane: 0) == [3])
    }

    @Test func aSwappedPairIsCaught() {
        var list = events(4)
        list.swapAt(1, 2)
        #expect(!verify(list).isIntact)
    }

    @Test func aLostStateShowsAsARestart() {
        let report = verify(events(3) + events(2))
        #expect(report.restarts == [.init(lane: 0, sequence: 1)])
        #expect(!report.isIntact)
    }

    @Test func theChainStatePersistsAcrossRestarts() throws {
        let path = NSTemporaryDirectory() + "/chain-\(UUID().uuidString)"
        defer { unlink(path) }
        let first = try AuditChainer(chainID: "s", keyID: "k1", statePath: path, mac: testMAC)
        var sent: [[(String, String)]] = []
        for _ in 0..<3 {
            try first.stamp(AuditEvent(kind: .list, result: .ok).fields) { (f) throws(AuditError) in sent.append(f) }
        }
        let second = try AuditChainer(chainID: "s", keyID: "k1", statePath: path, mac: testMAC)
        #expect(second.sequences == [3])
        try second.stamp(AuditEvent(kind: .list, result: .ok).fields) { (f) throws(AuditError) in sent.append(f) }
        #expect(verify(sent).isIntact)
        let info = try FileManager.default.attributesOfItem(atPath: path)
        #expect(info[.posixPermissions] as? Int == 0o600)
    }

    @Test func aFailedSendStillSpendsItsNumber() throws {
        let chainer = try AuditChainer(chainID: "s", keyID: "k1", statePath: nil, mac: testMAC)
        #expect(throws: AuditError.self) {
            try chainer.stamp([]) { (_) throws(AuditError) in throw AuditError("journal down") }
        }
        #expect(chainer.sequences == [1])
    }
}

@Suite struct AuditCoalescingTests {
    let reader = PeerIdentity(uid: 7, gid: 7, pid: 70)
    func get(_ secret: String = "db", result: AuditResult = .ok, kind: AuditEventKind = .get) -> AuditEvent {
        AuditEvent(kind: kind, result: result, secret: secret, peer: reader)
    }

    /// As the sink does: admit, and when told to record, record.
    func admit(_ state: inout AuditCoalescing, _ event: AuditEvent, now: UInt64) -> AuditCoalescing.Decision {
        let decision = state.admit(event, now: now)
        if decision == .record { state.recorded(event, now: now) }
        return decision
    }

    @Test func repeatsInAWindowBecomeOneSummary() {
        var state = AuditCoalescing(windowMilliseconds: 1000)
        #expect(admit(&state, get(), now: 0) == .record)
        #expect(state.admit(get(), now: 10) == .absorbed)
        #expect(state.admit(get(), now: 999) == .absorbed)
        #expect(state.due(now: 500).isEmpty)
        let summaries = state.due(now: 1000)
        #expect(summaries.count == 1)
        #expect(summaries.first?.count == 2)
        #expect(summaries.first?.fields.contains { $0 == ("COFFER_COUNT", "2") } == true)
        #expect(admit(&state, get(), now: 1001) == .record, "a new window starts")
    }

    @Test func aReadWhoseEventFailedOpensNoWindow() {
        var state = AuditCoalescing(windowMilliseconds: 1000)
        #expect(state.admit(get(), now: 0) == .record)
        // (its event could not be written: `recorded` is not called)
        #expect(state.admit(get(), now: 1) == .record, "the next read is audited, not absorbed")
    }

    @Test func denialsFailuresAndWritesAreNeverCoalesced() {
        var state = AuditCoalescing(windowMilliseconds: 1000)
        for _ in 0..<3 {
            #expect(state.admit(get(result: .denied, kind: .denied), now: 1) == .record)
            #expect(state.admit(get(result: .notFound), now: 1) == .record)
            #expect(state.admit(get(kind: .put), now: 1) == .record)
        }
    }

    @Test func differentSecretsOrCallersHaveTheirOwnWindows() {
        var state = AuditCoalescing(windowMilliseconds: 1000)
        #expect(state.admit(get("a"), now: 0) == .record)
        #expect(state.admit(get("b"), now: 0) == .record)
        var other = get("a")
        other.peer = PeerIdentity(uid: 8, gid: 8, pid: 80)
        #expect(state.admit(other, now: 0) == .record)
    }

    @Test func shutdownDrainsWhatIsOwed() {
        var state = AuditCoalescing(windowMilliseconds: 60_000)
        _ = admit(&state, get(), now: 0)
        _ = admit(&state, get(), now: 1)
        #expect(state.drain().first?.count == 1)
    }
}

/// The sink around AuditCoalescing: an absorbed read sends nothing, so it
/// must ask the inner sink whether an event would still arrive.
@Suite struct CoalescingSinkTests {
    final class Inner: AuditSink {
        let sent = Mutex(0)
        let gone = Mutex(false)
        var name: String { "inner" }
        func record(_ event: AuditEvent) throws(AuditError) {
            if gone.withLock({ $0 }) { throw AuditError("gone") }
            sent.withLock { $0 += 1 }
        }
        func checkDelivery() throws(AuditError) {
            if gone.withLock({ $0 }) { throw AuditError("gone") }
        }
    }

    @Test func anAbsorbedReadFailsClosedWhenTheJournalIsGone() throws {
        let inner = Inner()
        let sink = CoalescingAuditSink(inner: inner, windowSeconds: 60)
        let read = AuditEvent(kind: .get, result: .ok, secret: "s", peer: PeerIdentity(uid: 7, gid: 7, pid: 70))
        try sink.record(read)
        try sink.record(read)
        #expect(inner.sent.withLock { $0 } == 1, "the repeat was absorbed")
        inner.gone.withLock { $0 = true }
        #expect(throws: AuditError.self) { try sink.record(read) }
    }
}

@Suite struct CatalogTests {
    @Test func everyEventTypeHasACatalogEntry() throws {
        let catalog = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .deletingLastPathComponent().appendingPathComponent("systemd/coffer.catalog")
        let text = try String(contentsOf: catalog, encoding: .utf8)
        for kind in AuditEventKind.allCases {
            #expect(text.contains("-- \(kind.messageID)\n"), "no catalog entry for \(kind.rawValue)")
        }
    }
}

/// A master-key rotation moves the chain to the new key's MAC mid-lane:
/// what the old key stamped still checks with the key the chain keeps.
@Suite struct AuditChainKeyTests {
    static func mac(_ seed: UInt8) -> AuditChainKeys.MAC {
        { data in testMAC(data + [seed]) }
    }

    @Test func eventsOnEitherSideOfARekeyVerify() throws {
        let keys = AuditChainKeys(keyID: "old", mac: Self.mac(1))
        let chainer = try AuditChainer(chainID: "s", keys: keys, statePath: nil)
        var journal: [[(String, String)]] = []
        func send(_ kind: AuditEventKind) throws {
            try chainer.stamp(AuditEvent(kind: kind, result: .ok).fields) { (f) throws(AuditError) in journal.append(f) }
        }
        try send(.put)
        try send(.get)
        keys.stampWith(keyID: "new", mac: Self.mac(2))
        try send(.get)
        #expect(journal.map { Dictionary($0, uniquingKeysWith: { a, _ in a })["COFFER_CHAIN_KEY_ID"] } == ["old", "old", "new"])
        var verifier = AuditChainVerifier { keyID, data in try? keys.mac(forKeyID: keyID)?(data) }
        for event in journal { verifier.add(event) }
        #expect(verifier.finish(expectLast: [3]).isIntact)
        var withoutOld = AuditChainVerifier { keyID, data in keyID == "new" ? try? Self.mac(2)(data) : nil }
        for event in journal { withoutOld.add(event) }
        #expect(!withoutOld.finish(expectLast: [3]).isIntact, "without the old key, its events do not check")
        #expect(chainer.resume(fromJournal: journal[1]) == false, "an authentic event behind the chain is not followed")
    }

    /// Whoever holds a retired key (the reason it was rotated) makes events
    /// that link and MAC correctly under it, after the rotation: each lane
    /// accepts the old key only up to the number it had reached when the
    /// keys switched, so every such event is an edit: appended to a lane,
    /// put in place of the new key's events, in a lane that had stamped
    /// nothing, in a lane of its own.
    @Test func aRetiredKeysEventsAfterTheRotationAreEdits() throws {
        let keys = AuditChainKeys(keyID: "old", mac: Self.mac(1))
        let chainer = try AuditChainer(chainID: "s", keys: keys, statePath: nil, lanes: 2)
        var journal: [[(String, String)]] = []
        func send(_ kind: AuditEventKind) throws {
            try chainer.stamp(AuditEvent(kind: kind, result: .ok).fields) { (f) throws(AuditError) in journal.append(f) }
        }
        /// What the holder of the old key can make: the next event of a
        /// lane, linked to its last event in the journal (whose chain value
        /// is a journal field), or the first of a lane, MAC'd under the old key.
        func forged(after last: [(String, String)]?, lane: Int = 0) throws -> [(String, String)] {
            var chain = AuditChain(lane: lane)
            if let last {
                let map = Dictionary(last, uniquingKeysWith: { a, _ in a })
                chain = AuditChain(lane: lane, sequence: UInt64(map["COFFER_SEQ"]!)!, chain: Hex.decode(map["COFFER_CHAIN"]!)!)
            }
            let event = AuditEvent(kind: .get, result: .ok, secret: "db/password", peer: PeerIdentity(uid: 0, gid: 0, pid: 1))
            return try chain.extend(event.fields, chainID: "s", keyID: "old", timeMicroseconds: 5, mac: Self.mac(1))
        }
        try send(.put)
        keys.stampWith(keyID: "new", mac: Self.mac(2))
        #expect(keys.retiredAt(keyID: "old") == [0: 1, 1: 0], "each lane's last number under the old key")
        #expect(keys.retiredAt(keyID: "new") == nil)
        try send(.get)
        try send(.list)
        func verify(_ events: [[(String, String)]], cutoffs: Bool = true) -> AuditChainVerifier.Report {
            var verifier = AuditChainVerifier(mac: { keyID, data in try? keys.mac(forKeyID: keyID)?(data) },
                                              retiredAt: { cutoffs ? keys.retiredAt(keyID: $0) : nil })
            for event in events { verifier.add(event) }
            return verifier.finish()
        }
        #expect(verify(journal).isIntact)
        #expect(verify(journal + [try forged(after: journal[2])]).edits(inLane: 0) == [4], "appended")
        #expect(verify([journal[0], journal[1], try forged(after: journal[1])]).edits(inLane: 0) == [3], "in place of the third")
        let continued = try forged(after: journal[0])
        #expect(verify([journal[0], continued, try forged(after: continued)]).edits(inLane: 0) == [2, 3],
                "the new key's events taken out and the old key's put in their place")
        #expect(verify(journal + [try forged(after: nil, lane: 1)]).edits(inLane: 1) == [1], "in a lane that had stamped nothing")
        #expect(verify(journal + [try forged(after: nil, lane: 7)]).edits(inLane: 7) == [1], "in a lane of its own")
        #expect(verify(journal + [try forged(after: journal[2])], cutoffs: false).isIntact, "what the numbers add")

        // A rotation back to the old key makes it current again: it stamps,
        // unbounded, and what the new key stamped stays bounded.
        keys.stampWith(keyID: "old", mac: Self.mac(1))
        #expect(keys.retiredAt(keyID: "old") == nil)
        #expect(keys.retiredAt(keyID: "new") == [0: 3, 1: 0])
        try send(.get)
        try send(.list)
        #expect(verify(journal).isIntact)
    }

    /// Lanes stamping on their own threads while the keys switch: every
    /// event stamped under the old key is numbered at or below its lane's
    /// number at the switch, so a chain made during a rotation verifies.
    @Test func aRotationWhileEveryLaneStampsLeavesTheChainIntact() throws {
        let keys = AuditChainKeys(keyID: "old", mac: Self.mac(1))
        let chainer = try AuditChainer(chainID: "s", keys: keys, statePath: nil, lanes: 3)
        let journal = Mutex<[[(String, String)]]>([])
        final class Flag: Sendable { let stop = Atomic<Bool>(false) }
        let flag = Flag()
        let group = DispatchGroup()
        for lane in 0..<3 {
            group.enter()
            Thread.detachNewThread {
                AuditLane.claim(lane)
                while !flag.stop.load(ordering: .acquiring) {
                    try? chainer.stamp(AuditEvent(kind: .get, result: .ok).fields) { (f) throws(AuditError) in
                        journal.withLock { $0.append(f) }
                    }
                }
                group.leave()
            }
        }
        /// Waits (bounded) until every lane has stamped past `floor`.
        func awaitEveryLane(past floor: [UInt64]) {
            let deadline = ContinuousClock.now + .seconds(60)
            while zip(chainer.sequences, floor).contains(where: { $0 <= $1 }), ContinuousClock.now < deadline {
                Thread.sleep(forTimeInterval: 0.001)
            }
        }
        awaitEveryLane(past: [200, 200, 200])
        keys.stampWith(keyID: "new", mac: Self.mac(2))
        let cutoffs = try #require(keys.retiredAt(keyID: "old"))
        awaitEveryLane(past: (0..<3).map { cutoffs[$0, default: 0] + 200 })
        flag.stop.store(true, ordering: .releasing)
        group.wait()
        #expect(cutoffs.count == 3 && cutoffs.values.allSatisfy { $0 > 200 }, "switched while every lane stamped")
        #expect(zip(chainer.sequences, (0..<3).map { cutoffs[$0]! }).allSatisfy { $0 > $1 + 200 }, "and every lane went on")
        var verifier = AuditChainVerifier(mac: { keyID, data in try? keys.mac(forKeyID: keyID)?(data) },
                                          retiredAt: { keys.retiredAt(keyID: $0) })
        let events = journal.withLock { $0 }
        for event in events { verifier.add(event) }
        let report = verifier.finish(expectLast: chainer.sequences)
        #expect(report.isIntact, "edits: \(report.edits.prefix(5))")
        #expect(report.checked == events.count)
        let keyed = events.map { Dictionary($0, uniquingKeysWith: { a, _ in a })["COFFER_CHAIN_KEY_ID"] }
        #expect(keyed.contains("old") && keyed.contains("new"))
    }

    /// Sequence numbers come from the journal before anything checks them:
    /// a forged UInt64.max, then any event, must be reported, not trap.
    @Test func aForgedLargestSequenceNumberIsAnEditNotACrash() {
        func forged(_ sequence: String) -> [(String, String)] {
            [("COFFER_CHAIN_ID", "s"), ("COFFER_LANE", "5"), ("COFFER_SEQ", sequence),
             ("COFFER_CHAIN", String(repeating: "00", count: 32)), ("COFFER_CHAIN_KEY_ID", "k1"),
             ("COFFER_MAC", String(repeating: "00", count: 32)), ("COFFER_EVENT", "get")]
        }
        let report = AuditChainVerifier.verify([forged(String(UInt64.max)), forged("7"), forged(String(UInt64.max))]) { keyID, data in
            keyID == "k1" ? testMAC(data) : nil
        }
        #expect(report.edits(inLane: 5) == [UInt64.max, 7, UInt64.max])
        #expect(report.checked == 3)
    }

    /// A journal forged with many bad entries: each is counted, but only
    /// the first thousand are listed, so neither the verifier nor the
    /// answer grows with them.
    @Test func forgedEntriesAreCountedAllButListedUpToALimit() {
        let forged: [[(String, String)]] = (1...1_500).map { i in
            [("COFFER_CHAIN_ID", "s"), ("COFFER_LANE", "3"), ("COFFER_SEQ", String(i)),
             ("COFFER_CHAIN", String(repeating: "00", count: 32)), ("COFFER_CHAIN_KEY_ID", "k1"),
             ("COFFER_MAC", String(repeating: "00", count: 32)), ("COFFER_EVENT", "get")]
        }
        let report = AuditChainVerifier.verify(forged) { keyID, data in keyID == "k1" ? testMAC(data) : nil }
        #expect(report.editCount == 1_500)
        #expect(report.edits.count == AuditChainVerifier.Report.listLimit)
        #expect(report.edits.first == .init(lane: 3, sequence: 1))
        #expect(!report.isIntact)
        #expect(report.checked == 1_500)

        // Each in a lane of its own: lanes past the limit are not followed.
        let lanes = AuditChainVerifier.Report.laneLimit + 500
        let spread: [[(String, String)]] = (0..<lanes).map { lane in
            [("COFFER_CHAIN_ID", "s"), ("COFFER_LANE", String(lane)), ("COFFER_SEQ", "1"),
             ("COFFER_CHAIN", String(repeating: "00", count: 32)), ("COFFER_CHAIN_KEY_ID", "k1"),
             ("COFFER_MAC", String(repeating: "00", count: 32)), ("COFFER_EVENT", "get")]
        }
        let wide = AuditChainVerifier.verify(spread) { keyID, data in keyID == "k1" ? testMAC(data) : nil }
        #expect(wide.lanes.count == AuditChainVerifier.Report.laneLimit)
        #expect(wide.malformed == 500 && wide.checked == AuditChainVerifier.Report.laneLimit)
        #expect(!wide.isIntact)
    }
}

@Suite struct SequenceRangesTests {
    @Test func numbersInOrderMakeOneRange() {
        var lost = SequenceRanges()
        for n in UInt64(5)...1_000_004 { lost.insert(n) }
        #expect(lost.ranges == [5...1_000_004])
        #expect(lost.text == "5-1000004")
        #expect(lost.contains(5...1_000_004))
        #expect(!lost.contains(4...6))
    }

    @Test func rangesMergeWhereTheyTouchWhateverTheOrder() {
        var lost = SequenceRanges()
        for range: ClosedRange<UInt64> in [20...22, 3...3, 9...12, 5...5, 4...4, 13...19, 30...30, 1...1] { lost.insert(range) }
        #expect(lost.ranges == [1...1, 3...5, 9...22, 30...30])
        #expect(lost.text == "1,3-5,9-22,30")
        lost.insert(0...40)
        #expect(lost.ranges == [0...40])
        var edge = SequenceRanges()
        edge.insert(UInt64.max)
        edge.insert(UInt64.max - 1)
        edge.insert(UInt64.max - 3...UInt64.max)
        #expect(edge.ranges == [UInt64.max - 3...UInt64.max])
        #expect(!edge.contains(UInt64.max - 4...UInt64.max))
    }

    @Test func theTextFormReadsBackAndSkipsWhatIsNotANumber() {
        let read = SequenceRanges(text: "3,5-9,x,12-10,-4,7-,18446744073709551615,20-25")
        #expect(read.ranges == [3...3, 5...9, 20...25, UInt64.max...UInt64.max])
        #expect(SequenceRanges(text: read.text) == read)
        #expect(SequenceRanges(text: "").isEmpty)
    }

    /// A stall that loses events in a row: the chainer keeps them as one
    /// range and reports them in one field.
    @Test func aStallsLossesAreReportedAsOneRange() throws {
        let chainer = try AuditChainer(chainID: "s", keyID: "k1", statePath: nil, mac: testMAC)
        var journal: [[(String, String)]] = []
        var down = false
        func send(_ kind: AuditEventKind) {
            try? chainer.stamp(AuditEvent(kind: kind, result: .ok).fields) { (f) throws(AuditError) in
                if down { throw AuditError("down") }
                journal.append(f)
            }
        }
        send(.put)
        down = true
        for _ in 0..<20_000 { send(.list) }
        down = false
        send(.get)
        #expect(journal.compactMap { Dictionary($0, uniquingKeysWith: { a, _ in a })["COFFER_LOST"] } == ["2-20001"])
        let verified = AuditChainVerifier.verify(journal) { keyID, data in keyID == "k1" ? testMAC(data) : nil }
        #expect(verified.gaps == [.init(lane: 0, after: 1, missing: 20_000, reportedLost: true)])
    }

    /// The report of a stall longer than a million events (an hour at a few
    /// hundred events a second) is matched to its gap whole.
    @Test func aReportedRangeOfMoreThanAMillionMatchesItsGap() {
        var chain = AuditChain(lane: 0)
        func stamped(_ event: AuditEvent) -> [(String, String)] {
            chain.extend(event.fields, chainID: "s", keyID: "k1", timeMicroseconds: 1, mac: testMAC)
        }
        let first = stamped(AuditEvent(kind: .put, result: .ok))
        chain = AuditChain(lane: 0, sequence: 1_200_001, chain: testMAC([1]))
        let after = stamped(AuditEvent(kind: .get, result: .ok))
        var lost = AuditEvent(kind: .auditLost, result: .error, reason: "journal unreachable")
        lost.lost = "2-1200001"
        lost.lostLane = 0
        let report = AuditChainVerifier.verify([first, after, stamped(lost)]) { keyID, data in keyID == "k1" ? testMAC(data) : nil }
        #expect(report.gaps == [.init(lane: 0, after: 1, missing: 1_200_000, reportedLost: true)])
        #expect(report.edits.isEmpty)
    }
}
