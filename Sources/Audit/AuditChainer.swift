import Model
import Synchronization
import Syscalls
#if canImport(Glibc)
import Glibc
#endif

/// Stamps events with the chain fields and keeps the chain's state in a
/// small file in the state directory, so that it carries on across restarts
/// (docs/audit.md).
///
/// The chain has lanes: each event loop stamps in a lane of its own
/// (AuditLane), with its own sequence, chain value and lost numbers, so the
/// loops never wait for one another to send an event. Within a lane the
/// journal receives events in sequence order: the lane's lock is held
/// across the send. Every other thread shares lane 0.
///
/// The state is one fixed-width line per lane, rewritten in place after
/// every event without fsync: it survives kill -9 (the page cache does).
/// After a power loss the file may be behind the journal; `resume` then
/// continues each lane from the journal's last authentic event of that lane
/// rather than reusing numbers.
///
/// Events that could not be sent still spend their numbers; the lane's
/// first event sent after them is followed by an `audit_lost` event listing
/// them, so `--verify` can tell an outage cofferd saw from a removal it did
/// not.
public final class AuditChainer: Sendable {
    public let chainID: String
    /// What new events are stamped with, and what checks the events of
    /// keys a rotation retired.
    public let keys: AuditChainKeys
    /// One lock per lane, held across that lane's journal send: a plain
    /// mutex, not a priority-inheritance one (PlainMutex says why). An event
    /// loop's lane is taken by that loop only, so its lock is uncontended.
    private let lanes: [PlainMutex<State>]
    private let file: ChainStateFile?
    /// Numbers spent on events that could not be sent, by lane, until an
    /// `audit_lost` event in any lane reports them: a lane whose thread goes
    /// quiet would otherwise never tell of its losses. Taken only while a
    /// lane's lock is held, never the other way round.
    /// Kept as ranges (SequenceRanges): a long stall costs one each.
    private let unreported = PlainMutex<[Int: SequenceRanges]>([:])
    /// Whether `unreported` holds anything: the one check every event makes.
    private let anyUnreported = Atomic<Bool>(false)

    struct State {
        var chain: AuditChain
    }

    /// `statePath` nil keeps the chain in memory only (tests). `lanes`: how
    /// many lanes events may be stamped in (one per event loop, plus lane 0);
    /// a state file from a run with more keeps those too, so that their ends
    /// are still checked.
    public init(
        chainID: String, keys: AuditChainKeys, statePath: String?, lanes laneCount: Int = 1
    ) throws {
        precondition(laneCount >= 1)
        self.chainID = chainID
        self.keys = keys
        var saved: [AuditChain?] = []
        if let statePath {
            let opened = try ChainStateFile(path: statePath, lanes: laneCount)
            saved = opened.saved
            file = opened
        } else {
            file = nil
        }
        lanes = (0..<max(laneCount, saved.count)).map { lane in
            PlainMutex(State(chain: (lane < saved.count ? saved[lane] : nil) ?? AuditChain(lane: lane)))
        }
        keys.holdLanes { [lanes] body in Self.holdingEveryLane(lanes, from: 0, [:], body) }
    }

    /// Runs `body` holding every lane's lock, given each lane's last
    /// number: a key switch made inside it falls between two numbers of
    /// every lane. Only this takes more than one lane's lock, and always in
    /// lane order, so it cannot deadlock; a stamp holds one lane's lock
    /// and then at most the keys' mutex. While it waits for a lane whose
    /// send is under way (bounded by the journal's send timeout), the lanes
    /// before it wait too.
    private static func holdingEveryLane(
        _ lanes: [PlainMutex<State>], from index: Int, _ sequences: [Int: UInt64], _ body: ([Int: UInt64]) -> Void
    ) {
        guard index < lanes.count else { return body(sequences) }
        lanes[index].withLock { s in
            var sequences = sequences
            sequences[index] = s.chain.sequence
            holdingEveryLane(lanes, from: index + 1, sequences, body)
        }
    }

    /// A chain stamped with `mac`, the key of master key `keyID`.
    public convenience init(
        chainID: String, keyID: String, statePath: String?, lanes laneCount: Int = 1,
        mac: @escaping @Sendable ([UInt8]) throws -> [UInt8]
    ) throws {
        try self.init(chainID: chainID, keys: AuditChainKeys(keyID: keyID, mac: mac), statePath: statePath, lanes: laneCount)
    }

    /// The master key id new events are stamped under.
    public var keyID: String { keys.current.keyID }

    /// How many lanes there are.
    public var laneCount: Int { lanes.count }

