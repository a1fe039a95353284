import CofferTestSupport
@testable import FileStore
import Foundation
import Keyring
import Model
import Seal
import Synchronization
import Testing

/// The store's log (docs/file-format.md, "The log"): commits are appended
/// and replayed; a crash loses nothing acknowledged; a changed, removed,
/// moved or repeated entry, or an older log or file, is refused; compaction
/// carries every commit over, also when a crash interrupts it.
@Suite struct StoreLogTests {
    let fixture = SecretStoreTests()

    func open(_ dir: TemporaryDirectory) throws -> SecretStore {
        try SecretStore.open(directory: dir.path, authenticator: try fixture.authenticator())
    }

    func logPath(_ dir: TemporaryDirectory) -> String { dir.file(SecretStore.logFileName) }

    func bytes(_ path: String) throws -> [UInt8] { Array(try Data(contentsOf: URL(fileURLWithPath: path))) }

    func write(_ bytes: [UInt8], to path: String) throws {
        try Data(bytes).write(to: URL(fileURLWithPath: path))
        chmod(path, 0o600)
    }

    /// `bytes` renamed over `path`, as a copy or `git pull` puts a file in place.
    func dropIn(_ bytes: [UInt8], over path: String) throws {
        try write(bytes, to: path + ".copy")
        rename(path + ".copy", path)
    }

    /// The same store opened from a copy of `dir`'s store file and log: a
    /// host that commits on its own.
    func anotherHost(of dir: TemporaryDirectory) throws -> (TemporaryDirectory, SecretStore) {
        let elsewhere = try TemporaryDirectory()
        for name in [SecretStore.fileName, SecretStore.logFileName] {
            try FileManager.default.copyItem(atPath: dir.file(name), toPath: elsewhere.file(name))
        }
        return (elsewhere, try open(elsewhere))
    }

    /// A store with `count` commits after its file, and the directory.
    func storeWithCommits(_ count: Int) throws -> (TemporaryDirectory, SecretStore) {
        let dir = try TemporaryDirectory()
        let store = try open(dir)
        store.keepsOutbox = true
        for i in 0..<count { try fixture.put("app/s\(i % 3)", in: store) }
        return (dir, store)
    }

    @Test func commitsGoToTheLogAndAReopenReplaysThem() throws {
        let (dir, store) = try storeWithCommits(5)
        _ = try store.commit { _, secrets in secrets.removeValue(forKey: try SecretName("app/s1")) }
        try store.dropFromOutbox([try SecretName("app/s0"): 6])
        let file = try StoreFileFormat(parsing: try bytes(store.path))
        #expect(file.generation == 0 && file.secrets.isEmpty, "store.json is the snapshot the log continues")
        let reopened = try open(dir)
        #expect(reopened.snapshot == store.snapshot)
        #expect(reopened.snapshot.generation == 7)
        #expect(reopened.snapshot.outbox == store.snapshot.outbox)
        #expect(reopened.snapshot.outbox[try SecretName("app/s1")] != nil, "a deletion is queued for the mirror")
        #expect(reopened.snapshot.outbox[try SecretName("app/s0")] == nil)
        #expect(reopened.snapshot[try SecretName("app/s1")] == nil)
        try fixture.put("app/s9", in: reopened)
        #expect(try open(dir).snapshot == reopened.snapshot, "commits carry on after a replay")
    }

    /// What a crash leaves after the last synced frame: a frame cut short
    /// anywhere, or one whose length arrived but not its bytes.
    @Test(arguments: ["length", "payload", "zeros", "half a frame"])
    func aTornTailIsDroppedAndNothingAcknowledgedIsLost(tail: String) throws {
        let (dir, store) = try storeWithCommits(4)
        let before = try bytes(logPath(dir))
        #expect(before.count > store.logEnd && before[store.logEnd...].allSatisfy { $0 == 0 }, "zeros ahead of the frames")
        let frames = StoreLogFormat.frames(in: Array(before.prefix(store.logEnd))).frames
        let last = before[(frames.last!.payload.lowerBound - 4)..<frames.last!.mac.upperBound]
        let torn: [UInt8]
        switch tail {
        case "length": torn = [0, 0, 1]
        case "payload": torn = [0, 0, 0, 200] + Array(repeating: 0x41, count: 50)
        case "zeros": torn = [0, 0, 0, 16] + Array(repeating: 0, count: 16 + 32)
        default: torn = Array(last.prefix(last.count / 2))
        }
        // The torn write lands where the next frame would have: over the
        // zeros the log is extended with ahead of its frames.
        let framesEnd = frames.last!.mac.upperBound
        var crashed = Array(before.prefix(framesEnd)) + torn
        if crashed.count < before.count { crashed += before[crashed.count...] }
        try write(crashed, to: logPath(dir))
        let reopened = try open(dir)
        #expect(reopened.snapshot == store.snapshot)
        let after = try bytes(logPath(dir))
        #expect(Array(after.prefix(framesEnd)) == Array(before.prefix(framesEnd)))
        #expect(after[framesEnd...].allSatisfy { $0 == 0 }, "the torn tail is cut off")
        try fixture.put("app/next", in: reopened)
        #expect(try open(dir).snapshot == reopened.snapshot)
    }

