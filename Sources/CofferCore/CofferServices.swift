import Audit
import FileStore
import Keyring
import Mirror
import Model
import Seal
import Synchronization
#if canImport(Glibc)
import Glibc
#endif

/// The application core: the store, the keys, the policy in force, the
/// audit trail and the change feed, and the use cases that change them
/// (writing a version and publishing it, reloads, key operations). It
/// knows nothing of sockets or NIO. One instance per daemon.
public final class CofferServices: Sendable {
    public let store: SecretStore
    public let keyring: Keyring
    public let sealer: RecordSealer
    /// Every decision is recorded here; its receipts let reveals out.
    public let audit: AuditTrail
    /// The audit chain's keys, when events are chained: a master-key
    /// rotation moves new events to its new key, and `audit --verify`
    /// checks the old ones with the keys kept here.
    package let auditChainKeys: AuditChainKeys?
    public let mode: Mode
    public let startedAt: ContinuousClock.Instant
    /// Blocking work (fsync) runs here, never on an event loop.
    package let blockingPool: any BlockingWork
    /// scrypt runs on the blocking pool holding one of these.
    package let scrypt: WorkPermits
    /// User and group names are resolved here (`AccountLookups`).
    package let accountLookups: any BlockingWork
    private let currentPolicy: Mutex<AccessPolicy>
    /// Where `reloadPolicy` reads the policy from; nil: it cannot change.
    package let policySource: PolicySource?
    /// Watchers of secret changes.
    public let changes = ChangeFeed()
    /// How many versions of a secret are kept (the staged ones always).
    public let retainVersions: Int
    /// Where master keys load from, and where rotation records new ones;
    /// nil: rotate-master-key and unseal are unavailable (tests).
    public let keyLocations: MasterKeyLocations?
    package let rotation: MasterKeyRotation
    /// The last store reload, for status: when, and what came of it.
    private let lastStoreReload = Mutex<(at: Int64, result: String)?>(nil)
    package var lastReload: (at: Int64, result: String)? { lastStoreReload.withLock { $0 } }

    public static let defaultRetainVersions = 10

    /// The PostgreSQL mirror, when one is configured: for status and
    /// restore. It follows the store's commits on its own.
    public let mirror: Mirror?

    /// rotate-master-key, seal and unseal exclude one another: a seal must
    /// not wipe a key a rotation is sealing with, nor an unseal swap the
    /// keyring under it.
    private let keyOperation = Mutex<Operation?>(nil)

    package func exclusively<R>(_ operation: Operation, _ body: () async throws -> R) async throws -> R {
        let busy = keyOperation.withLock { running -> Operation? in
            if let running { return running }
            running = operation
            return nil
        }
        if let busy { throw CofferError(.conflict, "\(busy.rawValue) is running; try again when it ends") }
        defer { keyOperation.withLock { $0 = nil } }
        return try await body()
    }

    public enum Mode: String, Sendable {
        case development
        case production
    }

    public init(
        store: SecretStore, keyring: Keyring, sealer: RecordSealer, policy: AccessPolicy,
        policySource: PolicySource? = nil, audit: any AuditSink, mode: Mode, blockingPool: any BlockingWork,
        accountLookupThread: any BlockingWork, retainVersions: Int = CofferServices.defaultRetainVersions, keyLocations: MasterKeyLocations? = nil,
        resealPausePerBatch: Duration? = nil, maxConcurrentScrypt: Int = WorkPermits.defaultScryptLimit, mirror: Mirror? = nil,
        auditChainKeys: AuditChainKeys? = nil
    ) {
        self.auditChainKeys = auditChainKeys
        self.mirror = mirror
        self.scrypt = .scrypt(limit: maxConcurrentScrypt)
        precondition(retainVersions >= 3, "current, previous and pending must fit")
        self.retainVersions = retainVersions
        self.keyLocations = keyLocations
        self.rotation = MasterKeyRotation(pausePerBatch: resealPausePerBatch)
        self.policySource = policySource
        self.store = store
        self.keyring = keyring
        self.sealer = sealer
        self.audit = AuditTrail(audit)
        self.mode = mode
        self.blockingPool = blockingPool
        self.accountLookups = AccountLookups.on(accountLookupThread)
        self.startedAt = .now
        self.currentPolicy = Mutex(policy)
        // Changes that reach the store other than by a request here (the
        // file changed on disk, the mirror took other hosts' changes or
        // restored) are told to watchers as the difference they made; a
        // request's handler publishes its own, more precise, change.
        // The difference is worked out on the feed's own task, not here
        // under the store's writer lock.
        store.onCommit { [weak self] commit in
            guard let self, commit.origin == .file || commit.origin == .taken else { return }
            // The policy in force now, as for a request's change.
            changes.publishDifference(from: commit.old, to: commit.new, policy: self.policy)
        }
    }

    public var policy: AccessPolicy { currentPolicy.withLock { $0 } }

