/// UTF-8 validation without copying (String(validating:) would make an
/// unwipeable copy of a line that may hold a secret). Follows the
/// well-formed byte sequences table of Unicode §3.9 (Table 3-7): no overlong
/// forms, no surrogates, nothing above U+10FFFF.
public enum UTF8Validation {
    public static func isValid(_ bytes: UnsafeRawBufferPointer) -> Bool {
        var i = 0
        let n = bytes.count
        while i < n {
            // Eight ASCII bytes at a time (no high bit set in the word): a
            // store file is almost all ASCII, and this runs over all of it.
            while i + 8 <= n, bytes.loadUnaligned(fromByteOffset: i, as: UInt64.self) & 0x8080_8080_8080_8080 == 0 {
                i += 8
            }
            guard i < n else { break }
            let b0 = bytes[i]
            if b0 < 0x80 { i += 1; continue }
            func cont(_ k: Int, _ range: ClosedRange<UInt8> = 0x80...0xBF) -> Bool {
                i + k < n && range.contains(bytes[i + k])
            }
            switch b0 {
            case 0xC2...0xDF:
                guard cont(1) else { return false }
                i += 2
            case 0xE0:
                guard cont(1, 0xA0...0xBF), cont(2) else { return false }
                i += 3
            case 0xE1...0xEC, 0xEE...0xEF:
                guard cont(1), cont(2) else { return false }
                i += 3
            case 0xED:
                guard cont(1, 0x80...0x9F), cont(2) else { return false }
                i += 3
            case 0xF0:
                guard cont(1, 0x90...0xBF), cont(2), cont(3) else { return false }
                i += 4
            case 0xF1...0xF3:
                guard cont(1), cont(2), cont(3) else { return false }
                i += 4
            case 0xF4:
                guard cont(1, 0x80...0x8F), cont(2), cont(3) else { return false }
                i += 4
            default:
                return false
            }
        }
        return true
    }
}
