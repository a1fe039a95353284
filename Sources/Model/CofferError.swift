/// The error every layer above the crypto reports to a client.
///
/// Like postgres-nio's PSQLError: `code` is stable, `description` is a
/// message we wrote (never a value, a verify candidate or key bytes, never an
/// echo of client input), and `debugDescription` may add the underlying
/// cause for the daemon's own log. The wire protocol maps codes in one place
/// (Server's ErrorCode+Wire.swift).
public struct CofferError: Error, Sendable, Equatable, CustomStringConvertible, CustomDebugStringConvertible {
    public enum Code: Sendable, Equatable, CaseIterable {
        case badRequest
        case frameTooLarge
        case unknownOperation
        case denied
        case notFound
        case conflict
        /// The secret or token is past its `expires_at`.
        case expired
        case unavailable
        case `internal`
    }

    public let code: Code
    public let message: String
    public let underlying: String?

    public init(_ code: Code, _ message: String, underlying: String? = nil) {
        self.code = code
        self.message = message
        self.underlying = underlying
    }

    public var description: String { message }

    public var debugDescription: String {
        "CofferError(\(code)): \(message)" + (underlying.map { " [\($0)]" } ?? "")
    }

    public static func == (lhs: CofferError, rhs: CofferError) -> Bool {
        lhs.code == rhs.code && lhs.message == rhs.message
    }
}
