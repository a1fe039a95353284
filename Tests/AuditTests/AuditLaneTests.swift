@testable import Audit
import Foundation
import Model
import Synchronization
import Testing

/// The chain's lanes: one sequence per event loop, each verified on its own,
/// so that the loops never wait for one another (docs/audit.md, "Lanes").
@Suite struct AuditLaneTests {
    func verify(_ events: [[(String, String)]], expectLast: [UInt64]? = nil) -> AuditChainVerifier.Report {
        var verifier = AuditChainVerifier { keyID, data in keyID == "k1" ? testMAC(data) : nil }
        for event in events { verifier.add(event) }
        return verifier.finish(expectLast: expectLast)
    }

    func events(_ count: Int, lane: Int) -> [[(String, String)]] {
        var chain = AuditChain(lane: lane)
        return (0..<count).map { i in
            chain.extend(AuditEvent(kind: .get, result: .ok, secret: "l\(lane)-\(i)").fields, chainID: "store", keyID: "k1",
                         timeMicroseconds: 1_000 + UInt64(i), mac: testMAC)
        }
    }

    /// Two lanes' events, interleaved as the journal may receive them.
    func interleaved(_ a: [[(String, String)]], _ b: [[(String, String)]]) -> [[(String, String)]] {
        var out: [[(String, String)]] = []
        for i in 0..<max(a.count, b.count) {
            if i < b.count { out.append(b[i]) }
            if i < a.count { out.append(a[i]) }
        }
        return out
    }

    @Test func lanesInterleavedInTheJournalVerifyEachOnItsOwn() {
        let report = verify(interleaved(events(4, lane: 1), events(3, lane: 2)), expectLast: [0, 4, 3])
        #expect(report.isIntact, "\(report)")
        #expect(report.checked == 7)
        #expect(report.lanes == [.init(lane: 1, first: 1, last: 4), .init(lane: 2, first: 1, last: 3)])
    }

    @Test func aMissingEventIsAGapInItsOwnLane() {
        var one = events(4, lane: 1)
        one.remove(at: 1)
        let report = verify(interleaved(one, events(3, lane: 2)))
        #expect(report.gaps == [.init(lane: 1, after: 1, missing: 1, reportedLost: false)])
        #expect(report.edits.isEmpty)
        #expect(!report.isIntact)
    }

    @Test func anEventMovedToAnotherLaneIsAnEdit() {
        var two = events(3, lane: 2)
        // Claimed for lane 1 at the number lane 1 would use next: the lane
        // field is covered by the MACs.
        two[2] = two[2].map { $0.0 == AuditChain.fieldLane ? ($0.0, "1") : $0 }.map { $0.0 == "COFFER_SEQ" ? ($0.0, "3") : $0 }
        let report = verify(events(2, lane: 1) + two)
        #expect(report.edits.contains(.init(lane: 1, sequence: 3)))
        #expect(!report.isIntact)
    }

    /// Events as cofferd wrote them before lanes: the same chain, without
    /// the lane field.
    func eventsWithoutALane(_ count: Int) -> (events: [[(String, String)]], state: AuditChain) {
        var state = AuditChain()
        let list = (0..<count).map { i in
            var all = AuditEvent(kind: .put, result: .ok, secret: "old\(i)").fields
            all += [(AuditChain.fieldSequence, String(state.sequence + 1)), (AuditChain.fieldTime, "5"),
                    (AuditChain.fieldChainID, "store"), (AuditChain.fieldKeyID, "k1")]
            let covered = AuditChain.canonical(all)
            let next = testMAC(AuditChain.chainInput(previous: state.chain, covered))
            all += [(AuditChain.fieldMAC, Hex.encode(testMAC(AuditChain.eventInput(covered)))), (AuditChain.fieldChain, Hex.encode(next))]
            state = AuditChain(sequence: state.sequence + 1, chain: next)
            return all
        }
        return (list, state)
    }

    @Test func eventsFromBeforeLanesAreLaneZeroAndTheChainCarriesOnFromThem() {
        var (old, state) = eventsWithoutALane(3)
        let newer = (0..<2).map { _ in
            state.extend(AuditEvent(kind: .get, result: .ok).fields, chainID: "store", keyID: "k1", timeMicroseconds: 9, mac: testMAC)
        }
        #expect(newer[0].contains { $0 == (AuditChain.fieldLane, "0") })
        let report = verify(old + newer, expectLast: [5])
        #expect(report.isIntact, "\(report)")
        #expect(report.lanes == [.init(lane: 0, first: 1, last: 5)])
        // Adding a lane field to an old event is an edit.
        old[1].append((AuditChain.fieldLane, "0"))
        #expect(verify(old).edits(inLane: 0) == [2])
    }

