import CofferTestSupport
@testable import FileStore
import Foundation
import Model
import Synchronization
import Syscalls
import Testing

/// A commit of (nearly) every record is written once, as the store file
/// with an empty log after it, not as a log entry the size of the store
/// followed by a compaction that writes it all again.
@Suite struct WholeCommitTests {
    let fixture = SecretStoreTests()

    func open(_ dir: TemporaryDirectory) throws -> SecretStore {
        try SecretStore.open(directory: dir.path, authenticator: try fixture.authenticator())
    }

    /// A secret of one version, as a put would make it.
    static func newSecret(_ name: SecretName, storeID: String, fixture: SecretStoreTests) throws -> Secret {
        var secret = Secret(name: name, kind: .generic, protection: .sealed, versions: [])
        try secret.add(try fixture.version(1, of: name, storeID: storeID), pending: false, at: 1_700_000_000, by: "uid:0")
        return secret
    }

    /// Every secret given one more version, in one whole commit.
    func addVersionToEvery(_ store: SecretStore) throws -> Int {
        try store.commitWhole { storeID, secrets in
            let names = secrets.base.names
            for name in names {
                var secret = secrets[name]!
                try secret.add(try fixture.version(secret.nextVersion, of: name, storeID: storeID), pending: false,
                               at: 1_700_000_000, by: "uid:0")
                secrets[name] = secret
            }
            return names.count
        }
    }

    @Test func itIsWrittenOnceAsTheStoreFileAndReopensTheSame() throws {
        let dir = try TemporaryDirectory()
        let store = try open(dir)
        for i in 0..<20 { try fixture.put("app/s\(i)", in: store) }
        let logBefore = try FileManager.default.attributesOfItem(atPath: dir.file(SecretStore.logFileName))[.size] as! Int
        #expect(try addVersionToEvery(store) == 20)
        let served = store.snapshot
        #expect(served.generation == 21 && served.secrets.allSatisfy { $0.versions.count == 2 })
        let file = try StoreFileFormat(parsing: Array(try Data(contentsOf: URL(fileURLWithPath: store.path))))
        #expect(file.generation == served.generation, "the store file holds the whole commit")
        let logAfter = try FileManager.default.attributesOfItem(atPath: dir.file(SecretStore.logFileName))[.size] as! Int
        #expect(logAfter < logBefore, "the log starts again after it, empty but for its header")
        let reopened = try open(dir)
        #expect(reopened.snapshot == served)
        try fixture.put("app/s0", in: reopened)
        #expect(try open(dir).snapshot == reopened.snapshot, "commits carry on in the new log")
    }

    @Test func itQueuesWhatItChangedForTheMirror() throws {
        let dir = try TemporaryDirectory()
        let store = try open(dir)
        for i in 0..<5 { try fixture.put("app/s\(i)", in: store) }
        store.keepsOutbox = true
        _ = try addVersionToEvery(store)
        let generation = store.snapshot.generation
        #expect(store.snapshot.outbox.count == 5)
        #expect(store.snapshot.outbox.allSatisfy { $0.value.generation == generation })
        #expect(try open(dir).snapshot.outbox == store.snapshot.outbox)
    }

