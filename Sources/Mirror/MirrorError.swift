/// Failures of the mirror. `description` is ours and never holds a row's
/// content or the conninfo; PostgreSQL's own message (which may quote the
/// statement) goes to `debugDescription`, for the daemon's log only.
public struct MirrorError: Error, Sendable, CustomStringConvertible, CustomDebugStringConvertible {
    public enum Code: Sendable, Equatable {
        case connection
        case query
        case uniqueViolation
        case schema
        /// A row failed its MAC or its record did not open: not taken.
        case tampered
        case state
    }

    public let code: Code
    public let message: String
    let detail: String?

    public init(_ code: Code, _ message: String, detail: String? = nil) {
        self.code = code
        self.message = message
        self.detail = detail
    }

    public var description: String { message }
    public var debugDescription: String { "MirrorError(\(code)): \(message)" + (detail.map { " [\($0)]" } ?? "") }
}