    /// Every commit was acknowledged, so store-generation holds the last:
    /// an entry changed, removed, moved or repeated is refused, never
    /// passed over.
    @Test(arguments: ["edit", "remove", "swap", "replay", "truncate"])
    func aChangedEntryIsRefused(change: String) throws {
        let (dir, store) = try storeWithCommits(5)
        let original = Array(try bytes(logPath(dir)).prefix(store.logEnd))
        let frames = StoreLogFormat.frames(in: original).frames
        func frame(_ i: Int) -> [UInt8] { Array(original[(frames[i].payload.lowerBound - 4)..<frames[i].mac.upperBound]) }
        var parts = (0..<frames.count).map(frame)
        switch change {
        case "edit":
            // One character of the payload, still valid JSON.
            var edited = parts[2]
            let at = try #require(String(decoding: edited, as: UTF8.self).range(of: "uid:0")).lowerBound.utf16Offset(in: String(decoding: edited, as: UTF8.self))
            edited[at + 4] = UInt8(ascii: "1")
            parts[2] = edited
        case "remove": parts.remove(at: 2)
        case "swap": parts.swapAt(2, 3)
        case "replay": parts.insert(parts[2], at: 3)
        default: parts.removeLast()
        }
        try write(parts.flatMap { $0 }, to: logPath(dir))
        let error = #expect(throws: StoreError.self) { try open(dir) }
        #expect(error?.code == .tampered, "\(change): \(String(describing: error))")
        #expect(error?.message.contains("rollback") == true)
        let untouched = try bytes(logPath(dir)) == parts.flatMap { $0 }
        #expect(untouched, "a refused log is left as it is, for whoever looks")
    }

    @Test func anOlderLogOrAnOlderFileIsRefusedAtStartup() throws {
        let (dir, store) = try storeWithCommits(2)
        let olderLog = try bytes(logPath(dir))
        try fixture.put("app/more", in: store)
        try write(olderLog, to: logPath(dir))
        #expect(throws: StoreError.self) { try open(dir) }

        let (second, other) = try storeWithCommits(2)
        let olderFile = try bytes(other.path)
        try other.compactNow()
        try write(olderFile, to: other.path)
        let error = #expect(throws: StoreError.self) { try open(second) }
        #expect(error?.message.contains("rollback") == true, "\(String(describing: error))")
    }

    /// With store-generation gone (as when going back on purpose), a log
    /// of this store whose commits reach past store.json still shows the
    /// file is older than what was served: refused, not set aside.
    @Test func aLogWithCommitsPastAnOlderFileRefusesTheStart() throws {
        let (dir, store) = try storeWithCommits(2)
        let older = try store.exportedFile()
        let compacted = try bytes(store.path)
        try fixture.put("app/later", in: store)
        try dropIn(older, over: store.path)
        unlink(dir.file("store-generation"))
        let error = #expect(throws: StoreError.self) { try open(dir) }
        #expect(error?.message.contains("rollback") == true, "\(String(describing: error))")
        // The file the log continues, put back, opens with every commit.
        try dropIn(compacted, over: store.path)
        #expect(try open(dir).snapshot == store.snapshot)
    }

    @Test func compactionWritesTheSnapshotAndCarriesOn() throws {
        let (dir, store) = try storeWithCommits(30)
        let grown = try bytes(logPath(dir)).count
        try store.compactNow()
        let file = try StoreFileFormat(parsing: try bytes(store.path))
        #expect(file.generation == store.snapshot.generation)
        #expect(try bytes(logPath(dir)).count < grown / 10, "the log starts again")
        #expect(try open(dir).snapshot == store.snapshot)
        try fixture.put("app/after", in: store)
        #expect(try open(dir).snapshot == store.snapshot)
        #expect(!FileManager.default.fileExists(atPath: dir.file(StoreLogFile.nextFileName)))
    }

