import Synchronization

/// The chain's MAC keys, by the id of the master key each was derived from:
/// the one new events are stamped with, and those of master keys a
/// rotation retired while cofferd ran, so that `--verify` still checks the
/// events stamped before it. They are derived keys (HKDF, docs/audit.md):
/// they make and check audit MACs, and open nothing.
///
/// A retired key checks only what it stamped: for each one, the last
/// sequence number every lane had stamped under it when the rotation
/// switched keys. An event under it numbered past that, or in a lane that
/// did not exist then, was made by whoever holds the old key afterwards
/// (the reason to rotate it), and the verifier refuses it.
public final class AuditChainKeys: Sendable {
    public typealias MAC = @Sendable ([UInt8]) throws -> [UInt8]
    /// Runs its argument with no lane stamping, given each lane's last
    /// sequence number (AuditChainer.holdingEveryLane).
    typealias LaneHold = @Sendable (_ body: ([Int: UInt64]) -> Void) -> Void

    private struct State {
        var currentID: String
        var macs: [String: MAC]
        var retiredAt: [String: [Int: UInt64]] = [:]
    }

    private let state: Mutex<State>
    private let laneHold = Mutex<LaneHold?>(nil)

    public init(keyID: String, mac: @escaping MAC) {
        state = Mutex(State(currentID: keyID, macs: [keyID: mac]))
    }

    /// The key new events are stamped with.
    public var current: (keyID: String, mac: MAC) {
        state.withLock { ($0.currentID, $0.macs[$0.currentID]!) }
    }

    /// How to stop every lane while the key changes: set by the chainer
    /// that stamps with these keys.
    func holdLanes(with hold: @escaping LaneHold) {
        laneHold.withLock { $0 = hold }
    }

    /// New events are stamped with `mac` (a rotation's new master key); the
    /// keys before it still check what they stamped. The switch is made
    /// with every lane stopped, so each lane's last number under the old
    /// key is exact. A key made current again (a rotation back to it) is
    /// no longer bounded: it stamps again.
    public func stampWith(keyID: String, mac: @escaping MAC) {
        let switchKeys = { (sequences: [Int: UInt64]?) in
            self.state.withLock { state in
                guard state.currentID != keyID else { return }
                if let sequences { state.retiredAt[state.currentID] = sequences }
                state.retiredAt[keyID] = nil
                state.macs[keyID] = mac
                state.currentID = keyID
            }
        }
        if let hold = laneHold.withLock({ $0 }) {
            hold { switchKeys($0) }
        } else {
            switchKeys(nil)
        }
    }

    /// The key of events stamped under master key `keyID`, if cofferd has it.
    public func mac(forKeyID keyID: String) -> MAC? {
        state.withLock { $0.macs[keyID] }
    }

    /// For a key a rotation retired while cofferd ran: each lane's last
    /// sequence number under it. Nil for the current key, and for any key
    /// cofferd did not see retired.
    public func retiredAt(keyID: String) -> [Int: UInt64]? {
        state.withLock { $0.retiredAt[keyID] }
    }
}
