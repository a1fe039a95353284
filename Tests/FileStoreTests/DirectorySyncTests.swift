import CofferTestSupport
@testable import FileStore
import Foundation
import Model
import Synchronization
import Syscalls
import Testing

/// When the store's directory cannot be synced after cofferd renamed a new
/// store file and log into place (a compaction, a whole commit, a restore,
/// a reload's new log), the renames may not survive a power loss, and with
/// them every commit the new log holds. No such commit is answered as
/// durable until a sync of the directory goes through.
@Suite struct DirectorySyncTests {
    let fixture = SecretStoreTests()

    struct DiskError: Error {}

    /// A directory whose syncs fail while `failing` is set; counts them.
    final class FailingDirectory: Sendable {
        let failing = Atomic<Bool>(false)
        let syncs = Atomic<Int>(0)

        func attach(to store: SecretStore) {
            store.beforeDirectorySync.withLock {
                $0 = { [self] in
                    syncs.add(1, ordering: .relaxed)
                    if failing.load(ordering: .relaxed) { throw DiskError() }
                }
            }
        }
    }

    func open(_ dir: TemporaryDirectory) throws -> SecretStore {
        try SecretStore.open(directory: dir.path, authenticator: try fixture.authenticator())
    }

    func expectNotDurable(_ put: () throws -> Void, _ comment: Comment) {
        do {
            try put()
            Issue.record(comment)
        } catch let error as StoreError {
            #expect(error.code == .io, comment)
        } catch {
            Issue.record("unexpected \(error)")
        }
    }

    @Test func aCommitAfterACompactionWhoseDirectorySyncFailedIsNotAnsweredAsDurable() throws {
        let dir = try TemporaryDirectory()
        let store = try open(dir)
        let disk = FailingDirectory()
        disk.attach(to: store)
        try fixture.put("app/before", in: store)

        disk.failing.store(true, ordering: .relaxed)
        #expect(throws: DiskError.self, "the compaction tells of it") { try store.compactNow() }
        let compacted = store.snapshot.generation
        expectNotDurable({ try fixture.put("app/during", in: store) },
                         "a commit in the new log, whose rename may not be durable, is not acknowledged")
        let during = try SecretName("app/during")
        #expect(store.snapshot.generation == compacted + 1 && store.snapshot.secrets[during] != nil,
                "written and served all the same")

        disk.failing.store(false, ordering: .relaxed)
        try fixture.put("app/after", in: store)
        let syncsAfterRecovery = disk.syncs.load(ordering: .relaxed)
        try fixture.put("app/later", in: store)
        #expect(disk.syncs.load(ordering: .relaxed) == syncsAfterRecovery,
                "once the directory synced, commits no longer sync it")
        let reopened = try open(dir)
        #expect(reopened.snapshot == store.snapshot)
    }

    @Test func aCommitAfterAWholeCommitWhoseDirectorySyncFailedIsNotAnsweredAsDurable() throws {
        let dir = try TemporaryDirectory()
        let store = try open(dir)
        let disk = FailingDirectory()
        disk.attach(to: store)
        for i in 0..<3 { try fixture.put("app/s\(i)", in: store) }

        disk.failing.store(true, ordering: .relaxed)
        #expect(throws: StoreError.self, "the whole commit tells of it") {
            try store.commitWhole { _, secrets in secrets[try SecretName("app/s0")] = nil }
        }
        let removed = try SecretName("app/s0")
        #expect(store.snapshot.secrets[removed] == nil, "in place and served")
        expectNotDurable({ try fixture.put("app/during", in: store) }, "not acknowledged while the directory does not sync")
        expectNotDurable({ try fixture.put("app/during", in: store) }, "nor the next")

        disk.failing.store(false, ordering: .relaxed)
        try fixture.put("app/after", in: store)
        #expect(try open(dir).snapshot == store.snapshot)
    }

    @Test func commitsAreAnsweredAsBeforeWhenNoSwitchFailed() throws {
        let dir = try TemporaryDirectory()
        let store = try open(dir)
        let disk = FailingDirectory()
        disk.attach(to: store)
        try fixture.put("app/a", in: store)
        try store.compactNow()
        let syncs = disk.syncs.load(ordering: .relaxed)
        #expect(syncs > 0, "the compaction synced the directory through the hook")
        for i in 0..<5 { try fixture.put("app/b\(i)", in: store) }
        #expect(disk.syncs.load(ordering: .relaxed) == syncs, "a commit does not sync the directory")
    }
}
