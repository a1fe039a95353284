import Audit
import CofferCore
import FileStore
import Keyring
import Model
import Seal

/// A core over a real store in `directory`, under the test master key,
/// which is also in a key file there, so that unseal and
/// rotate-master-key have somewhere to load from and record to.
public enum CoreFixture {
    public static func services(
        in directory: TemporaryDirectory, policy: AccessPolicy, audit: any AuditSink, blockingPool: any BlockingWork,
        accountLookupThread: (any BlockingWork)? = nil, retainVersions: Int = CofferServices.defaultRetainVersions
    ) throws -> CofferServices {
        let keyFile = directory.path + "/master.key"
        try MasterKeySource.createKeyFile(at: keyFile, key: try TestKeys.master())
        let keyring = Keyring(current: try TestKeys.master())
        return CofferServices(
            store: try SecretStore.open(
                directory: directory.path, authenticator: try StoreAuthenticator(keyring: keyring, sealer: RecordSealer())),
            keyring: keyring, sealer: RecordSealer(), policy: policy, audit: audit, mode: .development,
            blockingPool: blockingPool, accountLookupThread: accountLookupThread ?? blockingPool, retainVersions: retainVersions,
            keyLocations: MasterKeyLocations(primary: .keyFile(path: keyFile), stateDirectory: directory.path))
    }
}
