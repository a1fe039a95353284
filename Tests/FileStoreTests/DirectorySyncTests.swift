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

        /// Stands before each directory sync: counts it, and fails it
        /// while `failing`.
        var sync: @Sendable () throws -> Void {
            { [self] in
                syncs.add(1, ordering: .relaxed)
                if failing.load(ordering: .relaxed) { throw DiskError() }
            }
        }

        func attach(to store: SecretStore) {
            store.beforeDirectorySync.withLock { $0 = sync }
        }
    }

    /// The generation store-generation holds.
    func recordedGeneration(_ dir: TemporaryDirectory) throws -> UInt64? {
        let text = try String(contentsOfFile: dir.file(StoreHighWater.fileName), encoding: .utf8)
        return text.split(separator: "\n").first?.split(separator: " ").last.flatMap { UInt64($0) }
    }

    func open(_ dir: TemporaryDirectory) throws -> SecretStore {
        try SecretStore.open(directory: dir.path, authenticator: try fixture.authenticator())
    }

    func expectNotDurable(_ put: () throws -> Void, _ comment: Comment) {
        do {
            try put()
            Issue.record(comment)
        } catch let error as StoreError {
            #expect(error.code == .notDurable, comment)
        } catch {
            Issue.record("unexpected \(error)")
        }
    }

    /// Waits, at most 10 s, until `done`.
    func waitUntil(_ what: String, _ done: () -> Bool) {
        let deadline = ContinuousClock.now + .seconds(10)
        while !done() {
            guard ContinuousClock.now < deadline else {
                Issue.record("\(what) did not happen within 10 s")
                return
            }
            Thread.sleep(forTimeInterval: 0.001)
        }
    }

    /// The disk works again (the compaction the last failed commit asked
    /// for has ended, failing too): a commit is still not answered as
    /// durable, since a sync that now succeeds does not show that the
    /// failed one's renames reached the disk. It has the store write its
    /// files again, and once that is done commits are answered as before.
    func recover(_ store: SecretStore, _ disk: FailingDirectory) throws {
        waitUntil("the compaction asked for while the disk failed") { !store.isCompacting }
        disk.failing.store(false, ordering: .relaxed)
        expectNotDurable({ try fixture.put("app/recovering", in: store) }, "not until the files are in place again")
        waitUntil("putting the files in place again") { !store.filesAreInDoubt }
        try fixture.put("app/recovered", in: store)
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
        let recorded = try recordedGeneration(dir)
        expectNotDurable({ try fixture.put("app/during", in: store) },
                         "a commit in the new log, whose rename may not be durable, is not acknowledged")
        #expect(try recordedGeneration(dir) == recorded,
                "store-generation does not move ahead of files a power loss could take back")
        let during = try SecretName("app/during")
        #expect(store.snapshot.generation == compacted + 1 && store.snapshot.secrets[during] != nil,
                "written and served all the same")

        try recover(store, disk)
        let syncs = disk.syncs.load(ordering: .relaxed)
        try fixture.put("app/later", in: store)
        #expect(disk.syncs.load(ordering: .relaxed) == syncs, "then commits no longer touch the directory")
        #expect(try recordedGeneration(dir) == store.snapshot.generation, "recorded again once the files are in place")
        let reopened = try open(dir)
        #expect(reopened.snapshot == store.snapshot, "nothing written meanwhile is lost")
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

        try recover(store, disk)
        #expect(try open(dir).snapshot == store.snapshot)
    }

    /// A reload that took a newer file serves it even when the directory's
    /// sync after its new log failed: commits go into that log, so they
    /// must build on that file (a restart replays them onto it).
    @Test func aReloadWhoseDirectorySyncFailedServesTheNewFileAndCommitsBuildOnIt() throws {
        let (dir, writer, reader) = try fixture.twoHandles()
        let disk = FailingDirectory()
        disk.attach(to: reader)
        try fixture.put("c", in: writer)
        try fixture.publish(writer)

        disk.failing.store(true, ordering: .relaxed)
        let error = #expect(throws: StoreError.self) { try reader.reload() }
        #expect(error?.code == .notDurable)
        #expect(reader.snapshot == writer.snapshot, "the new file is served")
        expectNotDurable({ try fixture.put("d", in: reader) }, "not acknowledged while the new log may not be durable")

        try recover(reader, disk)
        let reopened = try open(dir)
        #expect(reopened.snapshot == reader.snapshot, "the commits replay onto the file they were built on")
        #expect(reopened.snapshot.secrets.count == 6)
    }

    /// A store opened as a run that died before its directory sync left it:
    /// nothing is answered as durable until a sync of it goes through after
    /// the files are put in place again.
    @Test func aStoreWhoseDirectoryDoesNotSyncAtOpenAnswersNothingAsDurable() throws {
        let dir = try TemporaryDirectory()
        try fixture.put("app/a", in: try open(dir))
        let disk = FailingDirectory()
        disk.failing.store(true, ordering: .relaxed)
        let store = try SecretStore.open(directory: dir.path, authenticator: try fixture.authenticator(),
                                         beforeDirectorySync: disk.sync)
        #expect(store.filesAreInDoubt)
        expectNotDurable({ try fixture.put("app/b", in: store) }, "not acknowledged")
        try recover(store, disk)
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
