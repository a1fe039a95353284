/// Standard base64 (RFC 4648 §4, with padding) for ciphertext fields. Written
/// here rather than through Foundation's Data so that bytes that may be
/// plaintext (the protocol's value_base64) never pass through Data copies we
/// cannot wipe.
public enum Base64 {
    private static let alphabet = Array("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/".utf8)
    private static let reverse: [UInt8] = {
        var table = [UInt8](repeating: 0xff, count: 256)
        for (i, c) in alphabet.enumerated() { table[Int(c)] = UInt8(i) }
        return table
    }()

    public static func encodedCount(_ count: Int) -> Int { (count + 2) / 3 * 4 }

    /// Calls `emit` with each output byte; nothing is buffered.
    public static func encode(_ bytes: UnsafeRawBufferPointer, emit: (UInt8) -> Void) {
        var i = 0
        while i + 3 <= bytes.count {
            let n = UInt32(bytes[i]) << 16 | UInt32(bytes[i + 1]) << 8 | UInt32(bytes[i + 2])
            emit(alphabet[Int(n >> 18 & 63)]); emit(alphabet[Int(n >> 12 & 63)])
            emit(alphabet[Int(n >> 6 & 63)]); emit(alphabet[Int(n & 63)])
            i += 3
        }
        let rest = bytes.count - i
        if rest == 1 {
            let n = UInt32(bytes[i]) << 16
            emit(alphabet[Int(n >> 18 & 63)]); emit(alphabet[Int(n >> 12 & 63)])
            emit(UInt8(ascii: "=")); emit(UInt8(ascii: "="))
        } else if rest == 2 {
            let n = UInt32(bytes[i]) << 16 | UInt32(bytes[i + 1]) << 8
            emit(alphabet[Int(n >> 18 & 63)]); emit(alphabet[Int(n >> 12 & 63)])
            emit(alphabet[Int(n >> 6 & 63)]); emit(UInt8(ascii: "="))
        }
    }

    public static func encode(_ bytes: [UInt8]) -> String {
        var out = [UInt8]()
        out.reserveCapacity(encodedCount(bytes.count))
        bytes.withUnsafeBytes { encode($0) { out.append($0) } }
        return String(decoding: out, as: UTF8.self)
    }

    /// Decodes padded base64; nil on any character outside the alphabet, bad
    /// length or bad padding.
    public static func decode(_ text: some Collection<UInt8>) -> [UInt8]? {
        guard text.count % 4 == 0 else { return nil }
        var out = [UInt8]()
        out.reserveCapacity(text.count / 4 * 3)
        var quad = [UInt8](repeating: 0, count: 4)
        var index = 0
        var padding = 0
        for c in text {
            if c == UInt8(ascii: "=") {
                padding += 1
                quad[index] = 0
            } else {
                guard padding == 0 else { return nil }
                let v = reverse[Int(c)]
                guard v != 0xff else { return nil }
                quad[index] = v
            }
            index += 1
            if index == 4 {
                guard padding <= 2 else { return nil }
                let n = UInt32(quad[0]) << 18 | UInt32(quad[1]) << 12 | UInt32(quad[2]) << 6 | UInt32(quad[3])
                out.append(UInt8(n >> 16 & 0xff))
                if padding < 2 { out.append(UInt8(n >> 8 & 0xff)) }
                if padding < 1 { out.append(UInt8(n & 0xff)) }
                index = 0
                if padding > 0 { break }
            }
        }
        // Padding may only close the text.
        if padding > 0, out.count != text.count / 4 * 3 - padding { return nil }
        return out
    }

    static func decode<K: CodingKey>(_ text: String, key: K, in container: KeyedDecodingContainer<K>) throws -> [UInt8] {
        guard let bytes = decode(Array(text.utf8)) else {
            throw DecodingError.dataCorruptedError(forKey: key, in: container, debugDescription: "not base64")
        }
        return bytes
    }
}
