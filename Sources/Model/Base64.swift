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
        if let result = text.withContiguousStorageIfAvailable({ decode(UnsafeRawBufferPointer($0)) }) { return result }
        return Array(text).withUnsafeBytes { decode($0) }
    }

    /// The same over contiguous bytes: no generic dispatch per byte (a store
    /// file holds three base64 fields per version).
    public static func decode(_ text: UnsafeRawBufferPointer) -> [UInt8]? {
        let count = text.count
        guard count % 4 == 0 else { return nil }
        var padding = 0
        if count > 0, text[count - 1] == UInt8(ascii: "=") { padding += 1 }
        if count > 1, text[count - 2] == UInt8(ascii: "=") { padding += 1 }
        var out = [UInt8]()
        out.reserveCapacity(count / 4 * 3)
        // What was decoded before a bad character may be part of a secret.
        defer { if out.count > 0 && out.count != count / 4 * 3 - padding { for i in out.indices { out[i] = 0 } } }
        return reverse.withUnsafeBufferPointer { table -> [UInt8]? in
            var i = 0
            while i < count {
                let last = i + 4 == count
                var n: UInt32 = 0
                for k in 0..<4 {
                    let c = text[i + k]
                    if c == UInt8(ascii: "=") {
                        // Padding only in the last one or two places.
                        guard last, k >= 4 - padding else { return nil }
                        n <<= 6
                    } else {
                        let v = table[Int(c)]
                        guard v != 0xff, !(last && k >= 4 - padding) else { return nil }
                        n = n << 6 | UInt32(v)
                    }
                }
                out.append(UInt8(n >> 16 & 0xff))
                if !last || padding < 2 { out.append(UInt8(n >> 8 & 0xff)) }
                if !last || padding < 1 { out.append(UInt8(n & 0xff)) }
                i += 4
            }
            return out
        }
    }

    static func decode<K: CodingKey>(_ text: String, key: K, in container: KeyedDecodingContainer<K>) throws -> [UInt8] {
        guard let bytes = decode(Array(text.utf8)) else {
            throw DecodingError.dataCorruptedError(forKey: key, in: container, debugDescription: "not base64")
        }
        return bytes
    }
}
