import Keyring
import Model

/// The key use cases: rotate the master key, seal (wipe every key), unseal
/// (load them again). They exclude one another (`exclusively`).
extension CofferServices {
    /// Re-seals every record under a new key (MasterKeyRotation); answers
    /// once the re-sealed store is committed.
    package func rotateMasterKey(_ source: MasterKeyRotation.NewKey) async throws -> MasterKeyRotation.Outcome {
        guard let locations = keyLocations else {
            throw CofferError(.unavailable, "this cofferd has no state directory to record a new key in")
        }
        let rotation = self.rotation
        return try await exclusively(.rotateMasterKey) {
            let outcome = try await blockingPool.run { try rotation.run(source, services: self, locations: locations) }
            // New audit events are stamped under the new key; the old key's
            // chain MAC stays with the chain, to check what it stamped.
            if let chainKeys = auditChainKeys, let key = try? keyring.current(), key.id.hex == outcome.newKeyID,
               let mac = try? sealer.mac(with: key, for: .auditChain) {
                chainKeys.stampWith(keyID: key.id.hex, mac: { try mac($0) })
            }
            return outcome
        }
    }

    /// Wipes every master key from memory at once, under the store's writer
    /// lock: no commit is sealing with a key while it is wiped.
    package func sealKeys() async throws {
        try await exclusively(.seal) {
            store.whileNoCommitRuns { keyring.seal() }
        }
    }

    /// Loads the master keys again (the configured source, or `keyFile` in
    /// its place, plus the keys rotations added) and takes them only if
    /// they open every record of the store. Returns the current key's id.
    package func unseal(keyFile: String?) async throws -> KeyID {
        guard let locations = keyLocations else {
            throw CofferError(.unavailable, "this cofferd has no key source to unseal from")
        }
        return try await exclusively(.unseal) {
            guard keyring.isSealed else { throw CofferError(.conflict, "cofferd is not sealed") }
            let loaded: MasterKeyLocations.Loaded
            do {
                loaded = try await blockingPool.run { try locations.load(primaryPath: keyFile) }
            } catch let error as KeyringError {
                throw CofferError(.badRequest, "cannot load the master key: \(error.message)")
            }
            let held = Set(loaded.all.map(\.id))
            let missing = store.neededKeyIDs.subtracting(held)
            guard missing.isEmpty else {
                throw CofferError(.conflict, "these keys do not open the store (it needs key ids \(missing.map(\.hex).sorted().joined(separator: ", "))); still sealed")
            }
            keyring.unseal(current: loaded.current, others: loaded.all)
            // The file may have changed while nothing could check it.
            reloadStore()
            return loaded.current.id
        }
    }
}
