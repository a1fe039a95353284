/// Who is on the other end of a connection, as the kernel reports it
/// (SO_PEERCRED at connect time). Never what the caller claims.
public struct PeerIdentity: Sendable, Equatable, CustomStringConvertible {
    public var uid: UInt32
    public var gid: UInt32
    public var pid: Int32

    public init(uid: UInt32, gid: UInt32, pid: Int32) {
        self.uid = uid
        self.gid = gid
        self.pid = pid
    }

    /// How a writer is recorded in a version's `created_by`.
    public var principal: String { "uid:\(uid)" }

    public var description: String { "uid=\(uid) gid=\(gid) pid=\(pid)" }
}

/// Which socket a request came in on. The admin socket serves operators; the
/// service socket serves the policy's principals.
public enum Listener: String, Sendable, Equatable {
    case service
    case admin
    case credentials
}
