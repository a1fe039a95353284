
/// The token-level reading both JSONParser (a tree, for request lines) and
/// JSONCursor (front to back, for the store file) share: whitespace,
/// strings, numbers and literals, with RFC 8259's rules. Error messages
/// give a byte offset and what was expected, never the input.
struct JSONScanner {
    static let maxDepth = 32

    let bytes: UnsafeRawBufferPointer
    var index = 0
    /// What the bytes are, for messages: "the request", "the input".
    let input: String

    /// Refuses bytes that are not UTF-8 before any is read.
    init(validating bytes: UnsafeRawBufferPointer, input: String) throws(JSONError) {
        guard UTF8Validation.isValid(bytes) else { throw JSONError("\(input) is not valid UTF-8") }
        self.bytes = bytes
        self.input = input
    }

    func error(_ expected: String) -> JSONError {
        JSONError("malformed JSON at byte \(index): expected \(expected)")
    }

    var peek: UInt8? { index < bytes.count ? bytes[index] : nil }

    mutating func skipWhitespace() {
        while let c = peek, c == 0x20 || c == 0x09 || c == 0x0A || c == 0x0D {
            index += 1
            // A pretty-printed store file's indentation: eight spaces at a time.
            while index + 8 <= bytes.count, bytes.loadUnaligned(fromByteOffset: index, as: UInt64.self) == 0x2020_2020_2020_2020 {
                index += 8
            }
        }
    }

    /// Skips whitespace, then consumes `byte` if it comes next.
    mutating func take(_ byte: UInt8) -> Bool {
        skipWhitespace()
        guard peek == byte else { return false }
        index += 1
        return true
    }

    /// Only whitespace may follow the value.
    mutating func end() throws(JSONError) {
        skipWhitespace()
        guard index == bytes.count else { throw error("end of \(input) after the JSON value") }
    }

    mutating func literal(_ word: StaticString) throws(JSONError) {
        let expected = UnsafeRawBufferPointer(start: word.utf8Start, count: word.utf8CodeUnitCount)
        guard index + expected.count <= bytes.count,
              bytes[index..<index + expected.count].elementsEqual(expected)
        else { throw error("a JSON value") }
        index += expected.count
    }

    /// A string starting at the opening quote (already checked).
    mutating func string() throws(JSONError) -> JSONString {
        index += 1
        let start = index
        var escapes = false
        // Words at a time from the start, and again after each escape;
        // byte by byte in between (near the word that stopped it).
        skipPlainStringBytes()
        while let c = peek {
            switch c {
            case UInt8(ascii: "\""):
                index += 1
                return JSONString(range: start..<(index - 1), hasEscapes: escapes)
            case UInt8(ascii: "\\"):
                escapes = true
                index += 1
                guard let e = peek else { throw error("an escape") }
                switch e {
                case UInt8(ascii: "\""), UInt8(ascii: "\\"), UInt8(ascii: "/"), UInt8(ascii: "b"),
                     UInt8(ascii: "f"), UInt8(ascii: "n"), UInt8(ascii: "r"), UInt8(ascii: "t"):
                    index += 1
                case UInt8(ascii: "u"):
                    index += 1
                    let unit = try hex4()
                    if (0xD800...0xDBFF).contains(unit) {
                        guard peek == UInt8(ascii: "\\") else { throw error("a low surrogate after a high surrogate") }
                        index += 1
                        guard peek == UInt8(ascii: "u") else { throw error("a low surrogate after a high surrogate") }
                        index += 1
                        guard (0xDC00...0xDFFF).contains(try hex4()) else { throw error("a low surrogate") }
                    } else if (0xDC00...0xDFFF).contains(unit) {
                        throw error("no lone low surrogate")
                    }
                default:
                    throw error("a valid escape (\\\" \\\\ \\/ \\b \\f \\n \\r \\t \\uXXXX)")
                }
                skipPlainStringBytes()
            case 0..<0x20:
                throw error("no raw control character in a string (escape it)")
            default:
                index += 1
            }
        }
        throw error("'\"' to close the string")
    }

    /// Moves past whole words of eight bytes that hold no quote, no
    /// backslash and no control character, which is most of a long string
    /// (base64 ciphertext in a store file). The tests are the classic
    /// "has a zero byte" and "has a byte below n" word tricks: they may
    /// not say which byte, but they never miss one, so the byte loop takes
    /// over at the word where the first such byte is.
    private mutating func skipPlainStringBytes() {
        let ones: UInt64 = 0x0101_0101_0101_0101
        let highs: UInt64 = 0x8080_8080_8080_8080
        while index + 8 <= bytes.count {
            let word = bytes.loadUnaligned(fromByteOffset: index, as: UInt64.self)
            let quote = word ^ (ones &* 0x22)
            let backslash = word ^ (ones &* 0x5C)
            let special = ((quote &- ones) & ~quote) | ((backslash &- ones) & ~backslash) | ((word &- ones &* 0x20) & ~word)
            guard special & highs == 0 else { return }
            index += 8
        }
    }

    private mutating func hex4() throws(JSONError) -> UInt16 {
        guard index + 4 <= bytes.count else { throw error("four hex digits") }
        var value: UInt16 = 0
        for _ in 0..<4 {
            guard let digit = JSONStringDecoding.hexValue(bytes[index]) else { throw error("four hex digits") }
            value = value << 4 | UInt16(digit)
            index += 1
        }
        return value
    }

    /// A number's text, starting at its first character (already checked).
    mutating func number() throws(JSONError) -> UnsafeRawBufferPointer {
        let start = index
        if peek == UInt8(ascii: "-") { index += 1 }
        guard let first = peek, (48...57).contains(first) else { throw error("a digit") }
        index += 1
        if first != 48 { while let c = peek, (48...57).contains(c) { index += 1 } }
        if peek == UInt8(ascii: ".") {
            index += 1
            guard let c = peek, (48...57).contains(c) else { throw error("a digit after '.'") }
            while let c = peek, (48...57).contains(c) { index += 1 }
        }
        if peek == UInt8(ascii: "e") || peek == UInt8(ascii: "E") {
            index += 1
            if peek == UInt8(ascii: "+") || peek == UInt8(ascii: "-") { index += 1 }
            guard let c = peek, (48...57).contains(c) else { throw error("a digit in the exponent") }
            while let c = peek, (48...57).contains(c) { index += 1 }
        }
        return UnsafeRawBufferPointer(rebasing: bytes[start..<index])
    }
}
