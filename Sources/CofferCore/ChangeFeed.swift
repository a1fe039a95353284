import FileStore
import Model
import Synchronization

/// A change to a secret as watchers are told of it: never a value.
public struct SecretChange: Sendable, Equatable {
    public enum Event: String, Sendable {
        case put, rotate, promote, rollback, delete, reload
    }

    public var event: Event
    /// nil for a `reload`: it concerns every name (re-list to catch up).
    public var name: SecretName?
    /// The version the change made current; nil for a delete.
    public var version: UInt64?
    public var stage: String?

    /// Tells watchers that what they may see, or the store itself, was
    /// reloaded: names may have come or gone without a change line each.
    public static let reload = SecretChange(event: .reload, name: nil, version: nil, stage: nil)

    public init(event: Event, name: SecretName?, version: UInt64?, stage: String?) {
        self.event = event
        self.name = name
        self.version = version
        self.stage = stage
    }
}

/// Fans changes out to the watchers. A watcher is told of a change only
/// when one of its patterns matches the name and the policy in force when
/// the change was made lets it watch the name (a reload can take access
/// away).
///
/// Matching runs on a task of its own, in commit order: a writer's answer
/// never waits for the watchers, however many or slow to match they are.
public final class ChangeFeed: Sendable {
    public struct Subscription: Sendable {
        let patterns: [NamePattern]
        let peer: PeerIdentity
        let listener: Listener
        let deliver: @Sendable (SecretChange) -> Void

        package init(
            patterns: [NamePattern], peer: PeerIdentity, listener: Listener, deliver: @escaping @Sendable (SecretChange) -> Void
        ) {
            self.patterns = patterns
            self.peer = peer
            self.listener = listener
            self.deliver = deliver
        }
    }

    public struct Token: Sendable, Hashable {
        let value: UInt64
    }

    private struct Batch: Sendable {
        enum Content: Sendable {
            case changes([(SecretChange, SecretAccess?)])
            /// Worked out on the feed's task (`changes(from:to:)`).
            case difference(from: StoreSnapshot, to: StoreSnapshot)
        }

        let content: Content
        let policy: AccessPolicy

        var changes: [(SecretChange, SecretAccess?)] {
            switch content {
            case .changes(let changes): changes
            case .difference(let old, let new): ChangeFeed.changes(from: old, to: new)
            }
        }
    }

    private final class Subscribers: Sendable {
        struct State {
            var next: UInt64 = 0
            var subscriptions: [UInt64: Subscription] = [:]
        }

        let state = Mutex(State())

        func deliver(_ batch: Batch) {
            let subscriptions = state.withLock { Array($0.subscriptions.values) }
            guard !subscriptions.isEmpty else { return }
            for (change, secret) in batch.changes {
                guard let name = change.name else {
                    // Names nothing: every watcher may hear it.
                    for subscription in subscriptions { subscription.deliver(change) }
                    continue
                }
                for subscription in subscriptions where subscription.patterns.contains(where: { $0.matches(name) }) {
                    let decision = batch.policy.decide(
                        subscription.peer, .watch, name: name, on: subscription.listener, secret: secret)
                    if decision.isAllowed { subscription.deliver(change) }
                }
            }
        }
    }

    private let subscribers = Subscribers()
    private let batches: AsyncStream<Batch>.Continuation
    private let queued = Atomic<Int>(0)

    public init() {
        let (stream, continuation) = AsyncStream.makeStream(of: Batch.self)
        batches = continuation
        let subscribers = self.subscribers
        Task.detached {
            for await batch in stream { subscribers.deliver(batch) }
        }
    }

    deinit { batches.finish() }

    public func subscribe(_ subscription: Subscription) -> Token {
        subscribers.state.withLock { s in
            s.next += 1
            s.subscriptions[s.next] = subscription
            return Token(value: s.next)
        }
    }

    public func unsubscribe(_ token: Token) {
        _ = subscribers.state.withLock { $0.subscriptions.removeValue(forKey: token.value) }
    }

    public var subscriberCount: Int { subscribers.state.withLock { $0.subscriptions.count } }

    /// Queues changes for the watchers. Each comes with the secret's own
    /// access settings (as they were before a delete).
    public func publish(_ changes: [(SecretChange, SecretAccess?)], policy: AccessPolicy) {
        guard !changes.isEmpty else { return }
        queue(Batch(content: .changes(changes), policy: policy))
    }

    /// Queues what changed between two snapshots the store served, in
    /// order with the other changes; the difference is worked out on the
    /// feed's task, so a caller under the store's writer lock only queues.
    public func publishDifference(from old: StoreSnapshot, to new: StoreSnapshot, policy: AccessPolicy) {
        queue(Batch(content: .difference(from: old, to: new), policy: policy))
    }

    /// How many batches were handed to the feed's task (for tests).
    package var batchesQueued: Int { queued.load(ordering: .relaxed) }

    /// With no watcher, a change is dropped here rather than queued: it
    /// would reach nobody, and queueing it wakes a thread of the
    /// concurrency pool for every write. A watcher that subscribes later
    /// hears only of changes published after it did, as it would anyway
    /// (the feed's task may run before or after it subscribes).
    private func queue(_ batch: Batch) {
        guard subscriberCount > 0 else { return }
        queued.add(1, ordering: .relaxed)
        batches.yield(batch)
    }

    /// What a reload changed, for watchers: put for a new or newer secret,
    /// delete for a gone one, then one reload event.
    package static func changes(from old: StoreSnapshot, to new: StoreSnapshot) -> [(SecretChange, SecretAccess?)] {
        var out: [(SecretChange, SecretAccess?)] = []
        for secret in new.secrets.secretsNotHeld(in: old.secrets) {
            out.append((SecretChange(event: .put, name: secret.name, version: secret.current?.version, stage: "current"), secret.access))
        }
        for secret in old.secrets.secretsNotHeld(in: new.secrets) {
            guard !new.secrets.contains(secret.name) else { continue }
            out.append((SecretChange(event: .delete, name: secret.name, version: nil, stage: nil), secret.access))
        }
        out.append((.reload, nil))
        return out
    }

}
