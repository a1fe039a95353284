import CLibCrypto

/// Bytes that may hold plaintext in ordinary (not locked) memory for a moment,
/// such as a request line carrying a `put` value. A class, so there is exactly
/// one copy of the storage and `deinit` wipes that copy (an Array could be
/// copied on write and the wipe would miss the original).
public final class TransientBytes: @unchecked Sendable {
    // @unchecked: filled once at init, then only read until deinit.
    private let storage: UnsafeMutableRawBufferPointer

    public init(copying source: UnsafeRawBufferPointer) {
        storage = .allocate(byteCount: max(source.count, 1), alignment: 1)
        if source.count > 0 { storage.baseAddress!.copyMemory(from: source.baseAddress!, byteCount: source.count) }
        count = source.count
    }

    /// `count` bytes written in place by `body` (a value decoded straight
    /// into them), before anyone else can see them.
    public init(count: Int, filling body: (UnsafeMutableRawBufferPointer) -> Void) {
        storage = .allocate(byteCount: max(count, 1), alignment: 1)
        storage.initializeMemory(as: UInt8.self, repeating: 0)
        body(UnsafeMutableRawBufferPointer(rebasing: storage[0..<count]))
        self.count = count
    }

    public let count: Int

    deinit {
        OPENSSL_cleanse(storage.baseAddress, storage.count)
        storage.deallocate()
    }

    public func withUnsafeBytes<R>(_ body: (UnsafeRawBufferPointer) throws -> R) rethrows -> R {
        try body(UnsafeRawBufferPointer(rebasing: storage[0..<count]))
    }

    public subscript(index: Int) -> UInt8 {
        precondition(index >= 0 && index < count)
        return storage[index]
    }
}
