/// What went wrong, as a code a program can switch on. `description`
/// names the code only; cofferd's message (which names secrets, never a
/// value) is in `debugDescription`.
public struct CofferClientError: Error, CustomStringConvertible, CustomDebugStringConvertible, Sendable {
    public struct Code: Hashable, Sendable, CustomStringConvertible {
        public let name: String
        private init(_ name: String) { self.name = name }

        // The protocol's error codes (docs/protocol.md, "Errors").
        public static let badRequest = Code("BAD_REQUEST")
        public static let frameTooLarge = Code("FRAME_TOO_LARGE")
        public static let unknownOperation = Code("UNKNOWN_OP")
        public static let denied = Code("DENIED")
        public static let notFound = Code("NOT_FOUND")
        public static let conflict = Code("CONFLICT")
        public static let expired = Code("EXPIRED")
        public static let unavailable = Code("UNAVAILABLE")
        public static let `internal` = Code("INTERNAL")
        // The client's own.
        /// No cofferd at the socket, or the connection broke.
        public static let unreachable = Code("UNREACHABLE")
        /// An answer the client cannot read.
        public static let malformedAnswer = Code("MALFORMED_ANSWER")

        static let all: [Code] = [badRequest, frameTooLarge, unknownOperation, denied, notFound, conflict, expired, unavailable, `internal`]

        /// The code cofferd sent; an unknown one reads as INTERNAL.
        init(wire: String) { self = Self.all.first { $0.name == wire } ?? .internal }

        public var description: String { name }
    }

    public let code: Code
    /// cofferd's message, or what the client saw. Never a value.
    public let message: String

    init(_ code: Code, _ message: String) {
        self.code = code
        self.message = message
    }

    public var description: String { "CofferClientError(\(code))" }
    public var debugDescription: String { "CofferClientError(\(code)): \(message)" }
}
