import CCofferShims
import CLibCrypto
@_spi(CustomByteBufferAllocator) import NIOCore

extension ByteBufferAllocator {
    /// The allocator of every connection's buffers (the pooled receive
    /// buffers, the answers): a buffer's bytes are zeroed before its memory
    /// goes back to malloc, and growing one moves it and zeroes the old
    /// block (CCofferShims' wiping heap). Requests and answers may carry
    /// values; no freed block keeps one.
    static let wiping = ByteBufferAllocator(
        allocate: { coffer_wiping_malloc($0) },
        reallocate: { coffer_wiping_realloc($0, $1, $2) },
        deallocate: { coffer_wiping_free($0) },
        copy: { coffer_wiping_copy($0, $1, $2) }
    )
}

extension ByteBuffer {
    /// Zeroes the readable bytes where they are, in the storage every copy
    /// of this buffer shares. `withUnsafeMutableReadableBytes` would copy on
    /// write first whenever NIO still holds a reference (its pooled receive
    /// buffer always does) and zero only the copy.
    func wipeInPlace() {
        withUnsafeReadableBytes { bytes in
            guard let base = bytes.baseAddress, bytes.count > 0 else { return }
            OPENSSL_cleanse(UnsafeMutableRawPointer(mutating: base), bytes.count)
        }
    }
}