    /// While the whole commit's file is written, a loop stages at once on
    /// the new state (no waiting for the store's lock); its commit is
    /// synced in the new log once the file is in place, and reopens so.
    @Test func aCommitStagedDuringTheWriteFollowsItInTheNewLog() throws {
        let dir = try TemporaryDirectory()
        let store = try open(dir)
        for i in 0..<5 { try fixture.put("app/s\(i)", in: store) }
        let staged = Mutex<CommitTicket?>(nil)
        let sawDuringWrite = Mutex<(served: UInt64, staged: Bool)?>(nil)
        let name = try SecretName("app/during")
        let fixture = self.fixture
        store.beforeWholeWrite.withLock { hook in
            hook = { [weak store] in
                guard let store else { return }
                // A prompt stage gives up after 500 µs when another thread
                // holds the lock (the syncer, on a busy machine): a few tries.
                var ticket: (Void, CommitTicket)?
                for _ in 0..<100 where ticket == nil {
                    ticket = try? store.stagePromptly(touching: 1) { storeID, secrets in
                        secrets[name] = try Self.newSecret(name, storeID: storeID, fixture: fixture)
                    }
                }
                staged.withLock { $0 = ticket?.1 }
                sawDuringWrite.withLock { $0 = (store.snapshot.generation, ticket != nil) }
            }
        }
        _ = try addVersionToEvery(store)
        #expect(sawDuringWrite.withLock { $0 }.map { $0.served == 5 && $0.staged } == true,
                "staged at once on the loop, while generation 5 was still served")
        try #require(staged.withLock { $0 }).wait()
        #expect(store.snapshot.generation == 7 && store.snapshot[name] != nil)
        // The next commit builds on both.
        try fixture.put("app/after", in: store)
        let after = try SecretName("app/after")
        #expect(store.snapshot.generation == 8 && store.snapshot[name] != nil && store.snapshot[after] != nil)
        let reopened = try open(dir)
        #expect(reopened.snapshot == store.snapshot)
        #expect(reopened.snapshot.secrets.allSatisfy { $0.name == name || $0.name.rawValue == "app/after" || $0.versions.count == 2 },
                "the whole commit is there too")
    }

    /// A store file dropped in while the whole commit's file is written is
    /// not renamed over either: the commit and what was staged on it fail,
    /// and the store goes on from what it served.
    @Test func aStoreFileDroppedInDuringTheWriteIsNotWrittenOver() throws {
        let dir = try TemporaryDirectory()
        let store = try open(dir)
        for i in 0..<3 { try fixture.put("app/s\(i)", in: store) }
        let before = store.snapshot
        let dropped = try store.exportedFile()
        let staged = Mutex<CommitTicket?>(nil)
        let fixture = self.fixture
        store.beforeWholeWrite.withLock { hook in
            hook = { [weak store] in
                guard let store else { return }
                let name = try! SecretName("app/during")
                staged.withLock { $0 = (try? store.stage { storeID, secrets in
                    secrets[name] = try Self.newSecret(name, storeID: storeID, fixture: fixture)
                })?.1 }
                try? Data(dropped).write(to: URL(fileURLWithPath: store.path + ".new"))
                rename(store.path + ".new", store.path)
            }
        }
        #expect { _ = try addVersionToEvery(store) } throws: { ($0 as? StoreError)?.code == .tampered }
        #expect(throws: StoreError.self) { try #require(staged.withLock { $0 }).wait() }
        #expect(store.snapshot == before)
        #expect(Array(try Data(contentsOf: URL(fileURLWithPath: store.path))) == dropped, "the dropped file is left for the watcher")
        let left = try FileManager.default.contentsOfDirectory(atPath: dir.path)
        #expect(!left.contains("store.log.next") && !left.contains { $0.contains(".tmp") }, "nothing of the abandoned write is left: \(left)")
        try fixture.put("app/s0", in: store)
        #expect(store.snapshot.generation == before.generation + 1, "the store goes on from what it served")
    }

    /// A store file dropped in (a restore, a copy from another host) is
    /// never written over: the whole commit is refused and nothing changes.
    @Test func aStoreFileDroppedInIsNotWrittenOver() throws {
        let dir = try TemporaryDirectory()
        let store = try open(dir)
        for i in 0..<3 { try fixture.put("app/s\(i)", in: store) }
        let before = store.snapshot
        let dropped = try store.exportedFile()
        try Data(dropped).write(to: URL(fileURLWithPath: store.path + ".new"))
        #expect(rename(store.path + ".new", store.path) == 0)
        #expect { _ = try addVersionToEvery(store) } throws: { ($0 as? StoreError)?.code == .tampered }
        #expect(store.snapshot == before)
        #expect(Array(try Data(contentsOf: URL(fileURLWithPath: store.path))) == dropped, "the dropped file is left for the watcher")
    }

    /// A commit asked for while the whole commit runs waits for it and
    /// builds on it: nothing is lost, and the order holds after a reopen.
    @Test func aCommitAskedForMeanwhileWaitsAndFollowsIt() throws {
        let dir = try TemporaryDirectory()
        let store = try open(dir)
        for i in 0..<5 { try fixture.put("app/s\(i)", in: store) }
        let asked = ConditionMutex(false)
        let finished = ConditionMutex<Result<UInt64, any Error>?>(nil)
        let fixture = self.fixture
        _ = try store.commitWhole { storeID, secrets in
            Thread.detachNewThread {
                asked.withLock { $0 = true }
                let outcome = Result { () throws -> UInt64 in
                    try fixture.put("app/late", in: store)
                    return store.snapshot.generation
                }
                finished.withLock { $0 = outcome }
            }
            // The other thread now asks for its commit, and waits.
            asked.withLock(when: { $0 }) { _ in }
            for name in secrets.base.names { secrets[name] = nil }
        }
        let late = try finished.withLock(when: { $0 != nil }) { $0! }.get()
        #expect(late == 7, "the late commit is the next generation after the whole one (6)")
        let reopened = try open(dir)
        #expect(reopened.snapshot.secrets.names == [try SecretName("app/late")])
        #expect(reopened.snapshot.generation == 7)
    }
}

