import Keyring
import LockedMemory

/// Fixed master keys for tests (never for anything else).
public enum TestKeys {
    /// Creates the secure heap once for this test process.
    public static func prepareSecureHeap() throws {
        try SecureHeap.initialize()
    }

    /// A master key whose bytes are `first, first+1, …` (the known-answer
    /// vectors in docs/crypto.md use first = 0).
    public static func master(first: UInt8 = 0) throws -> MasterKey {
        try prepareSecureHeap()
        let bytes = try LockedBytes(count: 32) { buffer in
            for i in 0..<32 { buffer[i] = first &+ UInt8(i) }
        }
        return try MasterKey(bytes: bytes)
    }

    public static func locked(_ text: String) throws -> LockedBytes {
        try prepareSecureHeap()
        var bytes = Array(text.utf8)
        return try LockedBytes(takingAndWiping: &bytes)
    }
}
