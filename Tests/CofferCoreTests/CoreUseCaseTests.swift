import Audit
import CofferCore
import CofferTestSupport
@testable import FileStore
import Foundation
import Keyring
import LockedMemory
import Model
import Seal
import Synchronization
import Testing

/// Blocking work on a thread of its own: the core runs without NIO.
struct DetachedWork: BlockingWork {
    func run<R: Sendable>(_ body: @escaping @Sendable () throws -> R) async throws -> R {
        try await withCheckedThrowingContinuation { continuation in
            Thread.detachNewThread { continuation.resume(with: Result { try body() }) }
        }
    }
}

final class CollectingAuditSink: AuditSink {
    let events = Mutex<[AuditEvent]>([])
    var name: String { "collecting" }
    func record(_ event: AuditEvent) throws(AuditError) { events.withLock { $0.append(event) } }
}

/// The core's use cases called directly: no socket, no request line, no
/// event loop.
@Suite struct CoreUseCaseTests {
    let directory: TemporaryDirectory
    let services: CofferServices
    static let writer = "uid:1000"

    init() throws {
        directory = try TemporaryDirectory("core")
        services = try CoreFixture.services(in: directory, policy: .owner(uid: 1000), audit: CollectingAuditSink(),
                                            blockingPool: DetachedWork())
    }

    func write(_ name: String, _ value: String, existing: VersionWrite.Existing = .optional, pending: Bool = false,
               options: VersionWrite.Options = .init()) async throws -> VersionWrite.Written {
        let secretName = try SecretName(name)
        return try await services.write(
            VersionWrite(name: secretName, value: try TestKeys.locked(value), encoding: .text, generated: false, options: options,
                         access: nil, existing: existing, event: existing == .optional ? .put : .rotate, pending: pending),
            known: services.store.snapshot[secretName], by: Self.writer)
    }

    func opened(_ name: String, version: UInt64) throws -> String {
        let snapshot = services.store.snapshot
        let secret = try #require(snapshot[try SecretName(name)])
        let record = try #require(secret.versions.first { $0.version == version })
        let bytes = try services.sealer.open(record.sealed, for: secret.identity(storeID: snapshot.storeID, version: version),
                                             keyring: services.keyring)
        return String(decoding: bytes.withUnsafeBytes { Array($0) }, as: UTF8.self)
    }

    /// A newer store file dropped in is taken while the directory does not
    /// sync: it is served, so the reload is audited as a reload with its
    /// error, and the status says it was taken, not refused.
    @Test func aReloadServedButNotDurableIsAReloadNotARefusal() async throws {
        struct DiskError: Error {}
        let audit = CollectingAuditSink()
        let directory = try TemporaryDirectory("core-reload")
        let services = try CoreFixture.services(in: directory, policy: .owner(uid: 1000), audit: audit, blockingPool: DetachedWork())
        let name = try SecretName("app/a")
        _ = try await services.write(
            VersionWrite(name: name, value: try TestKeys.locked("one"), encoding: .text, generated: false, options: .init(),
                         access: nil, existing: .optional, event: .put, pending: false),
            known: nil, by: Self.writer)
        try services.store.compactNow()
        // Another process's copy of the store, one change ahead.
        let other = try SecretStore.open(
            directory: directory.path, authenticator: try StoreAuthenticator(keyring: Keyring(current: TestKeys.master()), sealer: RecordSealer()))
        try other.commit { _, secrets in secrets[name] = nil }
        let dropped = services.store.path + ".drop"
        #expect(FileManager.default.createFile(atPath: dropped, contents: Data(try other.exportedFile()), attributes: [.posixPermissions: 0o600]))
        #expect(rename(dropped, services.store.path) == 0)

        services.store.beforeDirectorySync.withLock { $0 = { throw DiskError() } }
        let result = services.reloadStore()
        guard case .failure(let error) = result else {
            Issue.record("expected the reload to tell of the directory sync")
            return
        }
        #expect(error.code == .notDurable)
        #expect(services.store.snapshot[name] == nil, "the new file is served")
        let last = try #require(audit.events.withLock { $0.last })
        #expect(last.kind == .reload && last.result == .error)
        #expect(services.lastReload?.result == "ok: served, not yet durable")
        services.store.beforeDirectorySync.withLock { $0 = nil }
        withExtendedLifetime(other) {}
    }

