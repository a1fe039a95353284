import Keyring
import Model
import Seal

/// Makes and checks the store file's MAC: with the current master key when
/// writing, with whichever key the file names when reading (a file written
/// before a master-key rotation still checks against the retired key); and
/// checks that a file's records open before it is served.
public struct StoreAuthenticator: Sendable {
    public let keyID: String
    let mac: @Sendable ([UInt8]) -> [UInt8]
    private let keyring: Keyring
    private let sealer: RecordSealer

    public init(keyring: Keyring, sealer: RecordSealer) throws {
        let key = try keyring.current()
        self.keyID = key.id.hex
        self.mac = try sealer.mac(with: key, for: .storeFile)
        self.keyring = keyring
        self.sealer = sealer
    }

    func mac(forKeyID id: String) -> (@Sendable ([UInt8]) -> [UInt8])? {
        if id == keyID { return mac }
        guard let keyID = KeyID(hex: id), let key = try? keyring.key(for: keyID) else { return nil }
        return try? sealer.mac(with: key, for: .storeFile)
    }

    /// Opens every version of every secret (and wipes what it opened): a
    /// file taken from outside (reload, migration) is served only whole.
    func checkEveryRecord(of snapshot: StoreSnapshot) throws(StoreError) {
        for name in snapshot.sortedNames {
            let secret = snapshot.secrets[name]!
            for version in secret.versions {
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