    /// A compaction renames the new file, then the new log: a crash between
    /// the two leaves the new file, the old log, and the new log as
    /// store.log.next; before the first, a synced temp file and a new log
    /// that continues nothing on disk.
    @Test func aCrashDuringCompactionLosesNothing() throws {
        let (dir, store) = try storeWithCommits(6)
        let before = try TemporaryDirectory()
        for name in [SecretStore.fileName, SecretStore.logFileName, "store-generation"] {
            try FileManager.default.copyItem(atPath: dir.file(name), toPath: before.file(name))
        }
        let oldLog = try bytes(logPath(dir))
        try store.compactNow()
        try fixture.put("app/after", in: store)

        // Between the renames: the new log is still store.log.next.
        try write(try bytes(logPath(dir)), to: dir.file(StoreLogFile.nextFileName))
        try write(oldLog, to: logPath(dir))
        let resumed = try open(dir)
        #expect(resumed.snapshot == store.snapshot)
        #expect(!FileManager.default.fileExists(atPath: dir.file(StoreLogFile.nextFileName)))

        // Before the first: the old file and log, with the new ones beside.
        let snapshotBefore = try open(before).snapshot
        try write(try bytes(store.path), to: before.file(SecretStore.fileName + ".tmp-0123456789ab"))
        try write(try bytes(logPath(dir)), to: before.file(StoreLogFile.nextFileName))
        let untouched = try open(before)
        #expect(untouched.snapshot == snapshotBefore)
        #expect(!FileManager.default.fileExists(atPath: before.file(StoreLogFile.nextFileName)))
        #expect(!FileManager.default.fileExists(atPath: before.file(SecretStore.fileName + ".tmp-0123456789ab")))
    }

    /// Writers at once: every commit is answered only once durable, and
    /// all of them are there after a reopen.
    @Test func concurrentCommitsAreAllDurable() throws {
        let dir = try TemporaryDirectory()
        let store = try open(dir)
        let writers = 8, each = 25
        let failures = Mutex(0)
        let done = DispatchGroup()
        for w in 0..<writers {
            done.enter()
            Thread.detachNewThread {
                defer { done.leave() }
                for i in 0..<each {
                    do { try fixture.put("w\(w)/s\(i)", in: store) } catch { failures.withLock { $0 += 1 } }
                }
            }
        }
        done.wait()
        #expect(failures.withLock { $0 } == 0)
        #expect(store.snapshot.generation == UInt64(writers * each))
        let reopened = try open(dir)
        #expect(reopened.snapshot == store.snapshot)
        #expect(reopened.snapshot.secrets.count == writers * each)
    }

