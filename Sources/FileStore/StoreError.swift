/// Failures of the file store. Messages name files and secrets, never values.
public struct StoreError: Error, CustomStringConvertible, CustomDebugStringConvertible {
    public enum Code: Sendable, Equatable {
        case corrupt
        /// The file is well-formed but changed outside cofferd (MAC), or an
        /// older generation than the one loaded (rollback).
        case tampered
        case permissions
        case io
        case notFound
        /// The keyring is sealed: nothing can be checked or written.
        case sealed
        /// The change is made and served, but the disk did not confirm all
        /// it needs to survive a power loss (a directory sync, the recorded
        /// generation): not acknowledged as durable.
        case notDurable
    }

    public let code: Code
    public let message: String
    let underlying: String?

    public init(_ code: Code, _ message: String, underlying: String? = nil) {
        self.code = code
        self.message = message
        self.underlying = underlying
    }

    public var description: String { message }
    public var debugDescription: String { "StoreError(\(code)): \(message)" + (underlying.map { " [\($0)]" } ?? "") }
}
