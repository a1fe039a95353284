import FileStore
import Keyring
import Model
import Seal

/// Signs and checks each secret's rows (SecretRow.canonical) with a key
/// derived from the master key (HKDF info "coffer mirror row v1"). The
/// records' AAD already binds name, version and store; this MAC also binds
/// what changes without re-sealing (stages, expiry, access, deletion), so
/// an edit in the database is refused, not served.
struct RowAuthenticator: Sendable {
    let keyring: Keyring
    let sealer: RecordSealer

    /// A signer for one batch: the MAC key is derived once, not per row.
    func signer() throws -> @Sendable (_ storeID: String, _ name: String, _ deletedAt: Int64?, _ secret: Secret?, _ sequence: Int64) throws -> (keyID: String, mac: [UInt8]) {
        let key = try keyring.current()
        let mac = try sealer.mac(with: key, for: .mirrorRow)
        let keyID = key.id.hex
        return { storeID, name, deletedAt, secret, sequence in
            (keyID, try mac(SecretRow.canonical(storeID: storeID, name: name, deletedAt: deletedAt, secret: secret, sequence: sequence)))
        }
    }

    /// Whether the MAC checks and every record opens for this store.
    func check(storeID: String, name: String, deletedAt: Int64?, secret: Secret?, sequence: Int64, keyID: String, mac: [UInt8]) -> Bool {
        guard let id = KeyID(hex: keyID), let key = try? keyring.key(for: id),
              let function = try? sealer.mac(with: key, for: .mirrorRow),
              let expected = try? function(SecretRow.canonical(storeID: storeID, name: name, deletedAt: deletedAt, secret: secret,
                                                               sequence: sequence)),
              ConstantTime.equals(expected, mac)
        else { return false }
        guard let secret else { return true }
        for version in secret.versions {
            guard (try? sealer.open(version.sealed, for: secret.identity(storeID: storeID, version: version.version),
                                    keyring: keyring)) != nil
            else { return false }
        }
        return true
    }
}
