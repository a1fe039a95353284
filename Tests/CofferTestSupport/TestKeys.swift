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

public func hex(_ bytes: [UInt8]) -> String {
    bytes.map { ($0 < 16 ? "0" : "") + String($0, radix: 16) }.joined()
}

public func bytes(hex: String) -> [UInt8] {
    var out: [UInt8] = []
    var index = hex.startIndex
    while index < hex.endIndex {
        let next = hex.index(index, offsetBy: 2)
        out.append(UInt8(hex[index..<next], radix: 16)!)
        index = next
    }
    return out
}