    /// Each lane's last sequence number, lane 0 first.
    public var sequences: [UInt64] { lanes.map { $0.withLock { $0.chain.sequence } } }

    /// Continues a lane from `last`, the newest event of that lane in the
    /// journal, when it is ahead of the state file (a power loss lost the
    /// file's last writes) and authentic. Returns whether it did.
    @discardableResult
    public func resume(fromJournal last: [(String, String)]) -> Bool {
        let map = Dictionary(last, uniquingKeysWith: { first, _ in first })
        guard map[AuditChain.fieldChainID] == chainID, let mac = map[AuditChain.fieldKeyID].flatMap(keys.mac(forKeyID:)),
              let lane = AuditChain.lane(of: map), lane < lanes.count,
              let sequence = map[AuditChain.fieldSequence].flatMap(UInt64.init),
              let chain = map[AuditChain.fieldChain].flatMap(Hex.decode), chain.count == 32,
              let claimed = map[AuditChain.fieldMAC].flatMap(Hex.decode),
              (try? mac(AuditChain.eventInput(AuditChain.canonical(last)))) == claimed
        else { return false }
        return lanes[lane].withLock { s in
            guard sequence > s.chain.sequence else { return false }
            s.chain = AuditChain(lane: lane, sequence: sequence, chain: chain)
            file?.write(s.chain)
            return true
        }
    }

    /// Runs `send` with the event's fields stamped in the calling thread's
    /// lane, holding that lane's lock, so the journal receives the lane's
    /// events in sequence order. The number is spent even when `send` fails:
    /// a lost event is a gap, reported afterwards.
    public func stamp<R>(_ fields: [(String, String)], send: ([(String, String)]) throws(AuditError) -> R) throws(AuditError) -> R {
        let claimed = AuditLane.current
        let lane = claimed < lanes.count ? claimed : 0
        return try lanes[lane].withLock { (s: inout State) throws(AuditError) -> R in
            // A MAC that cannot be computed (locked memory exhausted) spends
            // no number: the event is refused before it exists, and so is
            // the get that needed it.
            let stamped: [(String, String)]
            do {
                let key = keys.current
                stamped = try s.chain.extend(fields, chainID: chainID, keyID: key.keyID, timeMicroseconds: Self.now(), mac: key.mac)
            } catch {
                throw AuditError("the audit chain's MAC could not be computed: \(error)")
            }
            file?.write(s.chain)
            let result: R
            do throws(AuditError) {
                result = try send(stamped)
            } catch {
                noteLost(lane, s.chain.sequence)
                throw error
            }
            if anyUnreported.load(ordering: .acquiring) { reportLost(&s, lane: lane, send: send) }
            return result
        }
    }

    private func noteLost(_ lane: Int, _ number: UInt64) {
        unreported.withLock { $0[lane, default: SequenceRanges()].insert(number) }
        anyUnreported.store(true, ordering: .releasing)
    }

    private func noteLost(_ lane: Int, _ numbers: SequenceRanges) {
        unreported.withLock { $0[lane, default: SequenceRanges()].formUnion(numbers) }
        anyUnreported.store(true, ordering: .releasing)
    }

    /// One `audit_lost` event per lane with losses, sent in this lane right
    /// after an event went through.
    private func reportLost<R>(_ s: inout State, lane: Int, send: ([(String, String)]) throws(AuditError) -> R) {
        let owed = unreported.withLock { owed in
            let taken = owed
            owed.removeAll()
            anyUnreported.store(false, ordering: .releasing)
            return taken
        }
        for (lostLane, numbers) in owed.sorted(by: { $0.key < $1.key }) {
            var event = AuditEvent(kind: .auditLost, result: .error, reason: "journal unreachable")
            event.lost = numbers.text
            event.lostLane = lostLane
            // Without a MAC the report waits for the next event.
            let key = keys.current
            guard let stamped = try? s.chain.extend(event.fields, chainID: chainID, keyID: key.keyID, timeMicroseconds: Self.now(),
                                                    mac: key.mac)
            else {
                noteLost(lostLane, numbers)
                continue
            }
            file?.write(s.chain)
            do throws(AuditError) {
                _ = try send(stamped)
            } catch {
                noteLost(lostLane, numbers)
                noteLost(lane, s.chain.sequence)
            }
        }
    }

    /// Flushes the state to disk (clean shutdown).
    public func sync() {
        file?.sync()
    }

    static func now() -> UInt64 {
        var spec = timespec()
        clock_gettime(CLOCK_REALTIME, &spec)
        return UInt64(spec.tv_sec) * 1_000_000 + UInt64(spec.tv_nsec / 1000)
    }
}
