import Synchronization

/// The chain's MAC keys, by the id of the master key each was derived from:
/// the one new events are stamped with, and those of master keys a
/// rotation retired while cofferd ran, so that `--verify` still checks the
/// events stamped before it. They are derived keys (HKDF, docs/audit.md):
/// they make and check audit MACs, and open nothing.
public final class AuditChainKeys: Sendable {
    public typealias MAC = @Sendable ([UInt8]) throws -> [UInt8]

    private let state: Mutex<(currentID: String, macs: [String: MAC])>

    public init(keyID: String, mac: @escaping MAC) {
        state = Mutex((keyID, [keyID: mac]))
    }

    /// The key new events are stamped with.
    public var current: (keyID: String, mac: MAC) {
        state.withLock { ($0.currentID, $0.macs[$0.currentID]!) }
    }

    /// New events are stamped with `mac` (a rotation's new master key); the
    /// keys before it still check what they stamped.
    public func stampWith(keyID: String, mac: @escaping MAC) {
        state.withLock { state in
            state.macs[keyID] = mac
            state.currentID = keyID
        }
    }

    /// The key of events stamped under master key `keyID`, if cofferd has it.
    public func mac(forKeyID keyID: String) -> MAC? {
        state.withLock { $0.macs[keyID] }
    }
}
