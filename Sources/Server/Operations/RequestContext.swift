import FileStore
import Model

/// Who is asking, on which socket, for which request id; and the one store
/// snapshot and policy the request is decided and answered on. The
/// dispatcher resolves them once: the policy's decision and the handler's
/// answer read the same generation, and each target secret is decoded
/// from the packed snapshot once.
struct RequestContext: Sendable {
    let peer: PeerIdentity
    let listener: Listener
    let requestID: RequestID
    /// Where watch events for this connection go (nil outside a connection).
    var watchOutlet: WatchOutlet? = nil
    let snapshot: StoreSnapshot
    let policy: AccessPolicy
    /// The request's targets, decoded: most requests have one, which is
    /// held without a collection (no allocation, no hashing on the get path).
    private let firstTarget: (name: SecretName, secret: Secret?)?
    private let otherTargets: [SecretName: Secret]

    init(
        peer: PeerIdentity, listener: Listener, requestID: RequestID, watchOutlet: WatchOutlet? = nil,
        snapshot: StoreSnapshot, policy: AccessPolicy, targets: [SecretName]
    ) {
        self.peer = peer
        self.listener = listener
        self.requestID = requestID
        self.watchOutlet = watchOutlet
        self.snapshot = snapshot
        self.policy = policy
        firstTarget = targets.first.map { ($0, snapshot[$0]) }
        var others: [SecretName: Secret] = [:]
        for name in targets.dropFirst() where name != firstTarget?.name && others[name] == nil {
            if let secret = snapshot[name] { others[name] = secret }
        }
        otherTargets = others
    }

    /// A target's decoded secret: `.some(nil)` for a target that does not
    /// exist, nil for a name that is not a target.
    private func target(_ name: SecretName) -> Secret?? {
        if let first = firstTarget, first.name == name { return .some(first.secret) }
        if let other = otherTargets[name] { return .some(other) }
        return nil
    }

    /// The secret `name` in this request's snapshot: a target is already
    /// decoded; another name (a missing target too) is looked up.
    func secret(_ name: SecretName) -> Secret? {
        target(name) ?? snapshot[name]
    }

    /// The policy's decision for `operation` on each target, in order.
    func decisions(_ operation: Operation, targets names: [SecretName]) -> [(SecretName?, PolicyDecision)] {
        guard !names.isEmpty else { return [(nil, policy.decide(peer, operation, name: nil, on: listener))] }
        return names.map { ($0, policy.decide(peer, operation, name: $0, on: listener, secret: secret($0)?.access)) }
    }
}
