import Model
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

    public var isSealed: Bool { state.withLock { $0.current == nil } }

    /// Adds `key`; with `makeCurrent`, new records are sealed with it from
    /// now on (the old current stays loaded, retired, to open old records).
    public func install(_ key: MasterKey, makeCurrent: Bool) throws(KeyringError) {
        try state.withLock { (s: inout State) throws(KeyringError) in
            guard s.current != nil else { throw KeyringError(.sealed, "the keyring is sealed") }
            s.byID[key.id] = key
            if makeCurrent { s.current = key }
        }
    }

    /// Lets go of retired keys no record needs any more. Their bytes are
    /// wiped when the last request still holding one finishes (LockedBytes
    /// wipes on release), so nothing in flight reads a wiped key.
    public func retire(keeping needed: Set<KeyID>) -> [KeyID] {
        state.withLock { s in
            let dropped = s.byID.keys.filter { $0 != s.current?.id && !needed.contains($0) }
            for id in dropped { s.byID[id] = nil }
            return dropped.sorted { $0.hex < $1.hex }
        }
    }

    /// `seal`: forgets and wipes every key at once. Requests that need a key
    /// answer UNAVAILABLE until `unseal`; one already opening a record when
    /// this runs fails its authentication instead of reading a stale key.
    public func seal() {
        let keys = state.withLock { s -> [MasterKey] in
            let all = Array(s.byID.values)
            s = State(current: nil, byID: [:])
            return all
        }
        for key in keys { key.wipe() }
    }

    /// `unseal`: puts keys back; `current` seals new records.
    public func unseal(current: MasterKey, others: [MasterKey]) {
        state.withLock { s in
            var byID: [KeyID: MasterKey] = [:]
            for key in others { byID[key.id] = key }
            byID[current.id] = current
            s = State(current: current, byID: byID)
        }
    }

    public var keyIDs: (current: KeyID?, retired: [KeyID]) {
        state.withLock { s in
            let current = s.current?.id
            return (current, s.byID.keys.filter { $0 != current }.sorted { $0.hex < $1.hex })
        }
    }
}
