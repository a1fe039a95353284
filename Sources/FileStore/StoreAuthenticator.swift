import Keyring
import Model
import Seal

/// Makes and checks the store file's MAC: with the keyring's current key
/// when writing (so after a master-key rotation the file is authenticated
/// by the new key), with whichever key the file names when reading; and
/// checks that a file's records open before it is served.
///
/// The MAC key is derived per use rather than kept: a commit or reload
/// costs one HKDF, and `seal` leaves no derived store key behind.
public struct StoreAuthenticator: Sendable {
    private let keyring: Keyring
    private let sealer: RecordSealer

    public init(keyring: Keyring, sealer: RecordSealer) throws {
        _ = try keyring.current()
        self.keyring = keyring
        self.sealer = sealer
    }

    /// The key id and MAC function to write a file with; throws while sealed.
    func current() throws -> (keyID: String, mac: MACKey) {
        let key = try keyring.current()
        return (key.id.hex, try sealer.mac(with: key, for: .storeFile))
    }

    /// Whether the keyring is sealed (a reload then waits for unseal rather
    /// than call a file it cannot check tampered).
    var isSealed: Bool { keyring.isSealed }

    func mac(forKeyID id: String, for purpose: RecordSealer.MACPurpose = .storeFile) -> MACKey? {
        guard let keyID = KeyID(hex: id), let key = try? keyring.key(for: keyID) else { return nil }
        return try? sealer.mac(with: key, for: purpose)
    }

    /// The key id the next log is chained under (the keyring's current).
    func currentKeyID() throws -> String { try keyring.current().id.hex }

    /// Opens every version of every secret (and wipes what it opened): a
    /// file taken from outside (reload, migration) is served only whole.
    /// With `served`, a record held there byte for byte under the same
    /// identity is not opened again: it is served already, so a reload
    /// costs what changed rather than the whole store (docs/performance.md).
    func checkEveryRecord(of snapshot: StoreSnapshot, besides served: StoreSnapshot? = nil) throws(StoreError) {
        let served = served?.storeID == snapshot.storeID ? served : nil
        let changed = served.map { snapshot.secrets.secretsNotHeld(in: $0.secrets) } ?? Array(snapshot.secrets)
        for secret in changed {
            let name = secret.name
            let before = served?.secrets[name]
            for version in secret.versions {
                if let before, before.protection == secret.protection,
                   before.versions.contains(where: { $0.version == version.version && $0.sealed == version.sealed }) {
                    continue
                }
                do {
                    _ = try sealer.open(version.sealed, for: secret.identity(storeID: snapshot.storeID, version: version.version),
                                        keyring: keyring)
                } catch {
                    throw StoreError(.tampered, "\(name) version \(version.version) does not open", underlying: "\(error)")
                }
            }
        }
    }
}
