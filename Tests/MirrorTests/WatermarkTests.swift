import CofferTestSupport
import FileStore
import Keyring
import Model
import Seal
import Testing

@testable import Mirror

/// The pushed watermark belongs to the store's history: a store file put
/// back to an older generation (store-generation removed, as
/// docs/operations.md says) must not make the writes that reuse those
/// generations look pushed. No database is needed: a mirror is made, not
/// run.
@Suite struct WatermarkTests {
    @Test func aWatermarkAheadOfTheStoreGoesBackToItsGeneration() throws {
        let dir = try TemporaryDirectory("watermark")
        let sealer = RecordSealer()
        let keyring = Keyring(current: try TestKeys.master())
        let store = try SecretStore.open(directory: dir.path, authenticator: try StoreAuthenticator(keyring: keyring, sealer: sealer))
        store.keepsOutbox = true
        for text in ["app/a", "app/b"] {
            let name = try SecretName(text)
            try store.commit { storeID, secrets in
                let identity = RecordIdentity(storeID: storeID, name: text, version: 1, protection: "sealed")
                let sealed = try Array("v".utf8).withUnsafeBytes { try sealer.seal($0, for: identity, with: keyring.current()) }
                secrets[name] = Secret(name: name, kind: .generic, protection: .sealed,
                                       versions: [SecretVersion(version: 1, sealed: sealed, encoding: .text, createdAt: 0, createdBy: "uid:0")])
            }
        }
        let snapshot = store.snapshot
        #expect(snapshot.generation == 2 && snapshot.outbox.count == 2)
        // The watermark of a history that went on to generation 100.
        let state = MirrorState(directory: dir.path)
        try state.recordPushed(storeID: snapshot.storeID, generation: 100)

        let mirror = try Mirror(settings: Mirror.Settings(conninfo: "host=/nonexistent dbname=coffer"), store: store, keyring: keyring,
                                sealer: sealer, stateDirectory: dir.path, events: { _ in })
        #expect(state.pushed(storeID: snapshot.storeID) == 2, "back to the store's generation, on disk")
        #expect(mirror.pending(in: snapshot.outbox).isEmpty, "what the store holds at that generation was pushed")
        let name = try SecretName("app/a")
        try store.commit { _, secrets in
            var secret = try #require(secrets[name])
            secret.expiresAt = 2_000_000_000
            secrets[name] = secret
        }
        #expect(store.snapshot.generation == 3)
        #expect(Array(mirror.pending(in: store.snapshot.outbox).keys) == [name], "a write after the rollback is sent")
    }
}
