#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// A failed system call: the function's name and the errno it set.
///
/// Modelled on SwiftNIO's `IOError`. It never carries a path or a buffer's
/// contents, only what the kernel said, so it is safe to log.
public struct SyscallError: Error, Equatable, CustomStringConvertible {
    public let function: String
    public let errno: Int32

    public init(function: String, errno: Int32) {
        self.function = function
        self.errno = errno
    }

    public var description: String {
        "\(function) failed: \(String(cString: strerror(errno))) (errno \(errno))"
    }
}

/// Runs a system call, retrying while it is interrupted (EINTR), and throws a
/// `SyscallError` naming `function` when it returns -1.
@discardableResult
@inline(__always)
public func syscall<Result: FixedWidthInteger>(
    _ function: String,
    _ body: () throws -> Result
) throws -> Result {
    while true {
        let result = try body()
        if result == -1 {
            let code = Glibc.errno
            if code == EINTR { continue }
            throw SyscallError(function: function, errno: code)
        }
        return result
    }
}
