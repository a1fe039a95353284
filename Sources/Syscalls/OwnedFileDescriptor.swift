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

    /// The most one write(2) moves. A single call for a whole 68 MB store
    /// file stays tens of milliseconds in the kernel, where a kernel built
    /// with PREEMPT_NONE lets nothing else run on that core: a get woken
    /// meanwhile waits for it (docs/performance.md).
    static let largestTransfer = 1 << 20

    public func writeAll(_ bytes: UnsafeRawBufferPointer) throws {
        var offset = 0
        while offset < bytes.count {
            // At most 1 MiB per call (largestTransfer says why).
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

    /// Everything from the current offset to the end, 64 KiB per read(2).
    ///
    /// Reading straight into one buffer of the size fstat gives was tried:
    /// loads were a little faster, but cofferd's RSS after loading a
    /// 100k-secret store rose from 55 to 69 MiB (the heap laid out
    /// differently around the parse; malloc_trim could return less), so
    /// the array grows as the file is read.
    public func readAll(limit: Int = 1 << 30) throws -> [UInt8] {
        var result: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 64 * 1024)
        while true {
            let count = try chunk.withUnsafeMutableBytes { buffer in
                try syscall("read") { Glibc.read(rawValue, buffer.baseAddress!, buffer.count) }
            }
            if count == 0 { break }
            result.append(contentsOf: chunk[0..<count])
            if result.count > limit { throw SyscallError(function: "read", errno: EFBIG) }
        }
        return result
    }

    /// A small file that holds a secret (a key, a password), read into one
    /// array made once at its full size: no growing copy and no read chunk
    /// is left behind, and a failed read zeroes what it had. The caller
    /// wipes what it gets.
    public func readSecret(limit: Int) throws -> [UInt8] {
        var buffer = [UInt8](repeating: 0, count: limit + 1)
        var filled = 0
        do {
            while filled <= limit {
                let count = try buffer.withUnsafeMutableBytes { bytes in
                    try syscall("read") { Glibc.read(rawValue, bytes.baseAddress! + filled, bytes.count - filled) }
                }
                if count == 0 { break }
                filled += count
            }
            if filled > limit { throw SyscallError(function: "read", errno: EFBIG) }
        } catch {
            buffer.withUnsafeMutableBytes { explicit_bzero($0.baseAddress!, $0.count) }
            throw error
        }
        // Shortening keeps the storage: nothing is copied.
        buffer.removeLast(buffer.count - filled)
        return buffer
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
