import CCofferShims
import Model
import NIOCore
import Syscalls
#if canImport(Glibc)
import Glibc
#endif

/// Who connected, from the kernel only (docs/peer-identity.md):
///
/// 1. SO_PEERCRED: uid, gid and pid as they were at connect(2).
/// 2. SO_PEERPIDFD: a pidfd for that same process, which cannot be
///    recycled the way a pid number can.
/// 3. /proc/PID/cgroup and /proc/PID/status: the unit and the groups.
/// 4. The pidfd again: if the process is still alive now, the pid was not
///    reused while we read, so what we read was that process's. If it has
///    exited (or the kernel has no SO_PEERPIDFD), or its effective uid or
///    gid is no longer the one it connected with, unit and groups stay
///    empty: rules on them fail closed, uid and gid rules still apply.
public enum PeerResolution {
    static func identify(_ channel: any Channel) -> EventLoopFuture<PeerIdentity> {
        guard let provider = channel as? any SocketOptionProvider else {
            return channel.eventLoop.makeFailedFuture(ServerStartupError("no socket options on accepted channel"))
        }
        let credentials: EventLoopFuture<coffer_ucred> = provider.unsafeGetSocketOption(
            level: .socket, name: NIOBSDSocket.Option(rawValue: coffer_so_peercred())
        )
        return credentials.flatMap { ucred in
            let pidfd: EventLoopFuture<Int32> = provider.unsafeGetSocketOption(
                level: .socket, name: NIOBSDSocket.Option(rawValue: coffer_so_peerpidfd())
            )
            return pidfd.map { Optional($0) }.recover { _ in nil }.map { resolve(ucred, pidfd: $0) }
        }
    }

    private static func resolve(_ ucred: coffer_ucred, pidfd rawPidfd: Int32?) -> PeerIdentity {
        var peer = PeerIdentity(uid: ucred.uid, gid: ucred.gid, pid: ucred.pid)
        guard let rawPidfd, rawPidfd >= 0 else { return peer }
        let pidfd = OwnedFileDescriptor(takingOwnershipOf: rawPidfd)
        // pid 0: the peer is in a pid namespace we cannot see into.
        guard ucred.pid > 0 else { return peer }
        let cgroup = readSmallFile("/proc/\(ucred.pid)/cgroup")
        let status = readSmallFile("/proc/\(ucred.pid)/status")
        guard coffer_pidfd_is_alive(pidfd.rawValue) == 1, let status else { return peer }
        // A process that changed identity since connect (a setuid helper
        // exec'd on the socket) is not credited with its new groups or unit.
        guard let now = ProcessRecords.effectiveIDs(fromStatus: status), now.uid == ucred.uid, now.gid == ucred.gid else {
            return peer
        }
        peer.unit = cgroup.flatMap(ProcessRecords.systemUnit(fromCgroup:))
        peer.groups = ProcessRecords.supplementaryGroups(fromStatus: status) ?? []
        return peer
    }

    /// Whether this kernel hands out a peer's pidfd (SO_PEERPIDFD, Linux
    /// 6.5). Without it no caller's unit or groups can be confirmed: rules
    /// on them, and credentials.sock, fail closed. Asked once, on a pair of
    /// sockets of our own.
    public static let kernelPinsPeers: Bool = {
        var pair: [Int32] = [-1, -1]
        guard socketpair(AF_UNIX, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0, &pair) == 0 else { return false }
        defer { close(pair[0]); close(pair[1]) }
        var pidfd: Int32 = -1
        var length = socklen_t(MemoryLayout<Int32>.size)
        guard getsockopt(pair[0], SOL_SOCKET, coffer_so_peerpidfd(), &pidfd, &length) == 0 else { return false }
        close(pidfd)
        return true
    }()

    private static func readSmallFile(_ path: String) -> String? {
        guard let fd = try? OwnedFileDescriptor.open(path, O_RDONLY), let bytes = try? fd.readAll(limit: 64 * 1024) else {
            return nil
        }
        return String(decoding: bytes, as: UTF8.self)
    }
}