/// A store file dropped in after the last check of the files, just before
/// the rename, is not written over either: the check and the rename are
/// one step (an exchange of the two names, undone when what came out is
/// not the file cofferd last saw).
@Suite struct DroppedInAtTheRenameTests {
    let fixture = SecretStoreTests()

    /// Drops `bytes` in as store.json once, when the store is about to rename.
    func dropIn(_ bytes: [UInt8], at store: SecretStore) {
        store.beforeSwitch.withLock {
            $0 = { [fixture, unowned store] in try? fixture.replaceFile(store, with: bytes) }
        }
    }

    func leftovers(in dir: TemporaryDirectory) throws -> [String] {
        try FileManager.default.contentsOfDirectory(atPath: dir.path).filter { $0.contains(".tmp-") || $0.hasSuffix(".next") }
    }

    @Test func aCompactionLeavesIt() throws {
        let dir = try TemporaryDirectory()
        let store = try SecretStore.open(directory: dir.path, authenticator: try fixture.authenticator())
        for i in 0..<3 { try fixture.put("app/s\(i)", in: store) }
        // What another host holds: not what this store compacts to.
        let dropped = try store.exportedFile()
        try fixture.put("app/more", in: store)
        dropIn(dropped, at: store)
        try store.compactNow()
        #expect(Array(try Data(contentsOf: URL(fileURLWithPath: store.path))) == dropped, "the dropped file is left for the watcher")
        #expect(try leftovers(in: dir).isEmpty)
        store.beforeSwitch.withLock { $0 = nil }
        try fixture.put("app/after", in: store)
    }

    @Test func aWholeCommitIsRefusedAndLeavesIt() throws {
        let dir = try TemporaryDirectory()
        let store = try SecretStore.open(directory: dir.path, authenticator: try fixture.authenticator())
        for i in 0..<3 { try fixture.put("app/s\(i)", in: store) }
        let before = store.snapshot
        let dropped = try store.exportedFile()
        dropIn(dropped, at: store)
        #expect {
            try store.commitWhole { _, secrets in secrets[try SecretName("app/s0")] = nil }
        } throws: { ($0 as? StoreError)?.code == .tampered }
        #expect(store.snapshot == before, "nothing changed")
        #expect(Array(try Data(contentsOf: URL(fileURLWithPath: store.path))) == dropped, "the dropped file is left for the watcher")
        #expect(try leftovers(in: dir).isEmpty)
    }
}