    @Test func theEndOfEveryLaneIsChecked() {
        let report = verify(interleaved(events(3, lane: 1), events(3, lane: 2)), expectLast: [0, 3, 5])
        #expect(report.lanes.first { $0.lane == 2 }?.missingAtEnd == 2)
        #expect(report.missingAtEnd == 2)
        #expect(!report.isIntact)
        // A lane none of whose events is found is missing all of them.
        #expect(verify(events(3, lane: 1), expectLast: [0, 3, 4]).missingAtEnd == 4)
    }

    @Test func eachEventLoopStampsInItsOwnLaneAndTheLanesNeverShareANumber() throws {
        let chainer = try AuditChainer(chainID: "store", keyID: "k1", statePath: nil, lanes: 3, mac: testMAC)
        let journal = Mutex<[[(String, String)]]>([])
        let perThread = 200
        // Two "event loops" with lanes 1 and 2, and two other threads that
        // share lane 0, all at once.
        let done = DispatchGroup()
        for index in 0..<4 {
            done.enter()
            Thread.detachNewThread {
                if index < 2 { AuditLane.claim(index + 1) }
                for i in 0..<perThread {
                    try? chainer.stamp(AuditEvent(kind: .get, result: .ok, secret: "t\(index)-\(i)").fields) {
                        (fields) throws(AuditError) in journal.withLock { $0.append(fields) }
                    }
                }
                done.leave()
            }
        }
        #expect(done.wait(timeout: .now() + 60) == .success, "the stamping threads did not finish")
        #expect(chainer.sequences == [UInt64(2 * perThread), UInt64(perThread), UInt64(perThread)])
        let sent = journal.withLock { $0 }
        let report = verify(sent, expectLast: chainer.sequences)
        #expect(report.isIntact, "\(report)")
        #expect(report.checked == 4 * perThread)
        // Within a lane the journal got the events in sequence order.
        for lane in 0..<3 {
            let numbers = sent.filter { $0.contains { $0 == (AuditChain.fieldLane, String(lane)) } }
                .compactMap { $0.first { $0.0 == AuditChain.fieldSequence }.flatMap { UInt64($0.1) } }
            #expect(numbers == Array(1...UInt64(lane == 0 ? 2 * perThread : perThread)))
        }
    }

    @Test func everyLaneCarriesOnAfterARestartAndAnOldStateFileIsLaneZero() throws {
        let path = NSTemporaryDirectory() + "/chain-lanes-\(UUID().uuidString)"
        defer { unlink(path) }
        // A state file from before lanes: one line, lane 0 at seq 7.
        var old = AuditChain(sequence: 7, chain: [UInt8](repeating: 0xab, count: 32))
        old.lane = 0
        do {
            let file = try ChainStateFile(path: path, lanes: 1)
            file.write(old)
        }
        let first = try AuditChainer(chainID: "s", keyID: "k1", statePath: path, lanes: 3, mac: testMAC)
        #expect(first.sequences == [7, 0, 0])
        for lane in [1, 2, 2] {
            let done = DispatchSemaphore(value: 0)
            Thread.detachNewThread {
                AuditLane.claim(lane)
                try? first.stamp([]) { (_) throws(AuditError) in }
                done.signal()
            }
            done.wait()
        }
        try first.stamp([]) { (_) throws(AuditError) in }
        #expect(first.sequences == [8, 1, 2])
        // Fewer loops after the restart: the third lane's state is kept, so
        // its end is still checked.
        let second = try AuditChainer(chainID: "s", keyID: "k1", statePath: path, lanes: 2, mac: testMAC)
        #expect(second.sequences == [8, 1, 2])
    }

    @Test func aThreadOutsideTheLanesStampsInLaneZero() throws {
        let chainer = try AuditChainer(chainID: "s", keyID: "k1", statePath: nil, lanes: 2, mac: testMAC)
        let done = DispatchSemaphore(value: 0)
        Thread.detachNewThread {
            AuditLane.claim(5)
            try? chainer.stamp([]) { (_) throws(AuditError) in }
            done.signal()
        }
        done.wait()
        #expect(chainer.sequences == [1, 0])
    }

    @Test func resumingTakesEachLaneFromItsOwnNewestEvent() throws {
        let chainer = try AuditChainer(chainID: "store", keyID: "k1", statePath: nil, lanes: 3, mac: testMAC)
        let two = events(5, lane: 2)
        #expect(chainer.resume(fromJournal: two[4]))
        #expect(chainer.sequences == [0, 0, 5])
        #expect(!chainer.resume(fromJournal: two[2]), "an older event never moves a lane back")
        var moved = two[4]
        moved = moved.map { $0.0 == AuditChain.fieldLane ? ($0.0, "1") : $0 }
        #expect(!chainer.resume(fromJournal: moved), "an event claimed for another lane fails its MAC")
    }
}

