import Model
#if canImport(Glibc)
import Glibc
#endif

/// The three sockets of ../shared/DESIGN.md, all in the runtime directory.
public enum SocketListener: CaseIterable, Sendable {
    case service, admin, credentials

    public var fileName: String {
        switch self {
        case .service: return "coffer.sock"
        case .admin: return "admin.sock"
        case .credentials: return "credentials.sock"
        }
    }

    /// coffer.sock and credentials.sock are open to every local user (the
    /// policy decides per request); admin.sock to the daemon's user only.
    public var mode: mode_t {
        switch self {
        case .service, .credentials: return 0o666
        case .admin: return 0o600
        }
    }

    var listener: Listener {
        switch self {
        case .service: return .service
        case .admin: return .admin
        case .credentials: return .credentials
        }
    }
}

/// Whether something is already accepting on `path`: then another cofferd
/// runs and we must not take its socket. A socket file nobody accepts on was
/// left by a crash and may be replaced.
func socketIsServed(_ path: String) -> Bool {
    let fd = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
    guard fd >= 0 else { return false }
    defer { close(fd) }
    var address = sockaddr_un()
    address.sun_family = sa_family_t(AF_UNIX)
    let bytes = Array(path.utf8)
    guard bytes.count < MemoryLayout.size(ofValue: address.sun_path) else { return false }
    withUnsafeMutableBytes(of: &address.sun_path) { $0.copyBytes(from: bytes) }
    return withUnsafePointer(to: &address) {
        $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
            connect(fd, $0, socklen_t(MemoryLayout<sockaddr_un>.size)) == 0
        }
    }
}
