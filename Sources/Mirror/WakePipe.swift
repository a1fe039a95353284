import CCofferShims
import Syscalls
#if canImport(Glibc)
import Glibc
#endif

/// A self-pipe: `signal` from any thread wakes the mirror's poll(2).
final class WakePipe: Sendable {
    let readEnd: Int32
    let writeEnd: Int32

    init() throws {
        var fds: [Int32] = [0, 0]
        _ = try syscall("pipe2") { coffer_pipe_cloexec(&fds) }
        for fd in fds { _ = fcntl(fd, F_SETFL, O_NONBLOCK) }
        readEnd = fds[0]
        writeEnd = fds[1]
    }

    deinit {
        close(readEnd)
        close(writeEnd)
    }

    func signal() {
        var byte: UInt8 = 1
        // A full pipe already means "wake up": EAGAIN is fine.
        _ = write(writeEnd, &byte, 1)
    }

    func drain() {
        var buffer = [UInt8](repeating: 0, count: 64)
        while read(readEnd, &buffer, buffer.count) > 0 {}
    }
}
