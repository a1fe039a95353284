/// Why bytes are not the JSON cofferd takes. The message says where and
/// what was expected, never what the input held (it may be a value); the
/// caller decides what it means: a BAD_REQUEST for a request line, a
/// corrupt file for the store.
public struct JSONError: Error, Sendable, Equatable, CustomStringConvertible {
    public let message: String

    public init(_ message: String) {
        self.message = message
    }

    public var description: String { message }
}