    @Test func writingAVersionCommitsItAndTellsTheWatchers() async throws {
        let heard = Mutex<[SecretChange]>([])
        _ = services.changes.subscribe(ChangeFeed.Subscription(
            patterns: [NamePattern("app/**")], peer: PeerIdentity(uid: 1000, gid: 1000, pid: 1), listener: .admin,
            deliver: { change in heard.withLock { $0.append(change) } }))

        let first = try await write("app/db", "one")
        #expect(first.version == 1 && first.stage == .current && first.protection == .sealed)
        let staged = try await write("app/db", "two", existing: .required, pending: true)
        #expect(staged.version == 2 && staged.stage == .pending)
        #expect(try opened("app/db", version: 1) == "one" && opened("app/db", version: 2) == "two")
        let secret = try #require(services.store.snapshot[try SecretName("app/db")])
        #expect(secret.stages.current == 1 && secret.stages.pending == 2)
        #expect(secret.versions.map(\.createdBy) == [Self.writer, Self.writer])

        // Delivery runs on the feed's own task: wait for it, bounded.
        let deadline = ContinuousClock.now + .seconds(10)
        while heard.withLock({ $0.count }) < 2, ContinuousClock.now < deadline { try await Task.sleep(for: .milliseconds(10)) }
        #expect(heard.withLock { $0.count } == 2, "the watcher heard both writes within 10 s")
        #expect(heard.withLock { $0.map(\.event) } == [.put, .rotate])
    }

    /// With no watcher a write queues nothing for the feed's task (which
    /// would wake a pool thread per write); a watcher that comes later
    /// hears the writes made after it subscribed.
    @Test func writesWithNoWatcherQueueNothingForTheFeed() async throws {
        _ = try await write("app/db", "one")
        try services.store.commitTaken { _, secrets, _ in secrets[try SecretName("app/gone")] = nil }
        #expect(services.changes.batchesQueued == 0, "nothing queued while nobody watches")

        let heard = Mutex<[SecretChange]>([])
        let token = services.changes.subscribe(ChangeFeed.Subscription(
            patterns: [NamePattern("app/**")], peer: PeerIdentity(uid: 1000, gid: 1000, pid: 1), listener: .admin,
            deliver: { change in heard.withLock { $0.append(change) } }))
        _ = try await write("app/db", "two", existing: .required)
        #expect(services.changes.batchesQueued == 1)
        let deadline = ContinuousClock.now + .seconds(10)
        while heard.withLock({ $0.isEmpty }), ContinuousClock.now < deadline { try await Task.sleep(for: .milliseconds(10)) }
        #expect(heard.withLock { $0.map(\.event) } == [.rotate], "the watcher heard the write made after it subscribed")

        services.changes.unsubscribe(token)
        _ = try await write("app/db", "three", existing: .required)
        #expect(services.changes.batchesQueued == 1, "nothing queued once the last watcher left")
    }

    @Test func changesTakenFromElsewhereReachTheWatchersOnceEach() async throws {
        let heard = Mutex<[SecretChange]>([])
        _ = services.changes.subscribe(ChangeFeed.Subscription(
            patterns: [NamePattern("app/**")], peer: PeerIdentity(uid: 1000, gid: 1000, pid: 1), listener: .admin,
            deliver: { change in heard.withLock { $0.append(change) } }))
        _ = try await write("app/db", "one")
        // Another host's deletion, as the mirror commits it: the core
        // hears of it from the store, not from the mirror.
        try services.store.commitTaken { _, secrets, _ in secrets[try SecretName("app/db")] = nil }

        let deadline = ContinuousClock.now + .seconds(10)
        while heard.withLock({ $0.count }) < 3, ContinuousClock.now < deadline { try await Task.sleep(for: .milliseconds(10)) }
        #expect(heard.withLock { $0.map(\.event) } == [.put, .delete, .reload], "the write once, the taken deletion once")
        #expect(heard.withLock { $0[1].name } == (try SecretName("app/db")))
    }

