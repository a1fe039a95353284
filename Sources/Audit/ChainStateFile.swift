import Model
import Synchronization
import Syscalls
#if canImport(Glibc)
import Glibc
#endif

/// `STATE/audit-chain`: each lane's last sequence number and chain value,
/// one fixed-width line per lane (20 decimal digits, a space, 64 hex digits,
/// a newline), lane k at byte 86·k. A file from before lanes holds one such
/// line: lane 0.
///
/// The file is mapped shared (mmap(2)), and each lane rewrites its own line
/// in the mapping: a store to memory, no system call per event and no lock
/// shared between lanes. A shared mapping writes to the page cache at once,
/// so the state survives kill -9 as a pwrite(2) would; `sync` (shutdown)
/// flushes it to disk (msync(2), fsync(2)). Nothing in it is secret: the
/// chain values are in the journal too.
///
/// Unlike a pwrite, a copy into the mapping can be cut short by a kill -9,
/// so a line's newline goes last, after a fence, and is taken away first:
/// a half-written line has none, is not read, and its lane carries on
/// from its newest event in the journal instead (`AuditChainer.resume`).
///
/// @unchecked Sendable: each lane writes only its own line, under its
/// lane's lock; the mapping and the descriptor go once, with the chainer.
final class ChainStateFile: @unchecked Sendable {
    static let lineLength = 86
    /// More lanes than any machine has event loops; a larger file is not ours.
    static let maxLanes = 4096
    private let fd: OwnedFileDescriptor
    private let mapping: UnsafeMutableRawPointer
    private let length: Int
    /// Every lane's state as the file held it when opened; nil for a lane
    /// whose line does not parse (never written, or damaged: that lane
    /// starts again, and the verifier shows it as a restart).
    let saved: [AuditChain?]

    /// Opens (or makes, 0600) the file and maps room for at least `lanes`
    /// lines, keeping the lines of lanes beyond that.
    init(path: String, lanes: Int) throws {
        let opened = try OwnedFileDescriptor.open(path, O_RDWR | O_CREAT | O_NOFOLLOW, mode: 0o600)
        let raw = opened.rawValue
        let bytes = try opened.readAll(limit: Self.lineLength * Self.maxLanes)
        let saved = stride(from: 0, to: bytes.count, by: Self.lineLength).map { start in
            Self.parse(bytes[start..<min(start + Self.lineLength, bytes.count)], lane: start / Self.lineLength)
        }
        let length = max(lanes, saved.count) * Self.lineLength
        if bytes.count < length {
            // The lines of new lanes read as zeros until written: not parsed.
            _ = try syscall("ftruncate") { ftruncate(raw, off_t(length)) }
        }
        let mapped = mmap(nil, length, PROT_READ | PROT_WRITE, MAP_SHARED, raw, 0)
        guard let mapped, mapped != MAP_FAILED else { throw SyscallError(function: "mmap", errno: errno) }
        fd = opened
        self.saved = saved
        self.length = length
        mapping = mapped
    }

    deinit {
        munmap(mapping, length)
    }

    func write(_ chain: AuditChain) {
        let offset = chain.lane * Self.lineLength
        guard offset + Self.lineLength <= length else { return }
        let line = mapping + offset
        line.storeBytes(of: UInt8(ascii: "-"), toByteOffset: 85, as: UInt8.self)
        atomicMemoryFence(ordering: .sequentiallyConsistent)
        var sequence = chain.sequence
        for i in stride(from: 19, through: 0, by: -1) {
            line.storeBytes(of: UInt8(ascii: "0") + UInt8(sequence % 10), toByteOffset: i, as: UInt8.self)
            sequence /= 10
        }
        line.storeBytes(of: UInt8(ascii: " "), toByteOffset: 20, as: UInt8.self)
        Hex.write(chain.chain, to: line + 21)
        atomicMemoryFence(ordering: .sequentiallyConsistent)
        line.storeBytes(of: UInt8(ascii: "\n"), toByteOffset: 85, as: UInt8.self)
    }

    func sync() {
        _ = msync(mapping, length, MS_SYNC)
        _ = Glibc.fsync(fd.rawValue)
    }

    static func parse(_ line: ArraySlice<UInt8>, lane: Int) -> AuditChain? {
        // Only a whole line: one a kill -9 cut short has no newline.
        guard line.count == lineLength, line.last == UInt8(ascii: "\n") else { return nil }
        let parts = String(decoding: line, as: UTF8.self).split(whereSeparator: { $0 == " " || $0 == "\n" })
        guard parts.count == 2, let sequence = UInt64(parts[0]), let chain = Hex.decode(String(parts[1])),
              chain.count == 32 else { return nil }
        return AuditChain(lane: lane, sequence: sequence, chain: chain)
    }
}
