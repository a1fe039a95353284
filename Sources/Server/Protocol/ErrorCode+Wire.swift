import Audit
import FileStore
import Keyring
import LockedMemory
import Model
import Seal

// The one place where internal errors become protocol errors
// (docs/protocol.md, "Errors").

extension CofferError.Code {
    /// The `error.code` string on the wire.
    var wireName: String {
        switch self {
        case .badRequest: return "BAD_REQUEST"
        case .frameTooLarge: return "FRAME_TOO_LARGE"
        case .unknownOperation: return "UNKNOWN_OP"
        case .denied: return "DENIED"
        case .notFound: return "NOT_FOUND"
        case .conflict: return "CONFLICT"
        case .expired: return "EXPIRED"
        case .unavailable: return "UNAVAILABLE"
        case .internal: return "INTERNAL"
        }
    }

    /// COFFER_RESULT for an event that ended in this error.
    var auditResult: AuditResult {
        switch self {
        case .denied: return .denied
        case .notFound: return .notFound
        default: return .error
        }
    }
}

extension CofferError {
    /// Maps any error from the lower layers. Their descriptions are already
    /// free of values; the debug description goes to the daemon's log only.
    static func from(_ error: any Error) -> CofferError {
        switch error {
        case let e as CofferError:
            return e
        case let e as SealError where e.code == .authenticationFailed:
            return CofferError(.internal, "a stored record failed authentication (tampered or moved); it is not served",
                               underlying: e.debugDescription)
        case let e as SealError:
            return CofferError(.internal, "a cryptographic operation failed", underlying: e.debugDescription)
        case let e as KeyringError where e.code == .sealed:
            return CofferError(.unavailable, "cofferd is sealed: no master key is loaded")
        case let e as KeyringError where e.code == .unknownKeyID:
            return CofferError(.unavailable, "the master key that sealed this record is not loaded")
        case let e as KeyringError:
            return CofferError(.internal, "keyring error", underlying: e.debugDescription)
        case let e as StoreError where e.code == .notDurable:
            // Not "nothing was changed": the change is served.
            return CofferError(.unavailable, "the change was made and is served, but the disk did not confirm it: it may not survive a power loss",
                               underlying: e.debugDescription)
        case let e as StoreError:
            return CofferError(.unavailable, "the store could not be written; nothing was changed", underlying: e.debugDescription)
        case let e as LockedBytes.AllocationError:
            return CofferError(.unavailable, "locked memory is exhausted; try again", underlying: e.description)
        case let e as AuditError:
            return CofferError(.unavailable, "the audit log is unreachable; refusing to answer", underlying: e.description)
        default:
            return CofferError(.internal, "internal error", underlying: String(describing: type(of: error)))
        }
    }
}
