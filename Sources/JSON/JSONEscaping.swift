/// How every JSON string cofferd writes is escaped (RFC 8259 §7): `"` and
/// `\` behind a backslash, newline, return and tab as `\n`, `\r`, `\t`, the
/// other control characters and DEL (0x7F) as `\u00XX`; every other byte
/// as it is (UTF-8 passes through). The one rule for the answers on the
/// wire and the store file alike.
public enum JSONEscaping {
    /// The most bytes one input byte becomes (`\u00XX`).
    public static let maxExpansion = 6

    /// Hands the escaped form of `utf8`, quotes included, to `emit`, byte
    /// by byte.
    @inlinable
    public static func quote(_ utf8: UnsafeRawBufferPointer, _ emit: (UInt8) -> Void) {
        emit(UInt8(ascii: "\""))
        for c in utf8 {
            switch c {
            case UInt8(ascii: "\""), UInt8(ascii: "\\"): emit(UInt8(ascii: "\\")); emit(c)
            case 0x0A: emit(UInt8(ascii: "\\")); emit(UInt8(ascii: "n"))
            case 0x0D: emit(UInt8(ascii: "\\")); emit(UInt8(ascii: "r"))
            case 0x09: emit(UInt8(ascii: "\\")); emit(UInt8(ascii: "t"))
            case 0..<0x20, 0x7F:
                emit(UInt8(ascii: "\\")); emit(UInt8(ascii: "u")); emit(UInt8(ascii: "0")); emit(UInt8(ascii: "0"))
                emit(hexDigit(c >> 4)); emit(hexDigit(c & 0xF))
            default: emit(c)
            }
        }
        emit(UInt8(ascii: "\""))
    }

    @inlinable
    static func hexDigit(_ nibble: UInt8) -> UInt8 {
        nibble < 10 ? UInt8(ascii: "0") + nibble : UInt8(ascii: "a") + nibble - 10
    }
}