    /// Commits staged while a sync is under way (a slow disk, stood in for)
    /// are written and synced together by the next, each answered only
    /// then.
    @Test func commitsStagedDuringASyncShareTheNext() throws {
        let dir = try TemporaryDirectory()
        let store = try open(dir)
        let syncsBefore = store.logSyncs
        let highWaterSyncsBefore = store.highWaterSyncs
        let inSync = DispatchSemaphore(value: 0), release = DispatchSemaphore(value: 0)
        let first = Mutex(true)
        store.beforeSync.withLock { $0 = {
            guard first.withLock({ let was = $0; $0 = false; return was }) else { return }
            inSync.signal()
            release.wait()
        } }
        let (_, firstTicket) = try store.stage { storeID, secrets in
            let name = try SecretName("first")
            var secret = Secret(name: name, kind: .generic, protection: .sealed, versions: [])
            try secret.add(try fixture.version(1, of: name, storeID: storeID), pending: false, at: 1_700_000_000, by: "uid:0")
            secrets[name] = secret
        }
        inSync.wait()
        var tickets: [CommitTicket] = []
        for i in 0..<20 {
            let (_, ticket) = try store.stage { storeID, secrets in
                let name = try SecretName("later/\(i)")
                var secret = Secret(name: name, kind: .generic, protection: .sealed, versions: [])
                try secret.add(try fixture.version(1, of: name, storeID: storeID), pending: false, at: 1_700_000_000, by: "uid:0")
                secrets[name] = secret
            }
            tickets.append(ticket)
        }
        #expect(store.snapshot.generation == 0, "nothing is served before it is durable")
        release.signal()
        try firstTicket.wait()
        for ticket in tickets { try ticket.wait() }
        #expect(store.snapshot.generation == 21)
        #expect(store.logSyncs - syncsBefore == 2, "one sync for the first, one for the twenty staged meanwhile")
        #expect(try open(dir).snapshot == store.snapshot)
        // store-generation's sync, put off while commits waited, is made
        // once the syncer finds none for a moment.
        let deadline = ContinuousClock.now + .seconds(10)
        while store.highWaterUnsynced, ContinuousClock.now < deadline { Thread.sleep(forTimeInterval: 0.001) }
        #expect(!store.highWaterUnsynced && store.highWaterSyncs > highWaterSyncsBefore,
                "store-generation synced within 10 s of the last batch")
    }

    /// At run time: a log replaced by an older copy, or removed, is not
    /// taken; cofferd writes its own state back, which a restart finds.
    @Test(arguments: ["older", "removed"])
    func aLogChangedUnderARunningStoreIsWrittenBack(change: String) throws {
        let (dir, store) = try storeWithCommits(2)
        let older = try bytes(logPath(dir))
        try fixture.put("app/more", in: store)
        if change == "older" {
            try dropIn(older, over: logPath(dir))
        } else {
            unlink(logPath(dir))
        }
        let error = #expect(throws: StoreError.self) { try store.reload() }
        #expect(error?.code == .tampered)
        #expect(try open(dir).snapshot == store.snapshot)
        try fixture.put("app/after", in: store)
        #expect(try open(dir).snapshot == store.snapshot)
    }

    /// A file of the same store and a newer generation dropped in replaces
    /// snapshot and log; the commits after it survive a restart.
    @Test func aDroppedInNewerFileReplacesSnapshotAndLog() throws {
        let (dir, store) = try storeWithCommits(2)
        let (elsewhere, other) = try anotherHost(of: dir)
        defer { withExtendedLifetime(elsewhere) {} }
        for i in 0..<3 { try fixture.put("other/s\(i)", in: other) }
        try dropIn(try other.exportedFile(), over: store.path)
        guard case .replaced = try store.reload() else {
            Issue.record("the newer file was not taken")
            return
        }
        #expect(store.snapshot == other.snapshot)
        try fixture.put("app/after", in: store)
        let reopened = try open(dir)
        #expect(reopened.snapshot == store.snapshot)
        #expect(reopened.snapshot[try SecretName("other/s2")] != nil)
    }

    /// An export of what is served, put in place as store.json: nothing
    /// new to serve, but the log must now continue this file, or a restart
    /// could not replay the commits that follow onto it.
    @Test func anExportOfWhatIsServedPutInPlaceIsContinued() throws {
        let (dir, store) = try storeWithCommits(3)
        try store.compactNow()
        try fixture.put("app/after-compaction", in: store)
        try dropIn(try store.exportedFile(), over: store.path)
        guard case .unchanged = try store.reload() else {
            Issue.record("the same state was taken as a change")
            return
        }
        try fixture.put("app/after-export", in: store)
        #expect(try open(dir).snapshot == store.snapshot)
    }

    /// A file dropped in while a compaction runs is the watcher's to read:
    /// the compaction does not rename over it.
    @Test func aCompactionNeverRenamesOverADroppedInFile() throws {
        let (dir, store) = try storeWithCommits(3)
        let (elsewhere, other) = try anotherHost(of: dir)
        defer { withExtendedLifetime(elsewhere) {} }
        for i in 0..<3 { try fixture.put("other/s\(i)", in: other) }
        let dropped = try other.exportedFile()
        try dropIn(dropped, over: store.path)
        try store.compactNow()
        #expect(try bytes(store.path) == dropped, "the dropped-in file is still there")
        guard case .replaced = try store.reload() else {
            Issue.record("the dropped-in file was not taken")
            return
        }
        #expect(store.snapshot == other.snapshot)
    }

    /// What a compaction carries into the new log is read back from the
    /// old one and checked against its chain: an entry changed on disk in
    /// place is refused, never MAC'd again.
    @Test func carriedEntriesAreCheckedBeforeTheyAreCarried() throws {
        let (dir, store) = try storeWithCommits(4)
        let end = store.logEnd
        // A second handle on the log as written, as the store holds it.
        let second = try #require(try StoreLogFile.open(in: dir.path, keyFor: { try? fixture.authenticator().mac(forKeyID: $0, for: .storeLog) }))
        var changed = try bytes(logPath(dir))
        let frames = StoreLogFormat.frames(in: Array(changed.prefix(end))).frames
        let text = String(decoding: changed[frames[3].payload], as: UTF8.self)
        let at = try #require(text.range(of: "uid:0")).lowerBound.utf16Offset(in: text) + frames[3].payload.lowerBound
        changed[at + 4] = UInt8(ascii: "1")
        let handle = try FileHandle(forWritingTo: URL(fileURLWithPath: logPath(dir)))
        try handle.write(contentsOf: changed)
        try handle.close()
        let key = try #require(try fixture.authenticator().mac(forKeyID: second.log.header.macKeyID, for: .storeLog))
        _ = try second.log.payloads(after: 3, key: key)
        let error = #expect(throws: StoreError.self) { try second.log.payloads(after: 1, key: key) }
        #expect(error?.code == .tampered)
        _ = store
    }
}
