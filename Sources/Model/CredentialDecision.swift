/// What credentials.sock answers one connection: the secret it asks for
/// (when that is known) and the policy's decision, with the peer the audit
/// event names. Decided from the kernel's word only (docs/policy.md,
/// "LoadCredential="): systemd connects as root from the unit's own
/// process, from an abstract address naming the unit and credential id
/// that anyone could bind, so the address is believed only when the peer
/// is root and its confirmed cgroup is that unit.
public struct CredentialDecision: Sendable, Equatable {
    public let name: SecretName?
    public let decision: PolicyDecision
    /// The unit's process without its supplementary groups (the grant is
    /// the unit's, not root's), or the peer as it is when refused before
    /// its address is believed.
    public let requester: PeerIdentity
}

extension AccessPolicy {
    /// `address` is the unit and credential id systemd's peer address
    /// names (nil when it names none); `secret` gives a secret's own access.
    public func decideCredential(
        _ peer: PeerIdentity, address: (unit: String, id: String)?, secret: (SecretName) -> SecretAccess?
    ) -> CredentialDecision {
        guard peer.uid == 0 else { return CredentialDecision(name: nil, decision: .deny(.unitNotTrusted), requester: peer) }
        guard let (unit, id) = address else {
            return CredentialDecision(name: nil, decision: .deny(.unknownCredential), requester: peer)
        }
        // peer.unit comes from the process's cgroup, confirmed by its pidfd;
        // nil (unknown, or the process changed) fails closed too. Audited
        // with the peer as it is and the secret it tried for.
        guard peer.unit == unit else {
            return CredentialDecision(name: credential(unit: unit, id: id, secret: secret)?.0,
                                      decision: .deny(.peerOutsideUnit), requester: peer)
        }
        var requester = peer
        requester.groups = []
        guard let (name, decision) = credential(unit: unit, id: id, secret: secret) else {
            return CredentialDecision(name: nil, decision: .deny(.unknownCredential), requester: requester)
        }
        return CredentialDecision(name: name, decision: decision, requester: requester)
    }
}
