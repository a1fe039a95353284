import Model
#if canImport(Glibc)
import Glibc
#endif

/// The three sockets (docs/protocol.md), all in the runtime directory.
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
    /// The FileDescriptorName= of its systemd .socket unit (systemd/).
    public var activationName: String {
        switch self {
        case .service: return "coffer"
        case .admin: return "admin"
        case .credentials: return "credentials"
        }
    }

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
