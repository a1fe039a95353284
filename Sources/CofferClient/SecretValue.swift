import CLibCrypto

/// A secret's bytes, held in memory of their own and zeroed when the value
/// goes. It never prints them: `description` is a byte count.
public final class SecretValue: Sendable, CustomStringConvertible, CustomDebugStringConvertible {
    // nonisolated(unsafe): written only while the value is being made,
    // before anyone else can see it.
    private nonisolated(unsafe) let storage: UnsafeMutableRawBufferPointer

    init(count: Int, filling body: (UnsafeMutableRawBufferPointer) -> Void) {
        storage = .allocate(byteCount: max(count, 1), alignment: 1)
        body(UnsafeMutableRawBufferPointer(rebasing: storage[0..<count]))
        self.count = count
    }

    public let count: Int

    deinit {
        // OPENSSL_cleanse: a memset the compiler cannot drop.
        OPENSSL_cleanse(storage.baseAddress, storage.count)
        storage.deallocate()
    }

    public func withUnsafeBytes<R>(_ body: (UnsafeRawBufferPointer) throws -> R) rethrows -> R {
        try body(UnsafeRawBufferPointer(rebasing: storage[0..<count]))
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
