import Foundation
import Syscalls

/// A plain blocking client for the NDJSON protocol, as any service would
/// write one.
public final class LineClient {
    private let socket: OwnedFileDescriptor
    private var fd: Int32 { socket.rawValue }
    private var pending: [UInt8] = []

    public init(socketPath: String) throws {
        socket = try UnixSocket.connect(to: socketPath)
        var timeout = timeval(tv_sec: 30, tv_usec: 0)
        setsockopt(socket.rawValue, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
    }
    public func send(_ text: String) throws {
        var bytes = Array(text.utf8)
        var offset = 0
        while offset < bytes.count {
            let n = bytes.withUnsafeMutableBytes { Glibc.send(fd, $0.baseAddress! + offset, $0.count - offset, Int32(MSG_NOSIGNAL)) }
            guard n > 0 else { throw POSIXError(POSIXErrorCode(rawValue: errno) ?? .EIO) }
            offset += n
        }
    }

    /// Half-closes: no more requests, but answers still arrive.
    public func shutdownWrite() {
        shutdown(fd, Int32(SHUT_WR))
    }

    /// The next line, or nil when the daemon closed the connection.
    public func readLine() throws -> String? {
        var chunk = [UInt8](repeating: 0, count: 65536)
        while true {
            if let newline = pending.firstIndex(of: 10) {
                let line = String(decoding: pending[..<newline], as: UTF8.self)
                pending.removeSubrange(...newline)
                return line
            }
            let n = recv(fd, &chunk, chunk.count, 0)
            if n == 0 { return nil }
            guard n > 0 else { throw POSIXError(POSIXErrorCode(rawValue: errno) ?? .EIO) }
            pending.append(contentsOf: chunk[0..<n])
        }
    }

    public func call(_ request: String) throws -> [String: Any] {
        try send(request + "\n")
        guard let line = try readLine(),
              let object = try JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any]
        else { throw POSIXError(.ECONNRESET) }
        return object
    }
}
