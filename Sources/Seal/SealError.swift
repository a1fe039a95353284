/// Seal and open failures. Nothing here ever holds plaintext or key bytes.
public struct SealError: Error, CustomStringConvertible, CustomDebugStringConvertible {
    public enum Code: Sendable, Equatable {
        /// Authentication failed: wrong key, or the record or its identity was
        /// changed (tampered, moved, copied).
        case authenticationFailed
        case malformedRecord
        case cryptoFailure
    }

    public let code: Code
    let detail: String

    init(_ code: Code, _ detail: String) {
        self.code = code
        self.detail = detail
    }

    public var description: String {
        switch code {
        case .authenticationFailed: return "record failed authentication"
        case .malformedRecord: return "record is malformed"
        case .cryptoFailure: return "cryptographic operation failed"
        }
    }

    public var debugDescription: String { "SealError(\(code)): \(detail)" }
}
