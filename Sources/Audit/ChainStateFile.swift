import Model
import Syscalls
#if canImport(Glibc)
import Glibc
#endif

/// `STATE/audit-chain`: each lane's last sequence number and chain value,
/// one fixed-width line per lane (20 decimal digits, a space, 64 hex digits,
/// a newline), lane k at byte 86·k. A file from before lanes holds one such
/// line: lane 0.
///
/// Fixed width lets each lane rewrite its own line with one pwrite(2), no
/// lock shared between lanes and nothing read back.
///
/// @unchecked Sendable: the descriptor is only written with pwrite(2) at
/// each lane's own offset and fsynced, both safe from any thread, and
/// closed once, when the chainer goes.
final class ChainStateFile: @unchecked Sendable {
    static let lineLength = 86
    /// More lanes than any machine has event loops; a larger file is not ours.
    static let maxLanes = 4096
    private let fd: OwnedFileDescriptor

    init(path: String) throws {
        fd = try OwnedFileDescriptor.open(path, O_RDWR | O_CREAT | O_NOFOLLOW, mode: 0o600)
    }

    /// Every lane's saved state; nil for a lane whose line does not parse
    /// (never written, or damaged: that lane starts again, and the verifier
    /// shows it as a restart).
    func read() throws -> [AuditChain?] {
        let bytes = try fd.readAll(limit: Self.lineLength * Self.maxLanes)
        return stride(from: 0, to: bytes.count, by: Self.lineLength).map { start in
            Self.parse(bytes[start..<min(start + Self.lineLength, bytes.count)], lane: start / Self.lineLength)
        }
    }

    func write(_ chain: AuditChain) {
        var line = [UInt8](repeating: UInt8(ascii: "0"), count: Self.lineLength)
        var sequence = chain.sequence
        var i = 19
        while sequence > 0 {
            line[i] = UInt8(ascii: "0") + UInt8(sequence % 10)
            sequence /= 10
            i -= 1
        }
        line[20] = UInt8(ascii: " ")
        line.replaceSubrange(21..<85, with: Array(Hex.encode(chain.chain).utf8))
        line[85] = UInt8(ascii: "\n")
        // A failed write leaves the line behind: at startup `resume` then
        // takes the lane from the journal, so no number is used twice.
        _ = line.withUnsafeBytes { pwrite(fd.rawValue, $0.baseAddress, $0.count, off_t(chain.lane * Self.lineLength)) }
    }

    func sync() {
        _ = Glibc.fsync(fd.rawValue)
    }

    static func parse(_ line: ArraySlice<UInt8>, lane: Int) -> AuditChain? {
        let parts = String(decoding: line, as: UTF8.self).split(whereSeparator: { $0 == " " || $0 == "\n" })
        guard parts.count == 2, let sequence = UInt64(parts[0]), let chain = Hex.decode(String(parts[1])),
              chain.count == 32 else { return nil }
        return AuditChain(lane: lane, sequence: sequence, chain: chain)
    }
}
