import CofferTestSupport
@testable import FileStore
import Foundation
import Model
import Synchronization
import Syscalls
import Testing

/// What cofferd writes over, and what a crash in the middle of a restore
/// leaves: a log copied back over itself is noticed, a repair writes only
/// over the file it refused, and a restore cut short opens again.
@Suite struct StoreRepairTests {
    let fixture = SecretStoreTests()

    func open(_ dir: TemporaryDirectory) throws -> SecretStore {
        try SecretStore.open(directory: dir.path, authenticator: try fixture.authenticator())
    }

    func bytes(_ path: String) throws -> [UInt8] { Array(try Data(contentsOf: URL(fileURLWithPath: path))) }

    /// An older copy of the log written over it in place (`cp` keeps the
    /// inode, and the zeros ahead of the frames the size): a reload notices
    /// and writes cofferd's own state back, and every acknowledged commit
    /// is still there after a restart.
    @Test func aLogCopiedBackOverItselfIsNoticed() throws {
        let dir = try TemporaryDirectory()
        let store = try open(dir)
        try fixture.put("app/a", in: store)
        let older = try bytes(dir.file(SecretStore.logFileName))
        try fixture.put("app/b", in: store)
        let handle = try #require(FileHandle(forWritingAtPath: dir.file(SecretStore.logFileName)))
        try handle.seek(toOffset: 0)
        try handle.write(contentsOf: older)
        try handle.close()

        #expect { try store.reload() } throws: { ($0 as? StoreError)?.code == .tampered }
        try fixture.put("app/c", in: store)
        let reopened = try open(dir)
        #expect(reopened.snapshot == store.snapshot)
        #expect(reopened.snapshot.secrets.count == 3)
    }

    /// A backup put back over the live directory, store file and log both:
    /// refused as a rollback, and cofferd's own files are written back
    /// (the log's check first finds the log replaced; the store file then
    /// decides). Nothing acknowledged after it is lost.
    @Test func aBackupPutBackOverBothFilesIsRefusedAndWrittenBack() throws {
        let dir = try TemporaryDirectory()
        let store = try open(dir)
        try fixture.put("app/a", in: store)
        try store.compactNow()
        let backup = try TemporaryDirectory()
        for name in [SecretStore.fileName, SecretStore.logFileName] {
            try FileManager.default.copyItem(atPath: dir.file(name), toPath: backup.file(name))
        }
        try fixture.put("app/b", in: store)
        try store.compactNow()
        try fixture.put("app/c", in: store)
        for name in [SecretStore.fileName, SecretStore.logFileName] {
            #expect(rename(backup.file(name), dir.file(name)) == 0)
        }
        #expect { try store.reload() } throws: { ($0 as? StoreError)?.code == .tampered }
        try fixture.put("app/d", in: store)
        let reopened = try open(dir)
        #expect(reopened.snapshot == store.snapshot)
        #expect(reopened.snapshot.secrets.count == 4)
    }

    /// A refused file is written back over; a good one dropped in after it,
    /// before the repair's rename, is not, and is left for the watcher.
    @Test func aRepairWritesOnlyOverTheFileItRefused() throws {
        let (dir, writer, reader) = try fixture.twoHandles()
        try fixture.put("c", in: writer)
        let good = try writer.exportedFile()
        try fixture.replaceFile(reader, with: Array("not a store file".utf8))
        reader.beforeSwitch.withLock {
            $0 = { [fixture] in try? fixture.replaceFile(reader, with: good) }
        }
        #expect(throws: StoreError.self) { try reader.reload() }
        #expect(try bytes(reader.path) == good, "the file dropped in after the refused one is not written over")
        reader.beforeSwitch.withLock { $0 = nil }
        guard case .replaced = try reader.reload() else {
            Issue.record("the watcher's next reload takes the good file")
            return
        }
        #expect(reader.snapshot == writer.snapshot)
        withExtendedLifetime(dir) {}
    }

    /// A restore puts another store's file in place. Its files as a crash
    /// would leave them just after the store file's rename (copied from
    /// inside the directory sync that follows it) open again, as the
    /// restored store, instead of being refused as another store's.
    @Test func aRestoreCutShortOpensAgain() throws {
        let dir = try TemporaryDirectory()
        let store = try open(dir)
        let crash = try TemporaryDirectory()
        final class Once: Sendable { let done = Atomic<Bool>(false) }
        let copied = Once()
        store.beforeDirectorySync.withLock {
            $0 = { [dir, crash] in
                guard !copied.done.exchange(true, ordering: .relaxed) else { return }
                for name in try FileManager.default.contentsOfDirectory(atPath: dir.path) where !name.contains(".tmp-") {
                    try FileManager.default.copyItem(atPath: dir.file(name), toPath: crash.file(name))
                }
            }
        }
        let other = String(repeating: "ab", count: 16)
        let name = try SecretName("app/restored")
        var secret = Secret(name: name, kind: .generic, protection: .sealed, versions: [])
        try secret.add(try fixture.version(1, of: name, storeID: other), pending: false, at: 1_700_000_000, by: "uid:0")
        try store.restore(storeID: other, secrets: [name: secret])
        let didCopy = copied.done.load(ordering: .relaxed)
        #expect(didCopy, "the crash point was reached")

        let afterCrash = try open(crash)
        #expect(afterCrash.snapshot.storeID == other && afterCrash.snapshot.secrets[name] != nil)
        try fixture.put("app/next", in: afterCrash)
        let recorded = try String(contentsOfFile: crash.file(StoreHighWater.fileName), encoding: .utf8)
        #expect(!recorded.contains("pending"), "the pending line is gone once recorded")
        #expect(try open(crash).snapshot == afterCrash.snapshot)
        #expect(try open(dir).snapshot == store.snapshot)
    }

