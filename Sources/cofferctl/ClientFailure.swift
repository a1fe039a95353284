/// Why cofferctl stops, and with which exit status (docs/cofferctl.md).
struct ClientFailure: Error {
    enum Kind: Int32 {
        /// verify: the value does not match.
        case noMatch = 1
        /// Bad arguments or a BAD_REQUEST answer.
        case usage = 2
        case notFound = 3
        case denied = 4
        /// cofferd is not running or the connection broke.
        case unreachable = 5
        /// Any other error answer (CONFLICT, UNAVAILABLE, INTERNAL, …).
        case failed = 6
    }

    let kind: Kind
    let message: String

    init(_ kind: Kind, _ message: String) {
        self.kind = kind
        self.message = message
    }

    /// The exit status for a protocol error code.
    static func fromWire(code: String, message: String) -> ClientFailure {
        switch code {
        case "BAD_REQUEST", "FRAME_TOO_LARGE", "UNKNOWN_OP": return ClientFailure(.usage, "\(code): \(message)")
        case "NOT_FOUND": return ClientFailure(.notFound, "\(code): \(message)")
        case "DENIED": return ClientFailure(.denied, "\(code): \(message)")
        default: return ClientFailure(.failed, "\(code): \(message)")
        }
    }
}
