/// Lowercase hexadecimal, the one codec of the code base: ids, MACs, chain
/// values, key files, bytea literals (never secrets' own bytes in messages).
public enum Hex {
    public static func encode(_ bytes: [UInt8]) -> String {
        // Written straight into the string's storage: every audit event
        // carries two of these.
        String(unsafeUninitializedCapacity: bytes.count * 2) { out in
            for (i, b) in bytes.enumerated() {
                out[2 * i] = digit(b >> 4)
                out[2 * i + 1] = digit(b & 15)
            }
            return bytes.count * 2
        }
    }

    /// Appends the hex digits of `bytes` to `out`, for text that stays in a
    /// buffer the caller wipes (a key file's contents) or is built in place
    /// (a bytea literal). No String is made.
    public static func append(_ bytes: UnsafeRawBufferPointer, to out: inout [UInt8]) {
        out.reserveCapacity(out.count + bytes.count * 2)
        for b in bytes {
            out.append(digit(b >> 4))
            out.append(digit(b & 15))
        }
    }

    public static func append(_ bytes: [UInt8], to out: inout [UInt8]) {
        bytes.withUnsafeBytes { append($0, to: &out) }
    }

    /// Writes the 2·count hex digits of `bytes` at `out` (the audit chain's
    /// state, in a mapped file).
    public static func write(_ bytes: [UInt8], to out: UnsafeMutableRawPointer) {
        for (i, b) in bytes.enumerated() {
            out.storeBytes(of: digit(b >> 4), toByteOffset: 2 * i, as: UInt8.self)
            out.storeBytes(of: digit(b & 15), toByteOffset: 2 * i + 1, as: UInt8.self)
        }
    }

    /// The value of one hex digit of either case (a key file an operator
    /// made may be upper case); nil for anything else.
    public static func value(ofDigit c: UInt8) -> UInt8? {
        switch c {
        case 65...70: return c - 55
        default: return nibble(c)
        }
    }

    private static func digit(_ nibble: UInt8) -> UInt8 {
        nibble < 10 ? UInt8(ascii: "0") + nibble : UInt8(ascii: "a") - 10 + nibble
    }

    /// Whether `text` is exactly `count` lowercase hex digits (ids: a key
    /// id, a store id, a host id).
    public static func isDigits(_ text: String, count: Int) -> Bool {
        text.utf8.count == count && text.utf8.allSatisfy { nibble($0) != nil }
    }

    /// nil unless `text` is an even number of lowercase hex digits.
    public static func decode(_ text: String) -> [UInt8]? {
        let chars = Array(text.utf8)
        guard chars.count % 2 == 0 else { return nil }
        var out: [UInt8] = []
        out.reserveCapacity(chars.count / 2)
        var i = 0
        while i < chars.count {
            guard let hi = nibble(chars[i]), let lo = nibble(chars[i + 1]) else { return nil }
            out.append(hi << 4 | lo)
            i += 2
        }
        return out
    }

    private static func nibble(_ c: UInt8) -> UInt8? {
        switch c {
        case 48...57: return c - 48
        case 97...102: return c - 87
        default: return nil
        }
    }
}

/// An unambiguous encoding of named fields for a MAC: for each, a 4-byte
/// big-endian length and the name, then a 4-byte length and the value. No
/// two different field lists encode alike.
public struct LengthPrefixedFields {
    public private(set) var bytes: [UInt8] = []

    public init() {}

    // Strings go in through withUTF8 (a copy of their bytes, not a walk
    // through the UTF-8 view): a 100k-secret store file's MAC input is
    // some 20 MB of them (docs/performance.md).
    public mutating func add(_ name: String, _ value: String) {
        var value = value
        value.withUTF8 { add(name, UnsafeRawBufferPointer($0)) }
    }

    public mutating func add(_ name: String, _ value: [UInt8]) {
        value.withUnsafeBytes { add(name, $0) }
    }

    // Concrete types rather than `some Collection<UInt8>`: a generic is not
    // specialized across modules, and this runs a million times per store
    // file MAC.
    public mutating func add(_ name: String, _ value: UnsafeRawBufferPointer) {
        var name = name
        name.withUTF8 { name in
            appendLength(name.count)
            bytes.append(contentsOf: UnsafeRawBufferPointer(name))
        }
        appendLength(value.count)
        bytes.append(contentsOf: value)
    }

    /// A number in decimal, as `String(value)` writes it, without making
    /// the string. (Concrete overloads: a generic one is not specialized
    /// across modules, and went through witness tables for every digit.)
    public mutating func add(_ name: String, decimal value: Int64) {
        addDecimal(name, magnitude: value.magnitude, negative: value < 0)
    }

    public mutating func add(_ name: String, decimal value: UInt64) {
        addDecimal(name, magnitude: value, negative: false)
    }

    public mutating func add(_ name: String, decimal value: Int) {
        add(name, decimal: Int64(value))
    }

    private mutating func addDecimal(_ name: String, magnitude: UInt64, negative: Bool) {
        var rest = magnitude
        withUnsafeTemporaryAllocation(of: UInt8.self, capacity: 21) { digits in
            var start = digits.count
            repeat {
                start -= 1
                digits[start] = UInt8(ascii: "0") + UInt8(rest % 10)
                rest /= 10
            } while rest > 0
            if negative {
                start -= 1
                digits[start] = UInt8(ascii: "-")
            }
            add(name, UnsafeRawBufferPointer(UnsafeMutableBufferPointer(rebasing: digits[start...])))
        }
    }

    public mutating func reserve(_ count: Int) { bytes.reserveCapacity(count) }

    /// Hands the bytes so far to `sink` and starts again with an empty
    /// buffer (its capacity kept): a long input reaches a MAC in pieces.
    public mutating func flush(into sink: (UnsafeRawBufferPointer) -> Void) {
        bytes.withUnsafeBytes(sink)
        bytes.removeAll(keepingCapacity: true)
    }

    private mutating func appendLength(_ count: Int) {
        withUnsafeBytes(of: UInt32(count).bigEndian) { bytes.append(contentsOf: $0) }
    }
}