    /// A pending line a crash left behind a later record (the record's
    /// write reached the disk, not its cut of the file) names nothing newer
    /// than that record: an older file of the same store is still refused.
    @Test func aPendingLineBehindTheRecordIsIgnored() throws {
        let dir = try TemporaryDirectory()
        let store = try open(dir)
        for i in 0..<3 { try fixture.put("app/s\(i)", in: store) }
        let older = try store.exportedFile()
        for i in 3..<5 { try fixture.put("app/s\(i)", in: store) }
        let storeID = store.snapshot.storeID
        try ("\(storeID) 00000000000000000005\npending \(storeID) 00000000000000000002\n")
            .write(toFile: dir.file(StoreHighWater.fileName), atomically: false, encoding: .utf8)
        try fixture.replaceFile(store, with: older)
        unlink(dir.file(SecretStore.logFileName))
        #expect { _ = try open(dir) } throws: { ($0 as? StoreError)?.code == .tampered }
    }

    /// A newer file a reload could not take (here its new log could not be
    /// started) is not the file the log continues: commits wait on it,
    /// answered as not durable, until a later reload takes it.
    @Test func commitsWaitOnAFileAReloadCouldNotTake() throws {
        let (dir, writer, reader) = try fixture.twoHandles()
        for name in ["c", "c2", "c3"] { try fixture.put(name, in: writer) }
        // store.log.next cannot be made: a directory holds its name.
        try FileManager.default.createDirectory(atPath: dir.file(StoreLogFile.nextFileName), withIntermediateDirectories: false)
        try fixture.publish(writer)
        #expect { try reader.reload() } throws: { ($0 as? StoreError)?.code == .io }
        #expect(reader.waitsOnAStoreFile)
        // Made and served meanwhile, but not acknowledged: the newer file,
        // once taken, replaces it.
        #expect { try fixture.put("d", in: reader) } throws: { ($0 as? StoreError)?.code == .notDurable }

        try FileManager.default.removeItem(atPath: dir.file(StoreLogFile.nextFileName))
        guard case .replaced = try reader.reload() else {
            Issue.record("the watcher's next try takes the file")
            return
        }
        #expect(!reader.waitsOnAStoreFile)
        #expect(reader.snapshot == writer.snapshot)
        try fixture.put("e", in: reader)
        // The compaction the doubt asked for may still run: a second handle
        // opened meanwhile would take its store.log.next for a leftover.
        let deadline = ContinuousClock.now + .seconds(10)
        while reader.isCompacting, ContinuousClock.now < deadline { Thread.sleep(forTimeInterval: 0.001) }
        #expect(!reader.isCompacting, "the compaction ended within 10 s")
        #expect(try open(dir).snapshot == reader.snapshot)
    }

    /// An empty store waiting for a restore commits nothing that would clear
    /// a doubt: the restore clears it itself.
    @Test func aRestoreClearsADoubtOnAnIdleStore() throws {
        let dir = try TemporaryDirectory()
        let disk = DirectorySyncTests.FailingDirectory()
        disk.failing.store(true, ordering: .relaxed)
        let store = try SecretStore.open(directory: dir.path, authenticator: try fixture.authenticator(),
                                         beforeDirectorySync: disk.sync)
        #expect(store.filesAreInDoubt)
        disk.failing.store(false, ordering: .relaxed)
        let other = String(repeating: "ef", count: 16)
        try store.restore(storeID: other, secrets: [:])
        #expect(store.snapshot.storeID == other && !store.filesAreInDoubt)
    }

    /// A store-generation of zeros (a crash before its first sync, on a file
    /// system that wrote the size first) is a file never written.
    @Test func aStoreGenerationOfZerosIsNeverWritten() throws {
        let dir = try TemporaryDirectory()
        try fixture.put("app/a", in: try open(dir))
        try Data(count: 54).write(to: URL(fileURLWithPath: dir.file(StoreHighWater.fileName)))
        #expect(try open(dir).snapshot.secrets.count == 1)
    }

    /// A store-generation that cannot be read refuses the start rather than
    /// turn the rollback check off.
    @Test func anUnreadableStoreGenerationRefusesTheStart() throws {
        let dir = try TemporaryDirectory()
        try fixture.put("app/a", in: try open(dir))
        try "x\ny\nz\n".write(toFile: dir.file(StoreHighWater.fileName), atomically: false, encoding: .utf8)
        #expect { _ = try open(dir) } throws: { ($0 as? StoreError)?.code == .corrupt }
        unlink(dir.file(StoreHighWater.fileName))
        #expect(try open(dir).snapshot.secrets.count == 1, "removed, the start goes on without the check")
    }

    /// The pending line names one state only: another store's file is still
    /// refused.
    @Test func aPendingRestoreAcceptsOnlyWhatItNames() throws {
        let dir = try TemporaryDirectory()
        let store = try open(dir)
        try fixture.put("app/a", in: store)
        let file = try bytes(store.path)
        let generation = try String(contentsOfFile: dir.file(StoreHighWater.fileName), encoding: .utf8)
        // A generation the stranger's file reaches: only its store id is wrong.
        try (generation + "pending " + String(repeating: "cd", count: 16) + " 00000000000000000001\n")
            .write(toFile: dir.file(StoreHighWater.fileName), atomically: false, encoding: .utf8)
        let elsewhere = try TemporaryDirectory()
        let stranger = try open(elsewhere)
        try fixture.put("app/x", in: stranger)
        try fixture.replaceFile(store, with: try bytes(stranger.path))
        #expect { _ = try open(dir) } throws: { ($0 as? StoreError)?.code == .tampered }
        try fixture.replaceFile(store, with: file)
        #expect(try open(dir).snapshot.generation == store.snapshot.generation, "the store it served still opens")
    }
}
