import Syscalls
#if canImport(Glibc)
import Glibc
#endif

/// Watches the state directory with inotify(7) for a new store file, or a
/// store log replaced or removed: IN_CLOSE_WRITE (an editor writing in
/// place), IN_MOVED_TO (a rename-save, `git pull`, cofferd's own
/// compactions), IN_DELETE, IN_ATTRIB (a chmod, chown or touch: the file
/// is no longer as cofferd last saw it, and until a reload looks at it a
/// compaction will not write over it), and IN_Q_OVERFLOW (events were lost:
/// look again anyway). Watching the directory, not the file, follows renames over it.
/// cofferd's own appends to the log, through the descriptor it keeps open,
/// raise none of these.
public final class StoreWatcher: Sendable {
    private let fd: Int32
    private let fileNames: Set<String>

    public init(directory: String, fileNames: Set<String> = [SecretStore.fileName, SecretStore.logFileName]) throws {
        let fd = try syscall("inotify_init1") { inotify_init1(Int32(IN_CLOEXEC | IN_NONBLOCK)) }
        do {
            _ = try syscall("inotify_add_watch") { inotify_add_watch(fd, directory, UInt32(IN_CLOSE_WRITE | IN_MOVED_TO | IN_DELETE | IN_ATTRIB)) }
        } catch {
            close(fd)
            throw error
        }
        self.fd = fd
        self.fileNames = fileNames
    }

    deinit { close(fd) }

    /// Waits up to `timeoutMilliseconds` for events; true when one may
    /// concern the store file.
    public func waitForChange(timeoutMilliseconds: Int32) throws -> Bool {
        var pollfd = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
        let ready = try syscall("poll") { poll(&pollfd, 1, timeoutMilliseconds) }
        guard ready > 0 else { return false }
        return try drain()
    }

    /// Reads every queued event; true when one names the store file or log,
    /// or the queue overflowed.
    private func drain() throws -> Bool {
        var relevant = false
        var buffer = [UInt8](repeating: 0, count: 64 * 1024)
        while true {
            let count = buffer.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
            if count < 0 {
                if errno == EAGAIN { return relevant }
                if errno == EINTR { continue }
                throw SyscallError(function: "read(inotify)", errno: errno)
            }
            relevant = relevant || Self.events(in: buffer[0..<count]).contains { mask, name in
                mask & UInt32(IN_Q_OVERFLOW) != 0 || fileNames.contains(name)
            }
        }
    }

    /// (mask, name) of each `struct inotify_event` in `bytes`.
    static func events(in bytes: ArraySlice<UInt8>) -> [(UInt32, String)] {
        var out: [(UInt32, String)] = []
        var offset = bytes.startIndex
        func u32(_ at: Int) -> UInt32 {
            UInt32(bytes[at]) | UInt32(bytes[at + 1]) << 8 | UInt32(bytes[at + 2]) << 16 | UInt32(bytes[at + 3]) << 24
        }
        while offset + 16 <= bytes.endIndex {
            let mask = u32(offset + 4)
            let length = Int(u32(offset + 12))
            guard offset + 16 + length <= bytes.endIndex else { break }
            let name = bytes[(offset + 16)..<(offset + 16 + length)].prefix { $0 != 0 }
            out.append((mask, String(decoding: name, as: UTF8.self)))
            offset += 16 + length
        }
        return out
    }
}
