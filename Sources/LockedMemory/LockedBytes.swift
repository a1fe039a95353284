import CCofferShims
import CLibCrypto
#if canImport(Glibc)
import Glibc
#endif

/// A fixed-size byte buffer in the secure heap (locked, never in a core dump),
/// wiped with OPENSSL_cleanse when released or when `wipe()` is called.
///
/// Holds key material and opened plaintext. It never prints its contents: its
/// description is a byte count.
public final class LockedBytes: @unchecked Sendable, CustomStringConvertible {
    // @unchecked Sendable: the pointer is written only while the buffer is being
    // filled by its creator (before it is shared) and by wipe(), which callers
    // use when no reader remains.
    private let pointer: UnsafeMutableRawPointer
    public let count: Int

    public struct AllocationError: Error, CustomStringConvertible {
        public let requested: Int
        public var description: String {
            "locked memory exhausted (could not allocate \(requested) bytes in the secure heap)"
        }
    }

    /// Allocates `count` zeroed bytes; fails rather than fall back to ordinary
    /// memory (CRYPTO_secure_malloc silently uses malloc when the heap is absent).
    public init(count: Int) throws(AllocationError) {
        let size = max(count, 1)
        guard SecureHeap.isInitialized,
              let raw = coffer_secure_malloc(size)
        else { throw AllocationError(requested: count) }
        guard CRYPTO_secure_allocated(raw) == 1 else {
            coffer_openssl_free(raw)
            throw AllocationError(requested: count)
        }
        memset(raw, 0, size)
        self.pointer = raw
        self.count = count
    }

    /// Allocates and fills through `body`, which gets the whole buffer.
    public convenience init(
        count: Int,
        filling body: (UnsafeMutableRawBufferPointer) throws -> Void
    ) throws {
        try self.init(count: count)
        try body(UnsafeMutableRawBufferPointer(start: pointer, count: count))
    }

    /// Copies `bytes` in, then wipes the source.
    public convenience init(takingAndWiping bytes: inout [UInt8]) throws {
        // Wiped also when the secure heap is full and init throws.
        defer { bytes.wipe() }
        let n = bytes.count
        try self.init(count: n)
        bytes.withUnsafeBytes { src in
            if n > 0 { pointer.copyMemory(from: src.baseAddress!, byteCount: n) }
        }
    }

    deinit {
        coffer_secure_clear_free(pointer, max(count, 1))
    }

    public func withUnsafeBytes<R>(_ body: (UnsafeRawBufferPointer) throws -> R) rethrows -> R {
        try body(UnsafeRawBufferPointer(start: pointer, count: count))
    }

    public func withUnsafeMutableBytes<R>(_ body: (UnsafeMutableRawBufferPointer) throws -> R) rethrows -> R {
        try body(UnsafeMutableRawBufferPointer(start: pointer, count: count))
    }

    /// Zeroes the contents now (OPENSSL_cleanse is not optimised away).
    public func wipe() {
        OPENSSL_cleanse(pointer, count)
    }

    /// Constant-time comparison (CRYPTO_memcmp): the time taken does not
    /// depend on where the first difference is.
    public func constantTimeEquals(_ other: UnsafeRawBufferPointer) -> Bool {
        guard other.count == count else { return false }
        if count == 0 { return true }
        return CRYPTO_memcmp(pointer, other.baseAddress!, count) == 0
    }

    public var description: String { "LockedBytes(\(count) bytes)" }
}

extension Array where Element == UInt8 {
    /// Zeroes the array's storage in place (when uniquely referenced, which a
    /// local buffer is) and empties it.
    public mutating func wipe() {
        withUnsafeMutableBytes { buffer in
            if let base = buffer.baseAddress { OPENSSL_cleanse(base, buffer.count) }
        }
        removeAll(keepingCapacity: false)
    }

    /// Makes room for `extra` more bytes without leaving a copy behind. A
    /// plain append that outgrows the storage copies the bytes to a bigger
    /// block and frees the old one as it is; here the bytes move to a new
    /// array and the old storage is zeroed before it goes. For buffers that
    /// may hold a value (the request framer, the answer writer), uniquely
    /// referenced as those are.
    public mutating func reserveWiping(_ extra: Int) {
        let needed = count + extra
        guard needed > capacity else { return }
        var grown: [UInt8] = []
        grown.reserveCapacity(Swift.max(needed, capacity * 2))
        grown.append(contentsOf: self)
        wipe()
        self = grown
    }
}
