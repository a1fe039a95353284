import CLibCrypto
import LockedMemory
import Model

/// A 256-bit master key in locked memory, with its public `KeyID`.
public final class MasterKey: Sendable, CustomStringConvertible {
    public static let byteCount = 32

    public let bytes: LockedBytes
    public let id: KeyID
    /// Record keys derived from this key (RecordSealer), wiped with it.
    public let recordKeys = DerivedKeys()

    public init(bytes: LockedBytes) throws(KeyringError) {
        guard bytes.count == MasterKey.byteCount else {
            throw KeyringError(.malformedKey, "a master key is \(MasterKey.byteCount) bytes, got \(bytes.count)")
        }
        self.bytes = bytes
        self.id = KeyID(of: bytes)
    }

    /// A fresh key from OpenSSL's private DRBG (RAND_priv_bytes(3)).
    public static func generate() throws -> MasterKey {
        let bytes = try LockedBytes(count: byteCount) { buffer in
            guard RAND_priv_bytes(buffer.baseAddress!.assumingMemoryBound(to: UInt8.self), Int32(buffer.count)) == 1 else {
                throw KeyringError(.randomFailed, "RAND_priv_bytes failed")
            }
        }
        return try MasterKey(bytes: bytes)
    }

    /// Wipes the key and every key derived from it (seal).
    public func wipe() {
        bytes.wipe()
        recordKeys.wipeAll()
    }

    public var description: String { "MasterKey(\(id))" }
}
