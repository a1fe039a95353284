import Keyring
import Seal

/// Makes and checks the store file's MAC: with the current master key when
/// writing, with whichever key the file names when reading (a file written
/// before a master-key rotation still checks against the retired key).
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
}
