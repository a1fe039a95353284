import Synchronization

/// The master keys cofferd holds, by key id: one current (new records are
/// sealed with it), any number retired (still opened, never used to seal).
///
/// Shared by every connection; the state is swapped under a lock so that a
/// later `seal` (wipe every key) or master-key rotation is atomic for readers.
public final class Keyring: Sendable {
    private struct State {
        var current: MasterKey?
        var byID: [KeyID: MasterKey]
    }

    private let state: Mutex<State>

    public init(current: MasterKey, retired: [MasterKey] = []) {
        var byID: [KeyID: MasterKey] = [:]
        for key in retired { byID[key.id] = key }
        byID[current.id] = current
        state = Mutex(State(current: current, byID: byID))
    }

    /// The key new records are sealed with.
    public func current() throws(KeyringError) -> MasterKey {
        guard let key = state.withLock({ $0.current }) else {
            throw KeyringError(.sealed, "the keyring is sealed")
        }
        return key
    }

    /// The key that sealed a record, current or retired.
    public func key(for id: KeyID) throws(KeyringError) -> MasterKey {
        let found: MasterKey?? = state.withLock { s in s.current == nil ? .none : .some(s.byID[id]) }
        switch found {
        case .none: throw KeyringError(.sealed, "the keyring is sealed")
        case .some(.none): throw KeyringError(.unknownKeyID, "no master key with id \(id) is loaded")
        case .some(.some(let key)): return key
        }
    }

    public var keyIDs: (current: KeyID?, retired: [KeyID]) {
        state.withLock { s in
            let current = s.current?.id
            return (current, s.byID.keys.filter { $0 != current }.sorted { $0.hex < $1.hex })
        }
    }
}
