#if canImport(Glibc)
import Glibc
#endif

/// The byte-level pieces of a packed secret record (PackedSecretCoding):
/// LEB128 unsigned integers, zigzag for signed ones, and length-prefixed
/// byte strings. Small numbers (version 1, a timestamp) take 1 to 5 bytes
/// instead of 8.
struct PackedRecordWriter {
    var bytes: [UInt8]

    mutating func byte(_ value: UInt8) { bytes.append(value) }

    mutating func unsigned(_ value: UInt64) {
        var rest = value
        while rest >= 0x80 {
            bytes.append(UInt8(truncatingIfNeeded: rest) | 0x80)
            rest >>= 7
        }
        bytes.append(UInt8(rest))
    }

    mutating func signed(_ value: Int64) {
        unsigned(UInt64(bitPattern: (value << 1) ^ (value >> 63)))
    }

    mutating func data(_ value: some Collection<UInt8>) {
        unsigned(UInt64(value.count))
        bytes.append(contentsOf: value)
    }

    mutating func string(_ value: String) { data(value.utf8) }
}

/// Reads what PackedRecordWriter wrote. The buffer only ever holds records
/// this process encoded, so a read past the end is a bug, not bad input:
/// it traps (without showing any byte).
struct PackedRecordReader {
    let bytes: UnsafeRawBufferPointer
    var index: Int

    mutating func byte() -> UInt8 {
        precondition(index < bytes.count, "packed record overrun")
        defer { index += 1 }
        return bytes[index]
    }

    mutating func unsigned() -> UInt64 {
        var value: UInt64 = 0
        var shift: UInt64 = 0
        while true {
            let b = byte()
            value |= UInt64(b & 0x7F) << shift
            if b < 0x80 { return value }
            shift += 7
            precondition(shift < 64, "packed record overrun")
        }
    }

    mutating func signed() -> Int64 {
        let raw = unsigned()
        return Int64(bitPattern: raw >> 1) ^ -Int64(bitPattern: raw & 1)
    }

    /// The next length-prefixed bytes, in place.
    mutating func data() -> UnsafeRawBufferPointer { fixed(Int(unsigned())) }

    /// The next `count` bytes (a key id, a hex id), in place.
    mutating func fixed(_ count: Int) -> UnsafeRawBufferPointer {
        precondition(count <= bytes.count - index, "packed record overrun")
        defer { index += count }
        return UnsafeRawBufferPointer(rebasing: bytes[index..<index + count])
    }

    mutating func array() -> [UInt8] { Array(data()) }

    mutating func string() -> String { String(decoding: data(), as: UTF8.self) }
}

/// Byte-for-byte equality with memcmp (names, whole records).
func sameBytes(_ a: UnsafeRawBufferPointer, _ b: UnsafeRawBufferPointer) -> Bool {
    a.count == b.count && (a.count == 0 || memcmp(a.baseAddress!, b.baseAddress!, a.count) == 0)
}

/// Lexicographic order of two byte strings: negative, zero or positive.
func compareBytes(_ a: UnsafeRawBufferPointer, _ b: UnsafeRawBufferPointer) -> Int {
    let common = min(a.count, b.count)
    if common > 0 {
        let order = memcmp(a.baseAddress!, b.baseAddress!, common)
        if order != 0 { return Int(order) }
    }
    return a.count - b.count
}
