import LockedMemory
import Seal

/// Writes JSON text into a byte array, escaping per RFC 8259 §7. Used for
/// responses, so a secret value goes from locked memory into the output
/// without passing through a Swift String.
///
/// Every append makes room first with `reserveWiping`: the array never
/// outgrows its storage by a plain append, which would free the old block
/// (holding whatever value was written so far) without zeroing it.
struct JSONWriter {
    private(set) var bytes: [UInt8] = []

    init(capacity: Int = 256) {
        bytes.reserveCapacity(capacity)
    }

    mutating func raw(_ text: StaticString) {
        bytes.reserveWiping(text.utf8CodeUnitCount)
        bytes.append(contentsOf: UnsafeRawBufferPointer(start: text.utf8Start, count: text.utf8CodeUnitCount))
    }

    mutating func raw(_ data: [UInt8]) {
        bytes.reserveWiping(data.count)
        bytes.append(contentsOf: data)
    }

    mutating func string(_ text: String) {
        var copy = text
        copy.withUTF8 { escaped(UnsafeRawBufferPointer($0)) }
    }

    private static let hexDigits: StaticString = "0123456789abcdef"

    /// A quoted, escaped string from UTF-8 bytes.
    mutating func escaped(_ utf8: UnsafeRawBufferPointer) {
        // The longest it can become: every byte as \u00XX, and the quotes.
        bytes.reserveWiping(utf8.count * 6 + 2)
        bytes.append(UInt8(ascii: "\""))
        for c in utf8 {
            switch c {
            case UInt8(ascii: "\""): bytes.append(UInt8(ascii: "\\")); bytes.append(c)
            case UInt8(ascii: "\\"): bytes.append(UInt8(ascii: "\\")); bytes.append(c)
            case 0x0A: bytes.append(UInt8(ascii: "\\")); bytes.append(UInt8(ascii: "n"))
            case 0x0D: bytes.append(UInt8(ascii: "\\")); bytes.append(UInt8(ascii: "r"))
            case 0x09: bytes.append(UInt8(ascii: "\\")); bytes.append(UInt8(ascii: "t"))
            case 0..<0x20, 0x7F:
                // Byte by byte: an array literal here would be a heap copy
                // of part of the value.
                bytes.append(UInt8(ascii: "\\"))
                bytes.append(UInt8(ascii: "u"))
                bytes.append(UInt8(ascii: "0"))
                bytes.append(UInt8(ascii: "0"))
                bytes.append(Self.hexDigits.utf8Start[Int(c >> 4)])
                bytes.append(Self.hexDigits.utf8Start[Int(c & 0xf)])
            default: bytes.append(c)
            }
        }
        bytes.append(UInt8(ascii: "\""))
    }

    mutating func base64(_ data: UnsafeRawBufferPointer) {
        bytes.reserveWiping((data.count + 2) / 3 * 4 + 2)
        bytes.append(UInt8(ascii: "\""))
        Base64.encode(data) { bytes.append($0) }
        bytes.append(UInt8(ascii: "\""))
    }

    mutating func integer<T: BinaryInteger>(_ value: T) {
        let digits = String(value).utf8
        bytes.reserveWiping(digits.count)
        bytes.append(contentsOf: digits)
    }

    /// Zeroes and releases the buffer (after a response carrying a secret).
    mutating func wipe() {
        bytes.wipe()
    }
}
