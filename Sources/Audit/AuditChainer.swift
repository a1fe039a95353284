import Synchronization
import Syscalls
#if canImport(Glibc)
import Glibc
#endif

/// Stamps events with the chain fields, in one order for the whole daemon,
/// and keeps the chain's state in a small file in the state directory so
/// that it carries on across restarts (docs/audit.md).
///
/// The state is rewritten in place after every event without fsync: it
/// survives kill -9 (the page cache does); a power loss may lose the last
/// few, which `audit --verify` then reports as a restart of the chain.
public final class AuditChainer: Sendable {
    public let chainID: String
    public let keyID: String
    private let mac: @Sendable ([UInt8]) -> [UInt8]
    private let state: Mutex<AuditChain>
    private let file: Mutex<OwnedFileDescriptor?>

    /// `statePath` nil keeps the chain in memory only (tests).
    public init(chainID: String, keyID: String, statePath: String?, mac: @escaping @Sendable ([UInt8]) -> [UInt8]) throws {
        self.chainID = chainID
        self.keyID = keyID
        self.mac = mac
        var chain = AuditChain()
        var fd: OwnedFileDescriptor?
        if let statePath {
            let opened = try OwnedFileDescriptor.open(statePath, O_RDWR | O_CREAT | O_NOFOLLOW, mode: 0o600)
            chain = Self.parse(try opened.readAll(limit: 4096)) ?? AuditChain()
            fd = consume opened
        }
        state = Mutex(chain)
        file = Mutex(fd)
    }

    public var sequence: UInt64 { state.withLock { $0.sequence } }

    /// Runs `send` with the event's fields stamped, holding the chain lock,
    /// so the journal receives events in sequence order. The sequence
    /// number is spent even when `send` fails: a lost event is a gap.
    public func stamp<R>(_ fields: [(String, String)], send: ([(String, String)]) throws(AuditError) -> R) throws(AuditError) -> R {
        try state.withLock { (chain: inout AuditChain) throws(AuditError) -> R in
            let stamped = chain.extend(fields, chainID: chainID, keyID: keyID, mac: mac)
            persist(chain)
            return try send(stamped)
        }
    }

    private func persist(_ chain: AuditChain) {
        let padded = String(repeating: "0", count: max(0, 20 - String(chain.sequence).count)) + String(chain.sequence)
        let line = Array("\(padded) \(AuditChain.hex(chain.chain))\n".utf8)
        file.withLock { fd in
            guard let raw = fd?.rawValue else { return }
            _ = line.withUnsafeBytes { pwrite(raw, $0.baseAddress, $0.count, 0) }
        }
    }

    /// Flushes the state to disk (clean shutdown).
    public func sync() {
        file.withLock { fd in
            if let raw = fd?.rawValue { _ = Glibc.fsync(raw) }
        }
    }

    static func parse(_ bytes: [UInt8]) -> AuditChain? {
        let parts = String(decoding: bytes, as: UTF8.self).split(whereSeparator: { $0 == " " || $0 == "\n" })
        guard parts.count == 2, let sequence = UInt64(parts[0]), let chain = AuditChain.bytes(hex: String(parts[1])),
              chain.count == 32 else { return nil }
        return AuditChain(sequence: sequence, chain: chain)
    }
}
