import Audit
import CLibCrypto
import Model
import NIOCore

/// credentials.sock: systemd's LoadCredential=ID:/run/coffer/credentials.sock
/// (systemd.exec(5)). systemd connects from an abstract socket named
/// `\0RANDOM/unit/UNIT/ID`, from the unit's own process as it starts, which
/// already runs in the unit's cgroup. Anyone can bind any abstract name, so
/// the unit is believed only when the peer is root and its process (pinned
/// by its pidfd, PeerResolution) is in that unit's cgroup: a root process
/// elsewhere (a confined root service, a container sharing the host's
/// users) cannot claim another unit's credential. An allowed credential is
/// written raw, then the connection is closed; anything else is closed
/// without a byte. Every outcome is audited, with the unit as the peer.
final class CredentialSocketHandler: ChannelInboundHandler {
    typealias InboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer

    private let peer: PeerIdentity
    private let services: CofferServices

    init(peer: PeerIdentity, services: CofferServices) {
        self.peer = peer
        self.services = services
    }

    func channelActive(context: ChannelHandlerContext) {
        context.fireChannelActive()
        switch decide(remote: context.channel.remoteAddress) {
        case .refuse(let event):
            try? services.audit.record(event)
            context.close(promise: nil)
        case .serve(let lookup, let requester):
            serve(lookup, to: requester, context: context)
        }
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        // systemd sends nothing; whatever arrives is ignored, and wiped.
        unwrapInboundIn(data).wipeInPlace()
    }

    private enum Outcome {
        case refuse(AuditEvent)
        case serve(SecretLookup, PeerIdentity)
    }

    private func decide(remote: SocketAddress?) -> Outcome {
        func denied(_ reason: DenialReason, secret: SecretName? = nil, as who: PeerIdentity? = nil) -> Outcome {
            .refuse(AuditEvent(kind: .denied, result: .denied, operation: .get, secret: secret?.rawValue,
                               peer: who ?? peer, listener: .credentials, reason: reason.rawValue))
        }
        guard peer.uid == 0 else { return denied(.unitNotTrusted) }
        guard let (unit, id) = CredentialAddress.parse(remote) else { return denied(.unknownCredential) }
        // peer.unit comes from the process's cgroup, confirmed by its pidfd;
        // nil (unknown, or the process changed) fails closed too.
        let snapshot = services.store.snapshot
        let policy = services.policy
        guard peer.unit == unit else {
            // Audited with the peer as it is (its own unit, if any) and the
            // secret it tried for.
            let name = policy.credential(unit: unit, id: id, secret: { snapshot[$0]?.access })?.0
            return denied(.peerOutsideUnit, secret: name)
        }
        var requester = peer
        requester.groups = []
        guard let (name, decision) = policy.credential(unit: unit, id: id, secret: { snapshot[$0]?.access }) else {
            return denied(.unknownCredential, as: requester)
        }
        if case .deny(let reason) = decision { return denied(reason, secret: name, as: requester) }
        let lookup: SecretLookup
        do {
            lookup = try SecretLookup.find(name, version: nil, in: snapshot)
        } catch {
            let expired = error.code == .expired
            return .refuse(AuditEvent(kind: .get, result: expired ? .error : .notFound, operation: .get, secret: name.rawValue,
                                      peer: requester, listener: .credentials, reason: expired ? "expired" : "not_found"))
        }
        guard lookup.secret.protection == .sealed else {
            return .refuse(AuditEvent(kind: .get, result: .error, operation: .get, secret: name.rawValue,
                                      peer: requester, listener: .credentials, reason: "verify_only"))
        }
        return .serve(lookup, requester)
    }

    private func serve(_ lookup: SecretLookup, to requester: PeerIdentity, context: ChannelHandlerContext) {
        var event = AuditEvent(kind: .get, result: .ok, operation: .get, secret: lookup.secret.name.rawValue,
                               version: lookup.version.version, peer: requester, listener: .credentials)
        do {
            let revelation = Revelation(.value(try lookup.open(with: services), lookup.version.encoding))
            // Fail closed: the value is readable only with its event's receipt.
            guard case .value(let value, _) = revelation.content(try services.audit.receipt(recording: event)) else {
                return context.close(promise: nil)
            }
            let buffer = value.withUnsafeBytes { context.channel.allocator.buffer(bytes: $0) }
            context.writeAndFlush(NIOAny(buffer)).assumeIsolated().whenComplete { _ in
                buffer.wipeInPlace()
                context.close(promise: nil)
            }
        } catch {
            event.result = .error
            event.reason = CofferError.from(error).code.wireName
            try? services.audit.record(event)
            context.close(promise: nil)
        }
    }
}

/// The unit and credential id in systemd's abstract peer address
/// `\0RANDOM/unit/UNIT/ID` (systemd's src/core/execute.c, "LoadCredential").
enum CredentialAddress {
    static func parse(_ address: SocketAddress?) -> (unit: String, id: String)? {
        guard case .unixDomainSocket(let unix)? = address else { return nil }
        var path = unix.address.sun_path
        let bytes = withUnsafeBytes(of: &path) { Array($0) }
        return parse(abstractName: bytes)
    }

    /// `bytes` is sun_path: a leading NUL, then the name (NUL padded).
    static func parse(abstractName bytes: [UInt8]) -> (unit: String, id: String)? {
        guard bytes.first == 0 else { return nil }
        let name = bytes.dropFirst().prefix { $0 != 0 }
        let parts = name.split(separator: UInt8(ascii: "/"), omittingEmptySubsequences: false)
        guard parts.count == 4, !parts[0].isEmpty, parts[1].elementsEqual("unit".utf8) else { return nil }
        let unit = String(decoding: parts[2], as: UTF8.self)
        let id = String(decoding: parts[3], as: UTF8.self)
        guard UnitName.isValid(unit), CredentialID.isValid(id) else { return nil }
        return (unit, id)
    }
}
