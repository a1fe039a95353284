import Model
#if canImport(Glibc)
import Glibc
#endif

/// The three sockets (docs/protocol.md), all in the runtime directory: the
/// files and systemd names of Model's `Listener`.
extension Listener {
    public var fileName: String {
        switch self {
        case .service: return "coffer.sock"
        case .admin: return "admin.sock"
        case .credentials: return "credentials.sock"
        }
    }

    /// The FileDescriptorName= of its systemd .socket unit (systemd/).
    public var activationName: String {
        switch self {
        case .service: return "coffer"
        case .admin: return "admin"
        case .credentials: return "credentials"
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
}
