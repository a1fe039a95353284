/// Lowercase hexadecimal, for ids, MACs and chain values (never secrets'
/// own bytes in messages).
public enum Hex {
    public static func encode(_ bytes: [UInt8]) -> String {
        let digits = Array("0123456789abcdef".utf8)
        var out: [UInt8] = []
        out.reserveCapacity(bytes.count * 2)
        for b in bytes { out += [digits[Int(b >> 4)], digits[Int(b & 15)]] }
        return String(decoding: out, as: UTF8.self)
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
        value.withUTF8 { add(name, $0) }
    }

    public mutating func add(_ name: String, _ value: some Collection<UInt8>) {
        var name = name
        name.withUTF8 { name in
            appendLength(name.count)
            bytes.append(contentsOf: name)
        }
        appendLength(value.count)
        bytes.append(contentsOf: value)
    }

    public mutating func reserve(_ count: Int) { bytes.reserveCapacity(count) }

    private mutating func appendLength(_ count: Int) {
        withUnsafeBytes(of: UInt32(count).bigEndian) { bytes.append(contentsOf: $0) }
    }
}
