/// Turns a validated `JSONString` into bytes: counts first, then writes into
/// a buffer the caller owns (locked memory for secret values).
public enum JSONStringDecoding {
    static func hexValue(_ c: UInt8) -> UInt8? {
        switch c {
        case 48...57: return c - 48
        case 97...102: return c - 87
        case 65...70: return c - 55
        default: return nil
        }
    }

    /// The number of UTF-8 bytes `s` decodes to.
    public static func decodedCount(_ s: JSONString, in line: UnsafeRawBufferPointer) -> Int {
        guard s.hasEscapes else { return s.range.count }
        var count = 0
        decode(s, in: line) { _ in count += 1 }
        return count
    }

    public static func decode(_ s: JSONString, in line: UnsafeRawBufferPointer, into out: UnsafeMutableRawBufferPointer) {
        var i = 0
        decode(s, in: line) { byte in
            out[i] = byte
            i += 1
        }
    }

    public static func string(_ s: JSONString, in line: UnsafeRawBufferPointer) -> String {
        if !s.hasEscapes { return String(decoding: UnsafeRawBufferPointer(rebasing: line[s.range]), as: UTF8.self) }
        var bytes: [UInt8] = []
        bytes.reserveCapacity(s.range.count)
        decode(s, in: line) { bytes.append($0) }
        return String(decoding: bytes, as: UTF8.self)
    }

    /// Emits the decoded bytes one at a time. `s` was checked by the parser,
    /// so escapes and surrogate pairs are well formed here.
    private static func decode(_ s: JSONString, in line: UnsafeRawBufferPointer, emit: (UInt8) -> Void) {
        var i = s.range.lowerBound
        let end = s.range.upperBound
        func hex4(_ at: Int) -> UInt32 {
            var v: UInt32 = 0
            for k in 0..<4 { v = v << 4 | UInt32(hexValue(line[at + k])!) }
            return v
        }
        while i < end {
            let c = line[i]
            guard c == UInt8(ascii: "\\") else {
                emit(c)
                i += 1
                continue
            }
            let e = line[i + 1]
            i += 2
            switch e {
            case UInt8(ascii: "b"): emit(0x08)
            case UInt8(ascii: "f"): emit(0x0C)
            case UInt8(ascii: "n"): emit(0x0A)
            case UInt8(ascii: "r"): emit(0x0D)
            case UInt8(ascii: "t"): emit(0x09)
            case UInt8(ascii: "u"):
                var scalar = hex4(i)
                i += 4
                if (0xD800...0xDBFF).contains(scalar) {
                    let low = hex4(i + 2)
                    i += 6
                    scalar = 0x10000 + ((scalar - 0xD800) << 10) + (low - 0xDC00)
                }
                for byte in UTF8.encode(Unicode.Scalar(scalar)!)! { emit(byte) }
            default: emit(e)
            }
        }
    }
}
