/// Errors of the keyring. `description` never holds key material (there is
/// none to hold: these are about files, formats and state).
public struct KeyringError: Error, CustomStringConvertible, CustomDebugStringConvertible {
    public enum Code: Sendable, Equatable {
        case keyFileUnreadable
        case keyFilePermissions
        case malformedKey
        case randomFailed
        case unknownKeyID
        case sealed
    }

    public let code: Code
    public let message: String

    public init(_ code: Code, _ message: String) {
        self.code = code
        self.message = message
    }

    public var description: String { message }
    public var debugDescription: String { "KeyringError(\(code)): \(message)" }
}
