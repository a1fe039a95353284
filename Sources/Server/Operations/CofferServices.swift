import Audit
import FileStore
import Keyring
import Model
import NIOPosix
import Seal
import Synchronization

/// What every operation handler may use. One instance per daemon.
public final class CofferServices: Sendable {
    public let store: SecretStore
    public let keyring: Keyring
    public let sealer: RecordSealer
    public let audit: any AuditSink
    public let mode: Mode
    public let startedAt: ContinuousClock.Instant
    /// Blocking work (fsync) runs here, never on an event loop.
    let blockingPool: NIOThreadPool
    private let currentPolicy: Mutex<AccessPolicy>

    public enum Mode: String, Sendable {
        case development
        case production
    }

    public init(
        store: SecretStore, keyring: Keyring, sealer: RecordSealer, policy: AccessPolicy,
        audit: any AuditSink, mode: Mode, blockingPool: NIOThreadPool = .singleton
    ) {
        self.store = store
        self.keyring = keyring
        self.sealer = sealer
        self.audit = audit
        self.mode = mode
        self.blockingPool = blockingPool
        self.startedAt = .now
        self.currentPolicy = Mutex(policy)
    }

    public var policy: AccessPolicy { currentPolicy.withLock { $0 } }

    /// Runs a store commit on the blocking pool.
    func commit<Result: Sendable>(
        _ change: @escaping @Sendable (_ storeID: String, _ secrets: inout [SecretName: Secret]) throws -> Result
    ) async throws -> Result {
        let store = self.store
        return try await blockingPool.runIfActive { try store.commit(change) }
    }
}

/// Who is asking, on which socket, for which request id.
struct RequestContext: Sendable {
    let peer: PeerIdentity
    let listener: Listener
    let requestID: RequestID
}
