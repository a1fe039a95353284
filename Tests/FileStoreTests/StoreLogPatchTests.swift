import CofferTestSupport
@testable import FileStore
import Foundation
import Keyring
import Model
import Seal
import Synchronization
import Testing

/// Patches in the store log (docs/file-format.md, "The log"): a commit to
/// a secret that existed writes only what changed and names the versions
/// it kept; replay rebuilds the whole secret; a patch that does not fit
/// the secret is refused; and a log of format version 1 (whole secrets
/// only) is still read, and written again as version 2.
@Suite struct StoreLogPatchTests {
    let logs = StoreLogTests()
    var fixture: SecretStoreTests { logs.fixture }

    /// The entries of the log in `dir`, as cofferd reads them.
    func entries(_ dir: TemporaryDirectory) throws -> (header: StoreLogFormat.Header, entries: [StoreLogFormat.Entry]) {
        let authenticator = try fixture.authenticator()
        let recovered = try #require(try StoreLogFile.open(in: dir.path) { authenticator.mac(forKeyID: $0, for: .storeLog) })
        return (recovered.log.header, recovered.entries)
    }

    @Test func aPutWritesOnlyItsNewVersionAndNamesTheKeptOnes() throws {
        let dir = try TemporaryDirectory()
        let store = try logs.open(dir)
        for _ in 0..<5 { try fixture.put("app/a", in: store) }
        let (header, entries) = try entries(dir)
        #expect(header.formatVersion == 2)
        #expect(entries.first?.secrets.map(\.name.rawValue) == ["app/a"], "a new secret is written whole")
        let last = try #require(entries.last)
        #expect(last.secrets.isEmpty && last.patched.count == 1)
        #expect(last.patched.first?.secret.versions.map(\.version) == [5], "only the new version")
        #expect(last.patched.first?.kept == [1, 2, 3, 4])
        #expect(try logs.open(dir).snapshot == store.snapshot, "replay rebuilds the whole secret")
    }

    /// A version changed in place (as a master-key rotation reseals it) is
    /// written, not kept.
    @Test func aChangedVersionIsWrittenNotKept() throws {
        let dir = try TemporaryDirectory()
        let store = try logs.open(dir)
        for _ in 0..<3 { try fixture.put("app/a", in: store) }
        let name = try SecretName("app/a")
        try store.commit { storeID, secrets in
            var secret = try #require(secrets[name])
            secret.versions[0] = try fixture.version(1, of: name, storeID: storeID)
            secrets[name] = secret
        }
        let patch = try #require(try entries(dir).entries.last?.patched.first)
        #expect(patch.secret.versions.map(\.version) == [1])
        #expect(patch.kept == [2, 3])
        #expect(try logs.open(dir).snapshot == store.snapshot)
    }

    enum BadPatch: String, CaseIterable { case missingSecret, unknownVersion, keptAndGiven, keptOutOfOrder, noKept, inVersionOneLog }

    /// Each is refused as corrupt, whatever its MAC: a patch is applied to
    /// the secret as replay has it, never guessed.
    @Test(arguments: BadPatch.allCases)
    func aPatchThatDoesNotFitIsRefused(_ bad: BadPatch) throws {
        let dir = try TemporaryDirectory()
        let store = try logs.open(dir)
        for _ in 0..<2 { try fixture.put("app/a", in: store) }
        let payload = try #require(try entries(dir).entries.last).patched
        var patch = try #require(payload.first)
        let prior: Secret? = store.snapshot[try SecretName("app/a")]
        let name = try SecretName("app/a")
        let error: StoreError
        switch bad {
        case .missingSecret:
            error = try #require(throws: StoreError.self) { try patch.applied(to: nil, named: name) }
        case .unknownVersion:
            patch.kept = [1, 7]
            error = try #require(throws: StoreError.self) { try patch.applied(to: prior, named: name) }
        case .keptAndGiven:
            patch.kept = [1, 2]
            error = try #require(throws: StoreError.self) { try patch.applied(to: prior, named: name) }
        case .keptOutOfOrder:
            patch.kept = [1, 1]
            error = try #require(throws: StoreError.self) { try patch.applied(to: prior, named: name) }
        case .noKept, .inVersionOneLog:
            var text = String(decoding: StoreLogFormat.encode(StoreLogFormat.Entry(generation: 9, patched: [patch])), as: UTF8.self)
            if bad == .noKept { text = text.replacingOccurrences(of: #""kept":[1],"#, with: "") }
            #expect(text.contains(#""patched""#))
            error = try #require(throws: StoreError.self) {
                try StoreLogFormat.entry(parsing: Array(text.utf8), formatVersion: bad == .inVersionOneLog ? 1 : 2)
            }
        }
        #expect(error.code == .corrupt)
    }

    /// A log written by a cofferd of log format 1 (every commit's secrets
    /// whole) replays, and is written again as version 2 carrying its
    /// commits, so that new commits' patches go into a log that allows them.
    @Test func aVersionOneLogIsReadAndRewrittenAsVersionTwo() throws {
        let dir = try TemporaryDirectory()
        var state = try logs.open(dir).snapshot
        let header = try entries(dir).header
        let authenticator = try fixture.authenticator()
        let key = try #require(authenticator.mac(forKeyID: header.macKeyID, for: .storeLog))
        // Two commits to one secret, each whole, as version 1 wrote them.
        let name = try SecretName("app/a")
        var payloads: [[UInt8]] = []
        var secret = Secret(name: name, kind: .generic, protection: .sealed, versions: [])
        for generation in 1...2 as ClosedRange<UInt64> {
            try secret.add(try fixture.version(secret.nextVersion, of: name, storeID: state.storeID), pending: false,
                           at: 1_700_000_000, by: "uid:0")
            payloads.append(StoreLogFormat.encode(StoreLogFormat.Entry(generation: generation, secrets: [secret])))
        }
        var old = header
        old.formatVersion = 1
        let written = try StoreLogFile.prepare(in: dir.path, header: old, carrying: payloads, key: key)
        try written.install(in: dir.path)
        #expect(String(decoding: try logs.bytes(logs.logPath(dir)), as: UTF8.self).contains(#""format_version":1"#))

        let reopened = try logs.open(dir)
        #expect(reopened.snapshot.generation == 2)
        #expect(reopened.snapshot[name] == secret)
        let (upgraded, carried) = try entries(dir)
        #expect(upgraded.formatVersion == 2)
        #expect(carried.map(\.generation) == [1, 2], "the commits are carried into the new log")
        try fixture.put("app/a", in: reopened)
        state = reopened.snapshot
        #expect(try entries(dir).entries.last?.patched.first?.kept == [1, 2])
        #expect(try logs.open(dir).snapshot == state)
    }
}

/// Staging on a thread that must not wait (an event loop) never packs the
/// snapshot's secrets anew (a copy of every record): a change that could
/// is left to a thread that may wait, and nothing of it runs.
@Suite struct StagePromptlyTests {
    let logs = StoreLogTests()