    /// A change taken from elsewhere is filtered by the policy in force
    /// when it arrives, as a request's change is, not the one at startup.
    @Test func takenChangesAreToldUnderThePolicyInForceNow() async throws {
        let dir = try TemporaryDirectory("core-policy")
        let policyFile = dir.path + "/policy"
        try "".write(toFile: policyFile, atomically: true, encoding: .utf8)
        let keyring = Keyring(current: try TestKeys.master())
        let core = CofferServices(
            store: try SecretStore.open(directory: dir.path, authenticator: try StoreAuthenticator(keyring: keyring, sealer: RecordSealer())),
            keyring: keyring, sealer: RecordSealer(), policy: .owner(uid: 0),
            policySource: PolicySource(base: .owner(uid: 0), path: policyFile), audit: CollectingAuditSink(),
            mode: .development, blockingPool: DetachedWork(), accountLookupThread: DetachedWork())
        let heard = Mutex<[SecretChange]>([])
        _ = core.changes.subscribe(ChangeFeed.Subscription(
            patterns: [NamePattern("app/**")], peer: PeerIdentity(uid: 2000, gid: 2000, pid: 1), listener: .service,
            deliver: { change in heard.withLock { $0.append(change) } }))
        try "allow read on app/** to uid:2000\n".write(toFile: policyFile, atomically: true, encoding: .utf8)
        _ = try core.reloadPolicy(requestedBy: nil, on: nil).get()
        let name = try SecretName("app/new")
        try core.store.commitTaken { _, secrets, _ in
            secrets[name] = Secret(name: name, kind: .generic, protection: .sealed, versions: [
                SecretVersion(version: 1, sealed: SealedRecord(keyID: try keyring.current().id, salt: [], nonce: [], ciphertext: []),
                              encoding: .text, createdAt: 0, createdBy: "uid:0")])
        }
        let deadline = ContinuousClock.now + .seconds(10)
        while heard.withLock({ $0.count }) < 3, ContinuousClock.now < deadline { try await Task.sleep(for: .milliseconds(10)) }
        #expect(heard.withLock { $0.map(\.event) } == [.reload, .put, .reload], "the policy reload, then the taken put uid 2000 may now watch")
    }

    @Test func aWriteThatContradictsTheSecretChangesNothing() async throws {
        _ = try await write("app/db", "one")
        let generation = services.store.snapshot.generation
        await #expect(throws: CofferError.self) { try await write("app/missing", "x", existing: .required) }
        await #expect(throws: CofferError.self) { try await write("app/db", "x", options: .init(protection: .hashed)) }
        let tooLarge = String(repeating: "v", count: VersionWrite.maxValueBytes + 1)
        await #expect(throws: CofferError.self) { try await write("app/big", tooLarge) }
        #expect(services.store.snapshot.generation == generation)
    }

    @Test func aHashedWriteStoresNoValueAndVerifies() async throws {
        let written = try await write("app/pw", "pa55", options: .init(protection: .hashed, hash: .hmacSHA256))
        #expect(written.protection == .hashed)
        let snapshot = services.store.snapshot
        let secret = try #require(snapshot[try SecretName("app/pw")])
        let version = try #require(secret.versions.first)
        let stored = try services.sealer.open(version.sealed, for: secret.identity(storeID: snapshot.storeID, version: 1),
                                              keyring: services.keyring)
        #expect(stored.count == 64, "an HMAC key and a digest, not the value")
        #expect(try Array("pa55".utf8).withUnsafeBytes { try ValueHashing.matches($0, stored: stored, .hmacSHA256) })
    }

    @Test func sealingWipesTheKeysAndUnsealingTakesOnlyKeysThatOpenTheStore() async throws {
        _ = try await write("app/db", "one")
        try await services.sealKeys()
        #expect(services.keyring.isSealed)
        await #expect(throws: (any Error).self) { try await write("app/db", "two") }
        let other = directory.path + "/other.key"
        try MasterKeySource.createKeyFile(at: other, key: try TestKeys.master(first: 9))
        await #expect(throws: CofferError.self) { try await services.unseal(keyFile: other) }
        #expect(services.keyring.isSealed)
        let id = try await services.unseal(keyFile: nil)
        let expected = try TestKeys.master().id
        #expect(id == expected && !services.keyring.isSealed)
        #expect(try opened("app/db", version: 1) == "one")
    }

    @Test func rotatingTheMasterKeyResealsEveryRecord() async throws {
        _ = try await write("app/a", "one")
        _ = try await write("app/b", "two")
        let outcome = try await services.rotateMasterKey(.generate)
        let oldID = try TestKeys.master().id.hex
        #expect(outcome.resealed == 2 && outcome.newKeyID != oldID)
        let snapshot = services.store.snapshot
        #expect(snapshot.secrets.allSatisfy { $0.versions.allSatisfy { $0.sealed.keyID.hex == outcome.newKeyID } })
        #expect(try opened("app/a", version: 1) == "one" && opened("app/b", version: 1) == "two")
    }

    @Test func scryptPermitsCountUpToTheLimit() {
        let permits = WorkPermits.scrypt(limit: 2)
        #expect(permits.take() && permits.take())
        #expect(!permits.take())
        permits.release()
        #expect(permits.take())
        #expect(permits.running == 2)
    }
}
