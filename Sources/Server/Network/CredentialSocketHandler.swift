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
    private let dispatcher: RequestDispatcher

    init(peer: PeerIdentity, dispatcher: RequestDispatcher) {
        self.peer = peer
        self.dispatcher = dispatcher
    }

    func channelActive(context: ChannelHandlerContext) {
        context.fireChannelActive()
        // The decision, the lookup and the audit event are the dispatcher's,
        // as for a get on coffer.sock; only the framing differs.
        let answer = dispatcher.credential(peer: peer, address: CredentialAddress.parse(context.channel.remoteAddress))
        guard let value = answer.revealedValue() else { return context.close(promise: nil) }
        let buffer = value.withUnsafeBytes { context.channel.allocator.buffer(bytes: $0) }
        context.writeAndFlush(NIOAny(buffer)).assumeIsolated().whenComplete { _ in
            buffer.wipeInPlace()
            context.close(promise: nil)
        }
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        // systemd sends nothing; whatever arrives is ignored, and wiped.
        unwrapInboundIn(data).wipeInPlace()
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