    @Test func aChangeThatCouldPackIsLeftToTheBlockingPool() throws {
        let dir = try TemporaryDirectory()
        let store = try logs.open(dir)
        // A store this small packs once its layer passes 64 names.
        for i in 0..<60 { try logs.fixture.put("app/s\(i)", in: store) }
        let ran = Mutex(false)
        let refused = try store.stagePromptly(touching: 5) { _, _ in ran.withLock { $0 = true } }
        #expect(refused == nil && !ran.withLock { $0 }, "five more names could pack: nothing ran")
        let staged = try #require(try store.stagePromptly(touching: 1) { _, secrets in
            secrets[try SecretName("app/s0")] = nil
        })
        try staged.1.wait()
        #expect(store.snapshot[try SecretName("app/s0")] == nil)
    }

    /// With the mirror's outbox kept, a change that could make the outbox
    /// pack its layer (a copy of every entry) is left to the pool too, even
    /// when the secrets' layer has room.
    @Test func aChangeThatCouldPackTheOutboxIsLeftToTheBlockingPool() throws {
        let dir = try TemporaryDirectory()
        let store = try logs.open(dir)
        let fixture = logs.fixture
        try store.commit { storeID, secrets in
            for i in 0..<600 {
                let name = try SecretName("app/s\(i)")
                var secret = Secret(name: name, kind: .generic, protection: .sealed, versions: [])
                try secret.add(try fixture.version(1, of: name, storeID: storeID), pending: false, at: 1_700_000_000, by: "uid:0")
                secrets[name] = secret
            }
        }
        store.keepsOutbox = true
        try store.queueEverything()
        let generation = store.snapshot.generation
        // 70 entries dropped through the outbox's layer (its bound is 75 at
        // 600 entries); the secrets' layer stays empty.
        try store.dropFromOutbox(Dictionary(uniqueKeysWithValues: try (0..<70).map { (try SecretName("app/s\($0)"), generation) }))
        #expect(store.snapshot.outbox.layerCount == 70 && store.snapshot.secrets.hasRoom(for: 10))
        let ran = Mutex(false)
        let refused = try store.stagePromptly(touching: 10) { _, _ in ran.withLock { $0 = true } }
        #expect(refused == nil && !ran.withLock { $0 }, "ten more outbox entries could pack: nothing ran")
        let staged = try #require(try store.stagePromptly(touching: 2) { _, secrets in
            secrets[try SecretName("app/s599")] = nil
        })
        try staged.1.wait()
        #expect(store.snapshot.outbox[try SecretName("app/s599")]?.generation == generation + 2)
    }

    /// While an exclusive operation (a reload, a compaction's switch) runs,
    /// staging on a loop does not wait for it: it is left to the pool.
    @Test func aChangeDuringAnExclusiveOperationIsLeftToTheBlockingPool() throws {
        let dir = try TemporaryDirectory()
        let store = try logs.open(dir)
        let inside = DispatchSemaphore(value: 0), release = DispatchSemaphore(value: 0), done = DispatchSemaphore(value: 0)
        Thread.detachNewThread {
            store.whileNoCommitRuns {
                inside.signal()
                release.wait()
            }
            done.signal()
        }
        inside.wait()
        let ran = Mutex(false)
        let refused = try store.stagePromptly(touching: 1) { _, _ in ran.withLock { $0 = true } }
        release.signal()
        done.wait()
        #expect(refused == nil && !ran.withLock { $0 }, "nothing ran while the exclusive operation held the store")
        let staged = try #require(try store.stagePromptly(touching: 1) { _, _ in ran.withLock { $0 = true } })
        try staged.1.wait()
        #expect(ran.withLock { $0 }, "once it ended, staging on the loop went ahead")
    }
}