@Suite struct AuditLaneLossTests {
    @Test func aQuietLanesLossesAreReportedByTheNextEventInAnyLane() throws {
        let chainer = try AuditChainer(chainID: "store", keyID: "k1", statePath: nil, lanes: 3, mac: testMAC)
        let journal = Mutex<[[(String, String)]]>([])
        let down = Atomic<Bool>(false)
        func send(onLane lane: Int) {
            let done = DispatchSemaphore(value: 0)
            Thread.detachNewThread {
                AuditLane.claim(lane)
                try? chainer.stamp(AuditEvent(kind: .get, result: .ok).fields) { (fields) throws(AuditError) in
                    if down.load(ordering: .relaxed) { throw AuditError("down") }
                    journal.withLock { $0.append(fields) }
                }
                done.signal()
            }
            done.wait()
        }
        send(onLane: 2)
        send(onLane: 1)
        down.store(true, ordering: .relaxed)
        send(onLane: 2)
        send(onLane: 2)
        send(onLane: 1)
        down.store(false, ordering: .relaxed)
        // Lane 2 stays quiet; lane 1 tells of both lanes' losses.
        send(onLane: 1)
        let sent = journal.withLock { $0 }
        let reports = sent.filter { $0.contains { $0 == ("COFFER_EVENT", "audit_lost") } }
        #expect(reports.count == 2)
        #expect(reports.allSatisfy { $0.contains { $0 == (AuditChain.fieldLane, "1") } })
        #expect(reports.contains { $0.contains { $0 == ("COFFER_LOST_LANE", "2") } && $0.contains { $0 == ("COFFER_LOST", "2-3") } })
        var verifier = AuditChainVerifier { keyID, data in keyID == "k1" ? testMAC(data) : nil }
        for event in sent { verifier.add(event) }
        let report = verifier.finish(expectLast: chainer.sequences)
        #expect(report.gaps == [.init(lane: 1, after: 1, missing: 1, reportedLost: true)])
        let two = report.lanes.first { $0.lane == 2 }
        #expect(two?.missingAtEnd == 2 && two?.missingAtEndReportedLost == true)
        #expect(!report.isIntact, "lost events are still not in the journal")
    }
}

@Suite struct ChainStateFileTests {
    @Test func aLineAKillCutShortIsNotReadAndItsLaneCarriesOnFromTheJournal() throws {
        let path = NSTemporaryDirectory() + "/chain-torn-\(UUID().uuidString)"
        defer { unlink(path) }
        do {
            let file = try ChainStateFile(path: path, lanes: 3)
            file.write(AuditChain(lane: 0, sequence: 4, chain: [UInt8](repeating: 1, count: 32)))
            file.write(AuditChain(lane: 1, sequence: 9, chain: [UInt8](repeating: 2, count: 32)))
            file.write(AuditChain(lane: 2, sequence: 2, chain: [UInt8](repeating: 3, count: 32)))
        }
        // Lane 1's line as a kill -9 leaves it midway through a rewrite:
        // new digits in front, its newline not yet back.
        var bytes = Array(try Data(contentsOf: URL(fileURLWithPath: path)))
        bytes.replaceSubrange(86..<(86 + 20), with: Array("00000000000000000010".utf8))
        bytes[86 + 85] = UInt8(ascii: "-")
        try Data(bytes).write(to: URL(fileURLWithPath: path))

        let chainer = try AuditChainer(chainID: "store", keyID: "k1", statePath: path, lanes: 3, mac: testMAC)
        #expect(chainer.sequences == [4, 0, 2], "the torn line is not read; the others are")
        var lane = AuditChain(lane: 1)
        let journal = (0..<10).map { _ in
            lane.extend(AuditEvent(kind: .get, result: .ok).fields, chainID: "store", keyID: "k1", timeMicroseconds: 1, mac: testMAC)
        }
        #expect(chainer.resume(fromJournal: journal[9]))
        #expect(chainer.sequences == [4, 10, 2])
    }

    @Test func aLineIsWholeAfterEveryWrite() throws {
        let path = NSTemporaryDirectory() + "/chain-whole-\(UUID().uuidString)"
        defer { unlink(path) }
        let file = try ChainStateFile(path: path, lanes: 2)
        file.write(AuditChain(lane: 1, sequence: 12_345, chain: [UInt8](repeating: 0xab, count: 32)))
        let text = try String(contentsOfFile: path, encoding: .utf8)
        #expect(text.utf8.count == 2 * 86)
        #expect(text.hasSuffix("00000000000000012345 " + String(repeating: "ab", count: 32) + "\n"))
    }
}
