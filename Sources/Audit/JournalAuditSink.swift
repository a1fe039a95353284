import CLibSystemd
import Syscalls
#if canImport(Glibc)
import Glibc
#endif

/// Sends events to the systemd journal with sd_journal_sendv(3) (the
/// variadic sd_journal_send cannot be called from Swift).
///
/// sd_journal_sendv returns 0 even when no journald listens (the socket
/// is missing): that is the one failure it hides (a socket left by a dead
/// journald gives ECONNREFUSED, which it returns). So after each send
/// cofferd checks that the socket is still there; `isReachable` (status,
/// startup) also connects to it. A journald that stops reading is told by
/// the send timeout (JournalSendTimeout) and remembered (JournalStall).
public struct JournalAuditSink: AuditSink {
    public static let socketPath = "/run/systemd/journal/socket"
    public var name: String { "journal" }
    let chainer: AuditChainer?
    let socketPath: String
    public let stall = JournalStall()
    /// The send timeout JournalSendTimeout gave libsystemd's socket.
    let sendTimeout: Duration

    public init(chainer: AuditChainer? = nil, socketPath: String = Self.socketPath, sendTimeout: Duration = .milliseconds(500)) {
        self.chainer = chainer
        self.socketPath = socketPath
        self.sendTimeout = sendTimeout
    }

    public var isReachable: Bool { !stall.isStalled && Self.isReachable(socketPath: socketPath) }
    public var isStalled: Bool { stall.isStalled }
    public var sequences: [UInt64]? { chainer?.sequences }

    /// Sends, then checks that the journal's socket was there to receive it
    /// (sd_journal_sendv would have returned 0 into the void). With a
    /// chainer, a failed event still spends its sequence number, so the
    /// loss shows as a gap. While the journal is stalled nothing is sent.
    public func record(_ event: AuditEvent) throws(AuditError) {
        guard let chainer else { return try send(event.fields) }
        try chainer.stamp(event.fields) { (fields) throws(AuditError) in try send(fields) }
    }

    private func send(_ fields: [(String, String)]) throws(AuditError) {
        guard !stall.isStalled else { throw Self.stalled }
        let rc = Self.sendv(fields)
        if rc == -EAGAIN {
            stall.begin()
            throw Self.stalled
        }
        if rc < 0 {
            throw AuditError("the journal refused an audit event: \(String(cString: strerror(-rc)))")
        }
        try checkDelivery()
    }

    static let stalled = AuditError("the journal is not reading (a send gave up after its timeout); events are refused until it reads again")

    /// While stalled: tries one plain message (no chain fields, so not an
    /// event of the chain). When enough go through in a row, each in well
    /// under the send timeout (JournalStall), events are sent again; the
    /// next is followed by the `audit_lost` report. Blocks up to twice the
    /// send timeout: run it on a thread of its own. true when the journal
    /// takes events again.
    public func probe() -> Bool {
        guard stall.isStalled else { return true }
        let start = ContinuousClock.now
        let rc = Self.sendv([("MESSAGE", "cofferd: probing whether the journal reads again"), ("PRIORITY", "7"),
                             ("SYSLOG_IDENTIFIER", "cofferd")])
        let quick = rc == 0 && ContinuousClock.now - start < sendTimeout / 4
            && (try? checkDelivery(ignoringStall: true)) != nil
        return stall.probed(wentThroughQuickly: quick)
    }

    public func checkDelivery() throws(AuditError) {
        try checkDelivery(ignoringStall: false)
    }

    private func checkDelivery(ignoringStall: Bool) throws(AuditError) {
        if !ignoringStall, stall.isStalled { throw Self.stalled }
        // One stat(2) after the send rather than a socket, connect and
        // close before it (the read path's largest syscall cost, under
        // perf): sd_journal_sendv is silent only when the socket file is
        // missing (ENOENT). A socket missing right after the send refuses
        // the event (fail closed); only a journald that came back between
        // the two calls could hide a loss, and the chain's sequence would
        // still show it as a gap.
        var info = stat()
        guard stat(socketPath, &info) == 0, info.st_mode & S_IFMT == S_IFSOCK else {
            throw AuditError("the systemd journal is not reachable at \(socketPath)")
        }
    }

    /// Every "KEY=value" in one buffer, and one iovec per field pointing
    /// into it: two arrays per event (the bytes, where each field ends)
    /// rather than one per field.
    static func sendv(_ fields: [(String, String)]) -> Int32 {
        var bytes: [UInt8] = []
        bytes.reserveCapacity(fields.reduce(0) { $0 + $1.0.utf8.count + $1.1.utf8.count + 1 })
        var ends: [Int] = []
        ends.reserveCapacity(fields.count)
        for (key, value) in fields {
            bytes.append(contentsOf: key.utf8)
            bytes.append(UInt8(ascii: "="))
            bytes.append(contentsOf: value.utf8)
            ends.append(bytes.count)
        }
        return bytes.withUnsafeMutableBytes { buffer in
            withUnsafeTemporaryAllocation(of: iovec.self, capacity: ends.count) { iovecs in
                var start = 0
                for (i, end) in ends.enumerated() {
                    iovecs[i] = iovec(iov_base: buffer.baseAddress! + start, iov_len: end - start)
                    start = end
                }
                return sd_journal_sendv(iovecs.baseAddress, Int32(ends.count))
            }
        }
    }

    /// Whether a journald is listening: connect a datagram socket to it.
    public static func isReachable(socketPath: String = socketPath) -> Bool {
        UnixSocket.isServed(socketPath, type: SOCK_DGRAM)
    }
}
