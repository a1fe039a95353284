import CLibSystemd
import Syscalls
#if canImport(Glibc)
import Glibc
#endif

/// Sends events to the systemd journal with sd_journal_sendv(3) (the
/// variadic sd_journal_send cannot be called from Swift).
///
/// sd_journal_sendv returns 0 even when no journald listens (the socket
/// is missing; see ../shared/DESIGN.md, "Audit events in the journal"), so
/// `isReachable` checks for ourselves before cofferd relies on it.
public struct JournalAuditSink: AuditSink {
    public static let socketPath = "/run/systemd/journal/socket"
    public var name: String { "journal" }
    let chainer: AuditChainer?
    let socketPath: String

    public init(chainer: AuditChainer? = nil, socketPath: String = Self.socketPath) {
        self.chainer = chainer
        self.socketPath = socketPath
    }

    public var isReachable: Bool { Self.isReachable(socketPath: socketPath) }
    public var sequence: UInt64? { chainer?.sequence }

    /// Checks that journald listens before every event (sd_journal_sendv
    /// would return 0 into the void), then sends. With a chainer, a failed
    /// event still spends its sequence number, so the loss shows as a gap.
    public func record(_ event: AuditEvent) throws(AuditError) {
        guard let chainer else { return try send(event.fields) }
        try chainer.stamp(event.fields) { (fields) throws(AuditError) in try send(fields) }
    }

    private func send(_ fields: [(String, String)]) throws(AuditError) {
        guard isReachable else { throw AuditError("the systemd journal is not reachable at \(socketPath)") }
        let encoded = fields.map { key, value in Array("\(key)=\(value)".utf8) }
        let rc = sendv(encoded)
        if rc < 0 {
            throw AuditError("the journal refused an audit event: \(String(cString: strerror(-rc)))")
        }
    }

    private func sendv(_ fields: [[UInt8]]) -> Int32 {
        var iovecs: [iovec] = []
        iovecs.reserveCapacity(fields.count)
        return withPinned(fields, index: 0, into: &iovecs)
    }

    // Keeps every field's storage pinned while sd_journal_sendv reads it.
    private func withPinned(_ fields: [[UInt8]], index: Int, into iovecs: inout [iovec]) -> Int32 {
        if index == fields.count {
            return sd_journal_sendv(iovecs, Int32(iovecs.count))
        }
        return fields[index].withUnsafeBytes { bytes in
            iovecs.append(iovec(iov_base: UnsafeMutableRawPointer(mutating: bytes.baseAddress), iov_len: bytes.count))
            return withPinned(fields, index: index + 1, into: &iovecs)
        }
    }

    /// Whether a journald is listening: connect a datagram socket to it.
    public static func isReachable(socketPath: String = socketPath) -> Bool {
        UnixSocket.isServed(socketPath, type: SOCK_DGRAM)
    }
}
