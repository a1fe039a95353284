import CofferTestSupport
import FileStore
import Foundation
import Keyring
import Model
import Seal
import Testing

@Suite struct SecretStoreTests {
    let sealer = RecordSealer()

    func version(_ number: UInt64, of name: SecretName, storeID: String) throws -> SecretVersion {
        let identity = RecordIdentity(storeID: storeID, name: name.rawValue, version: number, protection: "sealed")
        let sealed = try Array("value-\(number)".utf8).withUnsafeBytes { try sealer.seal($0, for: identity, with: TestKeys.master()) }
        return SecretVersion(version: number, sealed: sealed, encoding: .text, createdAt: 1_700_000_000, createdBy: "uid:0")
    }

    func put(_ name: String, in store: SecretStore) throws {
        let name = try SecretName(name)
        try store.commit { storeID, secrets in
            var secret = secrets[name] ?? Secret(name: name, kind: .generic, protection: .sealed, versions: [])
            secret.versions.append(try version(secret.nextVersion, of: name, storeID: storeID))
            secrets[name] = secret
        }
    }

    func mode(_ path: String) throws -> Int {
        try FileManager.default.attributesOfItem(atPath: path)[.posixPermissions] as! Int
    }

    @Test func createsAPrivateStoreWithAStoreID() throws {
        let dir = try TemporaryDirectory()
        let store = try SecretStore.open(directory: dir.path)
        #expect(store.snapshot.storeID.count == 32)
        #expect(store.snapshot.generation == 0)
        #expect(try mode(store.path) == 0o600)
    }

    @Test func commitsAreDurableAndReloadIdentically() throws {
        let dir = try TemporaryDirectory()
        let store = try SecretStore.open(directory: dir.path)
        try put("db/password", in: store)
        try put("db/password", in: store)
        try put("api/token", in: store)
        #expect(store.snapshot.generation == 3)
        let reopened = try SecretStore.open(directory: dir.path)
        #expect(reopened.snapshot == store.snapshot)
        #expect(reopened.snapshot[try SecretName("db/password")]?.versions.map(\.version) == [1, 2])
        #expect(try mode(store.path) == 0o600)
    }

    @Test func aFailedChangeChangesNothing() throws {
        let dir = try TemporaryDirectory()
        let store = try SecretStore.open(directory: dir.path)
        try put("a", in: store)
        let before = try Data(contentsOf: URL(fileURLWithPath: store.path))
        struct Refused: Error {}
        #expect(throws: Refused.self) {
            try store.commit { _, secrets in
                secrets[try SecretName("a")] = nil
                throw Refused()
            }
        }
        #expect(store.snapshot.generation == 1)
        #expect(store.snapshot[try SecretName("a")] != nil)
        #expect(try Data(contentsOf: URL(fileURLWithPath: store.path)) == before)
    }

    @Test func theFileHoldsCiphertextOnly() throws {
        let dir = try TemporaryDirectory()
        let store = try SecretStore.open(directory: dir.path)
        try put("db/password", in: store)
        let text = try String(contentsOfFile: store.path, encoding: .utf8)
        #expect(text.contains("db/password"))
        #expect(!text.contains("value-1"))
    }

    @Test func leftoverTempFilesAreRemovedNotLoaded() throws {
        let dir = try TemporaryDirectory()
        let store = try SecretStore.open(directory: dir.path)
        try put("kept", in: store)
        let leftover = store.path + ".tmp-abcdef"
        _ = FileManager.default.createFile(atPath: leftover, contents: Data("garbage".utf8))
        let reopened = try SecretStore.open(directory: dir.path)
        #expect(!FileManager.default.fileExists(atPath: leftover))
        #expect(reopened.snapshot == store.snapshot)
    }

    @Test func refusesAStoreFileOthersCanRead() throws {
        let dir = try TemporaryDirectory()
        let store = try SecretStore.open(directory: dir.path)
        chmod(store.path, 0o644)
        let error = #expect(throws: StoreError.self) { try SecretStore.open(directory: dir.path) }
        #expect(error?.code == .permissions)
    }

    @Test(arguments: [
        "not json",
        #"{"format":"other","format_version":1,"store_id":"x","generation":0,"secrets":[]}"#,
        #"{"format":"coffer-store","format_version":99,"store_id":"x","generation":0,"secrets":[]}"#,
        #"{"format":"coffer-store","format_version":1,"store_id":"x","generation":0,"secrets":[{"name":"../x","kind":"generic","protection":"sealed","versions":[]}]}"#,
    ])
    func refusesCorruptFiles(_ contents: String) throws {
        let dir = try TemporaryDirectory()
        let path = dir.file(SecretStore.fileName)
        _ = FileManager.default.createFile(atPath: path, contents: Data(contents.utf8))
        chmod(path, 0o600)
        let error = #expect(throws: StoreError.self) { try SecretStore.open(directory: dir.path) }
        #expect(error?.code == .corrupt)
    }
}