    /// `reloadPolicy` on the account lookups' thread (the file's user and
    /// group names resolve through NSS, `AccountLookups`). Refused at once,
    /// and audited as a failed reload, when every lookup permit is taken.
    package func reloadPolicyOffLoop(requestedBy peer: PeerIdentity? = nil, on listener: Listener? = nil) async -> Result<AccessPolicy, CofferError> {
        do {
            return try await accountLookups.run { [self] in reloadPolicy(requestedBy: peer, on: listener) }
        } catch {
            let refusal = error as? CofferError ?? CofferError(.unavailable, "the policy file could not be read now; try again shortly")
            try? audit.record(AuditEvent(kind: .reloadFailed, result: .error, operation: .reload, peer: peer,
                                         listener: listener, reason: refusal.message))
            return .failure(refusal)
        }
    }

    /// Reads the policy file again and puts it in force, or leaves the old
    /// policy in force and says why (the file's line when it is a line).
    /// Open connections are kept: every request asks the policy in force at
    /// that moment. Audited either way.
    @discardableResult
    public func reloadPolicy(requestedBy peer: PeerIdentity? = nil, on listener: Listener? = nil) -> Result<AccessPolicy, CofferError> {
        let result: Result<AccessPolicy, CofferError>
        if let policySource {
            result = Result { () throws(CofferError) in try policySource.load() }
        } else {
            result = .success(policy)
        }
        switch result {
        case .success(let fresh):
            currentPolicy.withLock { $0 = fresh }
            // Watchers may now see more or fewer names: tell them to re-list.
            changes.publish([(.reload, nil)], policy: fresh)
            // Say so when the file is gone: everyone but the superusers just
            // lost access, which an auditor should see as more than "ok".
            let missing = policySource?.fileIsMissing == true ? "policy_file_missing" : nil
            try? audit.record(AuditEvent(kind: .reload, result: .ok, operation: .reload, peer: peer, listener: listener, reason: missing))
        case .failure(let error):
            try? audit.record(AuditEvent(kind: .reloadFailed, result: .error, operation: .reload, peer: peer,
                                         listener: listener, reason: error.message))
        }
        return result
    }

    /// Reads the store file again after it changed on disk (StoreWatch), and
    /// serves it if it checks whole; otherwise the last good snapshot stays
    /// and the refusal is audited (`tamper` for a file changed outside
    /// cofferd or rolled back, `reload_failed` for one it cannot read). A
    /// file taken and served whose new log the disk did not confirm
    /// (`notDurable`) is a reload, audited with its error: nothing was
    /// refused, and commits wait for the files to be written again.
    @discardableResult
    public func reloadStore() -> Result<SecretStore.ReloadOutcome, StoreError> {
        let result = Result { () throws(StoreError) in try store.reload() }
        let now = Int64(time(nil))
        switch result {
        case .success(.unchanged):
            break
        case .failure(let error) where error.code == .sealed:
            // Nothing can be checked while sealed; unseal reads it again.
            lastStoreReload.withLock { $0 = (now, "deferred: sealed") }
            return result
        case .success(.replaced(let old, let new)):
            lastStoreReload.withLock { $0 = (now, "ok") }
            // Watchers were told by the store's commit (init).
            try? audit.record(AuditEvent(kind: .reload, result: .ok, reason: "store generation \(old.generation) -> \(new.generation)"))
        case .failure(let error) where error.code == .notDurable:
            lastStoreReload.withLock { $0 = (now, "ok: served, not yet durable") }
            try? audit.record(AuditEvent(kind: .reload, result: .error, reason: error.message))
        case .failure(let error):
            lastStoreReload.withLock { $0 = (now, "refused: \(error.code == .tampered ? "tampered" : "unreadable")") }
            let kind: AuditEventKind = error.code == .tampered ? .tamper : .reloadFailed
            try? audit.record(AuditEvent(kind: kind, result: .error, reason: error.message))
        }
        return result
    }

    /// Tells watchers what a committed change did.
    package func publish(_ changes: [(SecretChange, SecretAccess?)]) {
        self.changes.publish(changes, policy: policy)
    }

    /// Stages a store commit, then waits, suspended, for it to be durable:
    /// no thread is held for the sync, so writes from many connections
    /// share one (the store's group commit). For a small change, of at
    /// most `names` secrets (one secret's new version or stages, a
    /// delete), which is staged right on the caller's thread when the
    /// store's lock is had promptly (`SecretStore.stagePromptly`: another
    /// commit staging is waited for, briefly): for a write on an event
    /// loop that saves the hop to the blocking pool and back. When it is
    /// not (an exclusive operation, such as a compaction's switch, waits or
    /// runs), or the change would pack the snapshot anew, it is staged on
    /// the blocking pool.
    package func commit<Result: Sendable>(
        touching names: Int,
        _ change: @escaping @Sendable (_ storeID: String, _ secrets: inout EditedSecrets) throws -> Result
    ) async throws -> Result {
        guard let (result, ticket) = try store.stagePromptly(touching: names, change) else {
            return try await commitOnBlockingPool(change)
        }
        try await ticket.durable()
        return result
    }

    /// `commit` for a change that takes a while to make (an import seals
    /// every value): always staged on the blocking pool.
    package func commitOnBlockingPool<Result: Sendable>(
        _ change: @escaping @Sendable (_ storeID: String, _ secrets: inout EditedSecrets) throws -> Result
    ) async throws -> Result {
        let store = self.store
        let (result, ticket) = try await blockingPool.run { try store.stage(change) }
        try await ticket.durable()
        return result
    }
}
