import Foundation
import Syscalls

/// A datagram socket standing in for systemd's NOTIFY_SOCKET, so a test can
/// wait for cofferd's READY=1 instead of sleeping.
public final class NotifySocket: @unchecked Sendable {
    public let path: String
    private let socket: OwnedFileDescriptor
    private var fd: Int32 { socket.rawValue }
    /// Every message received so far, oldest first.
    public private(set) var messages: [String] = []

    public init(path: String) throws {
        self.path = path
        socket = try UnixSocket.make(SOCK_DGRAM)
        try UnixSocket.bind(socket, to: path)
        var timeout = timeval(tv_sec: 0, tv_usec: 200_000)
        setsockopt(socket.rawValue, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
    }

    deinit {
        unlink(path)
    }

    /// Waits for a message containing `READY=1`, while `alive()` holds, at
    /// most `timeout`. Returns whether it came.
    public func waitForReady(timeout: Duration, alive: () -> Bool) -> Bool {
        waitFor(timeout: timeout, alive: alive) { $0.contains("READY=1") } != nil
    }

    /// Receives until a message satisfies `match` (returned), `alive()`
    /// stops holding, or `timeout` passes (nil). Messages received before
    /// this call count too, except the first `skip`.
    public func waitFor(
        timeout: Duration, after skip: Int = 0, alive: () -> Bool = { true }, _ match: (String) -> Bool
    ) -> String? {
        let deadline = ContinuousClock.now + timeout
        var seen = skip
        var buffer = [UInt8](repeating: 0, count: 4096)
        while true {
            while seen < messages.count {
                if match(messages[seen]) { return messages[seen] }
                seen += 1
            }
            guard ContinuousClock.now < deadline else { return nil }
            let n = recv(fd, &buffer, buffer.count, 0)
            if n > 0 {
                messages.append(String(decoding: buffer[0..<n], as: UTF8.self))
            } else if !alive() {
                return nil
            }
        }
    }
}
