#if canImport(Glibc)
import Glibc
#endif

/// AF_UNIX sockets by path: the one place that builds a `sockaddr_un`.
public enum UnixSocket {
    /// A new AF_UNIX socket of `type` (SOCK_STREAM, SOCK_DGRAM), close-on-exec.
    public static func make(_ type: __socket_type) throws -> OwnedFileDescriptor {
        let fd = try syscall("socket") { socket(AF_UNIX, Int32(type.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0) }
        return OwnedFileDescriptor(takingOwnershipOf: fd)
    }

    /// A socket of `type` connected to `path`.
    public static func connect(to path: String, type: __socket_type = SOCK_STREAM) throws -> OwnedFileDescriptor {
        let fd = try make(type)
        _ = try withAddress(path) { address, length in
            try syscall("connect") { Glibc.connect(fd.rawValue, address, length) }
        }
        return fd
    }

    /// Binds `fd` to `path`.
    public static func bind(_ fd: borrowing OwnedFileDescriptor, to path: String) throws {
        _ = try withAddress(path) { address, length in
            try syscall("bind") { Glibc.bind(fd.rawValue, address, length) }
        }
    }

    /// Whether something accepts connections on `path` (a live daemon, as
    /// opposed to a socket file left by a crash).
    public static func isServed(_ path: String, type: __socket_type = SOCK_STREAM) -> Bool {
        (try? connect(to: path, type: type)) != nil
    }

    /// Calls `body` with `path` as a `sockaddr_un`; ENAMETOOLONG when it does
    /// not fit in `sun_path` (108 bytes with its NUL on Linux, unix(7)).
    public static func withAddress<R>(
        _ path: String, _ body: (UnsafePointer<sockaddr>, socklen_t) throws -> R
    ) throws -> R {
        var address = sockaddr_un()
        address.sun_family = sa_family_t(AF_UNIX)
        let bytes = Array(path.utf8)
        guard !bytes.isEmpty, bytes.count < MemoryLayout.size(ofValue: address.sun_path) else {
            throw SyscallError(function: "sockaddr_un", errno: ENAMETOOLONG)
        }
        withUnsafeMutableBytes(of: &address.sun_path) { $0.copyBytes(from: bytes) }
        return try withUnsafePointer(to: &address) {
            try $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                try body($0, socklen_t(MemoryLayout<sockaddr_un>.size))
            }
        }
    }
}
