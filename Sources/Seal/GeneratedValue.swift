import LockedMemory
import Model

/// A value cofferd makes itself (`generate` on put and rotate, and
/// token.create), from OpenSSL's private DRBG, so the operator never has
/// to handle it before it is stored.
public struct GeneratedValue: Sendable, Equatable {
    public enum Format: String, Sendable, CaseIterable {
        /// Lowercase hex, two digits per byte.
        case hex
        /// Standard base64 with padding.
        case base64
        /// `PREFIX_<hex>` (Postgate's form: a prefix that says what it is,
        /// so leaked tokens are easy to scan for).
        case token
    }

    public static let byteRange = 16...1024
    public static let defaultPrefix = "coffer"

    public let bytes: Int
    public let format: Format
    public let prefix: String

    /// The request layer checks `bytes` against byteRange and the prefix
    /// with isValidPrefix first.
    public init(bytes: Int = 32, format: Format = .base64, prefix: String? = nil) {
        precondition(Self.byteRange.contains(bytes))
        self.bytes = bytes
        self.format = format
        self.prefix = prefix ?? Self.defaultPrefix
    }

    /// 1 to 32 of A-Z a-z 0-9 and '-': no '_', which separates it from the hex.
    public static func isValidPrefix(_ prefix: String) -> Bool {
        (1...32).contains(prefix.utf8.count)
            && prefix.utf8.allSatisfy { (48...57).contains($0) || (65...90).contains($0) || (97...122).contains($0) || $0 == 45 }
    }

    /// The new value as text, in locked memory.
    public func make() throws -> LockedBytes {
        var raw = try SecureRandom.privateBytes(bytes)
        defer { raw.wipe() }
        var text: [UInt8] = []
        switch format {
        case .hex:
            text.reserveCapacity(bytes * 2)
            Self.appendHex(raw, to: &text)
        case .base64:
            // The emitting form, so no String copy of the value is left unwiped.
            text.reserveCapacity(Base64.encodedCount(raw.count))
            raw.withUnsafeBytes { Base64.encode($0) { text.append($0) } }
        case .token:
            // One buffer, reserved up front: no unwiped temporary holds
            // the token.
            text.reserveCapacity(prefix.utf8.count + 1 + bytes * 2)
            text.append(contentsOf: prefix.utf8)
            text.append(UInt8(ascii: "_"))
            Self.appendHex(raw, to: &text)
        }
        return try LockedBytes(takingAndWiping: &text)
    }

    private static func appendHex(_ bytes: [UInt8], to out: inout [UInt8]) {
        for byte in bytes {
            out.append(digit(byte >> 4))
            out.append(digit(byte & 0xf))
        }
    }

    private static func digit(_ nibble: UInt8) -> UInt8 { nibble < 10 ? 48 + nibble : 87 + nibble }
}
