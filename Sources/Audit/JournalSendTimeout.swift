import Dispatch
import Foundation
import Synchronization
import Syscalls
#if canImport(Glibc)
import Glibc
#endif

/// Gives libsystemd's journal socket a send timeout.
///
/// sd_journal_sendv sends on one socket of libsystemd's own, made on the
/// process's first send: a blocking datagram socket with no timeout, that
/// no call hands out (systemd's src/libsystemd/sd-journal/journal-send.c,
/// journal_fd()). A journald that stops reading (stopped, wedged) fills its
/// queue, and from then on every send blocks its thread, an event loop's
/// included, for as long as journald stays so. So at startup cofferd sends
/// one message, finds the one socket that send made (the Unix datagram
/// socket, not connected to anything, that was not there before it) and
/// sets SO_SNDTIMEO on it (socket(7)): a blocked send then gives up with
/// EAGAIN after `timeout`, and sd_journal_sendv returns -EAGAIN (after a
/// second wait of its own, for the copy it then tries to pass as a memfd).
public enum JournalSendTimeout {
    public enum Outcome: Sendable, Equatable {
        /// Every later send gives up after the timeout.
        case bounded
        /// The socket could not be told apart: sends are not bounded.
        case unbounded
        /// The first send itself did not finish within the timeout: the
        /// journal does not read now.
        case stalled
    }

    /// Sends `fields` and bounds every later send by `timeout`. The first
    /// send has no timeout yet, so it runs on a thread of its own and is
    /// waited for at most `timeout`.
    public static func install(_ timeout: Duration, sendingFirst fields: [(String, String)]) -> Outcome {
        let before = unconnectedDatagramSockets()
        let sent = Mutex<Int32?>(nil)
        let done = DispatchSemaphore(value: 0)
        Thread.detachNewThread {
            let rc = JournalAuditSink.sendv(fields)
            sent.withLock { $0 = rc }
            done.signal()
        }
        let (seconds, attoseconds) = timeout.components
        let wait = Double(seconds) + Double(attoseconds) / 1e18
        guard done.wait(timeout: .now() + wait) == .success else { return .stalled }
        guard sent.withLock({ $0 }) == 0 else { return .unbounded }
        let after = unconnectedDatagramSockets()
        var made = after.subtracting(before)
        // libsystemd had made its socket already (an earlier send): it is
        // the one such socket there is.
        if made.isEmpty, after.count == 1 { made = after }
        guard made.count == 1, let fd = made.first else { return .unbounded }
        var value = timeval(tv_sec: Int(seconds), tv_usec: Int(attoseconds / 1_000_000_000_000))
        return setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &value, socklen_t(MemoryLayout<timeval>.size)) == 0 ? .bounded : .unbounded
    }

    /// The process's Unix datagram sockets that are connected to nothing
    /// (libsystemd addresses each send instead).
    static func unconnectedDatagramSockets() -> Set<Int32> {
        guard let directory = opendir("/proc/self/fd") else { return [] }
        defer { closedir(directory) }
        var found: Set<Int32> = []
        while let entry = readdir(directory) {
            let name = withUnsafeBytes(of: entry.pointee.d_name) { String(decoding: $0.prefix { $0 != 0 }, as: UTF8.self) }
            guard let fd = Int32(name), isUnconnectedUnixDatagram(fd) else { continue }
            found.insert(fd)
        }
        return found
    }

    private static func isUnconnectedUnixDatagram(_ fd: Int32) -> Bool {
        var info = stat()
        guard fstat(fd, &info) == 0, info.st_mode & S_IFMT == S_IFSOCK else { return false }
        func option(_ name: Int32) -> Int32? {
            var value: Int32 = 0
            var length = socklen_t(MemoryLayout<Int32>.size)
            return getsockopt(fd, SOL_SOCKET, name, &value, &length) == 0 ? value : nil
        }
        guard option(SO_DOMAIN) == AF_UNIX, option(SO_TYPE) == Int32(SOCK_DGRAM.rawValue) else { return false }
        var address = sockaddr_un()
        var length = socklen_t(MemoryLayout<sockaddr_un>.size)
        let connected = withUnsafeMutablePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getpeername(fd, $0, &length) }
        }
        return connected != 0 && errno == ENOTCONN
    }
}

/// Whether the journal has stopped taking events: set when a send gave up
/// after its timeout, cleared when a probe goes through again. While set,
/// no send is tried (each would wait the timeout again, holding the audit
/// chain's lock): events fail at once, reveals are refused, and the rest
/// carries on with its events counted lost (docs/audit.md, "A stalled
/// journal").
public final class JournalStall: Sendable {
    private let stalled = Atomic<Bool>(false)
    private let goodProbes = Atomic<Int>(0)
    /// Probes in a row that must go through quickly before events are
    /// sent again: a journald that is slow, not stopped, takes one probe
    /// now and then, and would otherwise have every event loop wait out a
    /// send timeout again and again.
    static let probesToRecover = 2

    public init() {}

    public var isStalled: Bool { stalled.load(ordering: .relaxed) }

    func begin() {
        goodProbes.store(0, ordering: .relaxed)
        stalled.store(true, ordering: .relaxed)
    }

    /// Counts a probe; true when it ends the stall.
    func probed(wentThroughQuickly: Bool) -> Bool {
        guard wentThroughQuickly else {
            goodProbes.store(0, ordering: .relaxed)
            return false
        }
        guard goodProbes.add(1, ordering: .relaxed).newValue >= Self.probesToRecover else { return false }
        stalled.store(false, ordering: .relaxed)
        return true
    }
}
