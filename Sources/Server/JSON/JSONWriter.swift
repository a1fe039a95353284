import JSON
import LockedMemory
import Model
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

    /// A quoted, escaped string from UTF-8 bytes (JSONEscaping, byte by
    /// byte: no temporary holds any part of a value).
    mutating func escaped(_ utf8: UnsafeRawBufferPointer) {
        // The longest it can become: every byte as \u00XX, and the quotes.
        bytes.reserveWiping(utf8.count * JSONEscaping.maxExpansion + 2)
        JSONEscaping.quote(utf8) { bytes.append($0) }
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
