#if canImport(Glibc)
import Glibc
#endif

/// A file descriptor closed exactly once: by `close()` or, failing that, on
/// deinit. Non-copyable, so no second owner can close it again.
public struct OwnedFileDescriptor: ~Copyable {
    public let rawValue: Int32

    public init(takingOwnershipOf rawValue: Int32) {
        precondition(rawValue >= 0, "invalid file descriptor")
        self.rawValue = rawValue
    }

    /// open(2) with O_CLOEXEC always added.
    public static func open(_ path: String, _ flags: Int32, mode: mode_t = 0) throws -> OwnedFileDescriptor {
        let fd = try syscall("open") { Glibc.open(path, flags | O_CLOEXEC, mode) }
        return OwnedFileDescriptor(takingOwnershipOf: fd)
    }

    /// Closes now and reports a failure (a failed close can mean lost data on
    /// some filesystems). EINTR is not retried: on Linux the descriptor is gone
    /// either way (close(2), "Dealing with error returns from close()").
    public consuming func close() throws {
        let fd = rawValue
        discard self
        if Glibc.close(fd) == -1, errno != EINTR {
            throw SyscallError(function: "close", errno: errno)
        }
    }

    deinit {
        _ = Glibc.close(rawValue)
    }

    /// The most one read(2) or write(2) moves. A single call for a whole
    /// 68 MB store file stays tens of milliseconds in the kernel, where a
    /// kernel built with PREEMPT_NONE lets nothing else run on that core: a
    /// get woken meanwhile waited for it (docs/performance.md).
    static let largestTransfer = 1 << 20

    public func writeAll(_ bytes: UnsafeRawBufferPointer) throws {
        var offset = 0
        while offset < bytes.count {
            // At most 1 MiB per write(2), for the reason readAll gives.
            let length = min(bytes.count - offset, Self.largestTransfer)
            let written = try syscall("write") {
                Glibc.write(rawValue, bytes.baseAddress! + offset, length)
            }
            offset += written
        }
    }

    public func writeAll(_ bytes: [UInt8]) throws {
        try bytes.withUnsafeBytes { try writeAll($0) }
    }

    /// Everything from the current offset to the end. With `sizeHint` (the
    /// size fstat gave), the bytes go straight into one buffer of that size
    /// instead of being appended chunk by chunk (a 68 MB store file was
    /// copied twice over as the array grew); a file that turns out larger
    /// is still read whole.
    public func readAll(limit: Int = 1 << 30, sizeHint: Int = 0) throws -> [UInt8] {
        // One byte more than the hint, so that a read of the hinted size
        // still looks for the end in the same buffer.
        let capacity = min(max(sizeHint, 0), limit) + 1
        var failure: (any Error)?
        var result = [UInt8](unsafeUninitializedCapacity: capacity) { buffer, count in
            count = 0
            while count < buffer.count {
                do {
                    let want = min(buffer.count - count, Self.largestTransfer)
                    let n = try syscall("read") { Glibc.read(rawValue, buffer.baseAddress! + count, want) }
                    if n == 0 { return }
                    count += n
                } catch {
                    failure = error
                    return
                }
            }
        }
        if let failure { throw failure }
        guard result.count == capacity else { return result }
        var chunk = [UInt8](repeating: 0, count: 64 * 1024)
        while true {
            if result.count > limit { throw SyscallError(function: "read", errno: EFBIG) }
            let count = try chunk.withUnsafeMutableBytes { buffer in
                try syscall("read") { Glibc.read(rawValue, buffer.baseAddress!, buffer.count) }
            }
            if count == 0 { break }
            result.append(contentsOf: chunk[0..<count])
        }
        if result.count > limit { throw SyscallError(function: "read", errno: EFBIG) }
        return result
    }

    public func fsync() throws {
        try syscall("fsync") { Glibc.fsync(rawValue) }
    }

    public func status() throws -> stat {
        var info = stat()
        try syscall("fstat") { Glibc.fstat(rawValue, &info) }
        return info
    }
}
