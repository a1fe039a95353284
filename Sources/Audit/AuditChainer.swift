import Model
import Synchronization
import Syscalls
#if canImport(Glibc)
import Glibc
#endif

/// Stamps events with the chain fields, in one order for the whole daemon,
/// and keeps the chain's state in a small file in the state directory so
/// that it carries on across restarts (docs/audit.md).
///
/// The state is rewritten in place after every event without fsync: it
/// survives kill -9 (the page cache does). After a power loss the file may
/// be behind the journal; `resume` then continues from the journal's last
/// authentic event rather than reusing numbers.
///
/// Events that could not be sent still spend their numbers; the first
/// event sent after them is followed by an `audit_lost` event listing them,
/// so `--verify` can tell an outage cofferd saw from a removal it did not.
public final class AuditChainer: Sendable {
    public let chainID: String
    public let keyID: String
    private let mac: @Sendable ([UInt8]) throws -> [UInt8]
    /// Held across the journal send, by every event loop in turn: a plain
    /// mutex, not a priority-inheritance one (PlainMutex says why).
    private let state: PlainMutex<State>
    private let file: Mutex<OwnedFileDescriptor?>

    struct State {
        var chain: AuditChain
        var lost: [UInt64] = []
    }

    /// `statePath` nil keeps the chain in memory only (tests).
    public init(chainID: String, keyID: String, statePath: String?, mac: @escaping @Sendable ([UInt8]) throws -> [UInt8]) throws {
        self.chainID = chainID
        self.keyID = keyID
        self.mac = mac
        var chain = AuditChain()
        var fd: OwnedFileDescriptor?
        if let statePath {
            let opened = try OwnedFileDescriptor.open(statePath, O_RDWR | O_CREAT | O_NOFOLLOW, mode: 0o600)
            chain = Self.parse(try opened.readAll(limit: 4096)) ?? AuditChain()
            fd = consume opened
        }
        state = PlainMutex(State(chain: chain))
        file = Mutex(fd)
    }

    public var sequence: UInt64 { state.withLock { $0.chain.sequence } }

    /// Continues from `last`, the newest event of this chain in the journal,
    /// when it is ahead of the state file (a power loss lost the file's last
    /// writes) and authentic. Returns whether it did.
    @discardableResult
    public func resume(fromJournal last: [(String, String)]) -> Bool {
        let map = Dictionary(last, uniquingKeysWith: { first, _ in first })
        guard map[AuditChain.fieldChainID] == chainID, map[AuditChain.fieldKeyID] == keyID,
              let sequence = map[AuditChain.fieldSequence].flatMap(UInt64.init),
              let chain = map[AuditChain.fieldChain].flatMap(Hex.decode), chain.count == 32,
              let claimed = map[AuditChain.fieldMAC].flatMap(Hex.decode),
              (try? mac(AuditChain.eventInput(AuditChain.canonical(last)))) == claimed
        else { return false }
        return state.withLock { s in
            guard sequence > s.chain.sequence else { return false }
            s.chain = AuditChain(sequence: sequence, chain: chain)
            persist(s.chain)
            return true
        }
    }

    /// Runs `send` with the event's fields stamped, holding the chain lock,
    /// so the journal receives events in sequence order. The number is spent
    /// even when `send` fails: a lost event is a gap, reported afterwards.
    public func stamp<R>(_ fields: [(String, String)], send: ([(String, String)]) throws(AuditError) -> R) throws(AuditError) -> R {
        try state.withLock { (s: inout State) throws(AuditError) -> R in
            // A MAC that cannot be computed (locked memory exhausted) spends
            // no number: the event is refused before it exists, and so is
            // the get that needed it.
            let stamped: [(String, String)]
            do {
                stamped = try s.chain.extend(fields, chainID: chainID, keyID: keyID, timeMicroseconds: Self.now(), mac: mac)
            } catch {
                throw AuditError("the audit chain's MAC could not be computed: \(error)")
            }
            persist(s.chain)
            let result: R
            do throws(AuditError) {
                result = try send(stamped)
            } catch {
                s.lost.append(s.chain.sequence)
                throw error
            }
            reportLost(&s, send: send)
            return result
        }
    }

    private func reportLost<R>(_ s: inout State, send: ([(String, String)]) throws(AuditError) -> R) {
        guard !s.lost.isEmpty else { return }
        var event = AuditEvent(kind: .auditLost, result: .error, reason: "journal unreachable")
        event.lost = AuditChain.ranges(s.lost)
        // Without a MAC the report waits for the next event.
        guard let stamped = try? s.chain.extend(event.fields, chainID: chainID, keyID: keyID, timeMicroseconds: Self.now(), mac: mac)
        else { return }
        persist(s.chain)
        do throws(AuditError) {
            _ = try send(stamped)
            s.lost.removeAll()
        } catch {
            s.lost.append(s.chain.sequence)
        }
    }

    private func persist(_ chain: AuditChain) {
        let padded = String(repeating: "0", count: max(0, 20 - String(chain.sequence).count)) + String(chain.sequence)
        let line = Array("\(padded) \(Hex.encode(chain.chain))\n".utf8)
        file.withLock { fd in
            guard let raw = fd?.rawValue else { return }
            _ = line.withUnsafeBytes { pwrite(raw, $0.baseAddress, $0.count, 0) }
        }
    }

    /// Flushes the state to disk (clean shutdown).
    public func sync() {
        file.withLock { fd in
            if let raw = fd?.rawValue { _ = Glibc.fsync(raw) }
        }
    }

    static func now() -> UInt64 {
        var spec = timespec()
        clock_gettime(CLOCK_REALTIME, &spec)
        return UInt64(spec.tv_sec) * 1_000_000 + UInt64(spec.tv_nsec / 1000)
    }

    static func parse(_ bytes: [UInt8]) -> AuditChain? {
        let parts = String(decoding: bytes, as: UTF8.self).split(whereSeparator: { $0 == " " || $0 == "\n" })
        guard parts.count == 2, let sequence = UInt64(parts[0]), let chain = Hex.decode(String(parts[1])),
              chain.count == 32 else { return nil }
        return AuditChain(sequence: sequence, chain: chain)
    }
}
