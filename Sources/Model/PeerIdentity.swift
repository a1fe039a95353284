/// Who is on the other end of a connection, as the kernel reports it. Never
/// what the caller claims.
///
/// uid, gid and pid come from SO_PEERCRED (fixed at connect time). The
/// supplementary groups and the systemd unit are read from /proc/PID and
/// kept only when the peer's pidfd showed the same process still alive after
/// the read (docs/peer-identity.md); otherwise they stay empty, so rules on
/// groups and units fail closed.
public struct PeerIdentity: Sendable, Equatable, CustomStringConvertible {
    public var uid: UInt32
    public var gid: UInt32
    public var pid: Int32
    /// Supplementary groups (from /proc/PID/status `Groups:`).
    public var groups: [UInt32]
    /// The system unit the peer runs in (from /proc/PID/cgroup), e.g.
    /// `web.service`; nil when unknown or not confirmed.
    public var unit: String?

    public init(uid: UInt32, gid: UInt32, pid: Int32, groups: [UInt32] = [], unit: String? = nil) {
        self.uid = uid
        self.gid = gid
        self.pid = pid
        self.groups = groups
        self.unit = unit
    }

    /// Whether the peer is in group `gid`, as primary or supplementary group.
    public func isMember(of gid: UInt32) -> Bool {
        self.gid == gid || groups.contains(gid)
    }

    /// How a writer is recorded in a version's `created_by`.
    public var principal: String { "uid:\(uid)" }

    public var description: String {
        "uid=\(uid) gid=\(gid) pid=\(pid)" + (unit.map { " unit=\($0)" } ?? "")
    }
}

/// Which socket a request came in on. The admin socket serves operators; the
/// service socket serves the policy's principals; the credentials socket
/// serves systemd's LoadCredential= on behalf of a unit.
public enum Listener: String, CaseIterable, Sendable, Equatable {
    case service
    case admin
    case credentials
}
