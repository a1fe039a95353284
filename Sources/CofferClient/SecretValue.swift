import LockedMemory

/// A secret's bytes, held in memory of their own and zeroed when the value
/// goes (LockedMemory's `TransientBytes`). It never prints them:
/// `description` is a byte count.
public final class SecretValue: Sendable, CustomStringConvertible, CustomDebugStringConvertible {
    private let bytes: TransientBytes

    init(count: Int, filling body: (UnsafeMutableRawBufferPointer) -> Void) {
        bytes = TransientBytes(count: count, filling: body)
    }

    public var count: Int { bytes.count }

    public func withUnsafeBytes<R>(_ body: (UnsafeRawBufferPointer) throws -> R) rethrows -> R {
        try bytes.withUnsafeBytes(body)
    }

    /// The value as text, when it is UTF-8: a String the caller owns and
    /// that Swift does not wipe. Prefer `withUnsafeBytes` where the bytes
    /// will do.
    public var text: String? {
        withUnsafeBytes { String(validating: $0, as: UTF8.self) }
    }

    public var description: String { "SecretValue(\(count) bytes)" }
    public var debugDescription: String { description }
}
