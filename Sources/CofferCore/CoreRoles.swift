import Audit
import FileStore
import Keyring
import LockedMemory
import Model
import Seal

// The parts of the core a handler may be given, each no more than one
// kind of handler needs. CofferServices plays every role; the dispatcher
// hands each handler only its own (RequestDispatcher.handler(for:core:)).

/// Opens a secret's records: the keys and the sealer, nothing else.
public struct RecordOpener: Sendable {
    public let keyring: Keyring
    public let sealer: RecordSealer

    public init(keyring: Keyring, sealer: RecordSealer) {
        self.keyring = keyring
        self.sealer = sealer
    }

    /// `version` of `secret` in store `storeID`, in locked memory; the
    /// caller releases it (wiped).
    public func open(_ version: SecretVersion, of secret: Secret, storeID: String) throws -> LockedBytes {
        try sealer.open(version.sealed, for: secret.identity(storeID: storeID, version: version.version), keyring: keyring)
    }
}

/// Changing secrets: a commit of a small change (of at most `names`
/// secrets: staged on the caller's thread when the store allows, else on
/// the blocking pool), the change told to watchers, the write use case of
/// put, rotate and token.create, and the import.
package protocol SecretWrites: Sendable {
    var retainVersions: Int { get }
    func commit<Result: Sendable>(
        touching names: Int,
        _ change: @escaping @Sendable (_ storeID: String, _ secrets: inout EditedSecrets) throws -> Result
    ) async throws -> Result
    func publish(_ changes: [(SecretChange, SecretAccess?)])
    func write(_ request: VersionWrite, known: Secret?, by author: String) async throws -> VersionWrite.Written
    func importValues(_ items: [ImportItem], by author: String) async throws -> Int
}

/// Master-key rotation, seal and unseal (KeyOperations).
package protocol KeyManagement: Sendable {
    func rotateMasterKey(_ source: MasterKeyRotation.NewKey) async throws -> MasterKeyRotation.Outcome
    func sealKeys() async throws
    func unseal(keyFile: String?) async throws -> KeyID
}

/// Putting the policy file in force again.
package protocol PolicyReloading: Sendable {
    func reloadPolicyOffLoop(requestedBy peer: PeerIdentity?, on listener: Listener?) async -> Result<AccessPolicy, CofferError>
}

/// Blocking work, and scrypt under its permits (verify of a hashed secret).
package struct HashingWork: Sendable {
    package let pool: any BlockingWork
    package let scrypt: WorkPermits
}

extension CofferServices: SecretWrites, KeyManagement, PolicyReloading {
    public var opener: RecordOpener { RecordOpener(keyring: keyring, sealer: sealer) }
    package var hashing: HashingWork { HashingWork(pool: blockingPool, scrypt: scrypt) }
}
