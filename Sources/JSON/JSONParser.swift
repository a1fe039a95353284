import Model

/// A strict RFC 8259 parser for one request line. Rejects trailing data,
/// duplicate keys, raw control characters in strings, lone surrogates, and
/// nesting deeper than `maxDepth`. Error messages give a byte offset and what
/// was expected, never the input.
public struct JSONParser {
    static let maxDepth = 32

    private let bytes: UnsafeRawBufferPointer
    private var index = 0

    private init(_ bytes: UnsafeRawBufferPointer) {
        self.bytes = bytes
    }

    /// Parses `bytes` as exactly one JSON value.
    public static func parse(_ bytes: UnsafeRawBufferPointer) throws(CofferError) -> JSONValue {
        guard UTF8Validation.isValid(bytes) else { throw CofferError(.badRequest, "the request is not valid UTF-8") }
        var parser = JSONParser(bytes)
        let value = try parser.value(depth: 0)
        parser.skipWhitespace()
        guard parser.index == bytes.count else { throw parser.error("end of the request after the JSON value") }
        return value
    }

    private func error(_ expected: String) -> CofferError {
        CofferError(.badRequest, "malformed JSON at byte \(index): expected \(expected)")
    }

    private var peek: UInt8? { index < bytes.count ? bytes[index] : nil }

    private mutating func skipWhitespace() {
        while let c = peek, c == 0x20 || c == 0x09 || c == 0x0A || c == 0x0D { index += 1 }
    }

    private mutating func value(depth: Int) throws(CofferError) -> JSONValue {
        guard depth <= Self.maxDepth else { throw CofferError(.badRequest, "JSON nested deeper than \(Self.maxDepth) levels") }
        skipWhitespace()
        guard let c = peek else { throw error("a value") }
        switch c {
        case UInt8(ascii: "{"): return try object(depth: depth)
        case UInt8(ascii: "["): return try array(depth: depth)
        case UInt8(ascii: "\""): return .string(try string())
        case UInt8(ascii: "t"): try literal("true"); return .bool(true)
        case UInt8(ascii: "f"): try literal("false"); return .bool(false)
        case UInt8(ascii: "n"): try literal("null"); return .null
        case UInt8(ascii: "-"), UInt8(ascii: "0")...UInt8(ascii: "9"): return .number(try number())
        default: throw error("a value")
        }
    }

    private mutating func literal(_ word: StaticString) throws(CofferError) {
        let expected = UnsafeRawBufferPointer(start: word.utf8Start, count: word.utf8CodeUnitCount)
        guard index + expected.count <= bytes.count,
              bytes[index..<index + expected.count].elementsEqual(expected)
        else { throw error("a JSON value") }
        index += expected.count
    }

    private mutating func object(depth: Int) throws(CofferError) -> JSONValue {
        index += 1
        var members: [String: JSONValue] = [:]
        skipWhitespace()
        if peek == UInt8(ascii: "}") { index += 1; return .object(members) }
        while true {
            skipWhitespace()
            guard peek == UInt8(ascii: "\"") else { throw error("a member name in quotes") }
            let keyStart = index
            let key = decodeToString(try string())
            skipWhitespace()
            guard peek == UInt8(ascii: ":") else { throw error("':'") }
            index += 1
            let member = try value(depth: depth + 1)
            guard members.updateValue(member, forKey: key) == nil else {
                index = keyStart
                throw error("each member name once (duplicate name)")
            }
            skipWhitespace()
            switch peek {
            case UInt8(ascii: ","): index += 1
            case UInt8(ascii: "}"): index += 1; return .object(members)
            default: throw error("',' or '}'")
            }
        }
    }

    private mutating func array(depth: Int) throws(CofferError) -> JSONValue {
        index += 1
        var elements: [JSONValue] = []
        skipWhitespace()
        if peek == UInt8(ascii: "]") { index += 1; return .array(elements) }
        while true {
            elements.append(try value(depth: depth + 1))
            skipWhitespace()
            switch peek {
            case UInt8(ascii: ","): index += 1
            case UInt8(ascii: "]"): index += 1; return .array(elements)
            default: throw error("',' or ']'")
            }
        }
    }

    private mutating func string() throws(CofferError) -> JSONString {
        index += 1
        let start = index
        var escapes = false
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
            case 0..<0x20:
                throw error("no raw control character in a string (escape it)")
            default:
                index += 1
            }
        }
        throw error("'\"' to close the string")
    }

    private mutating func hex4() throws(CofferError) -> UInt16 {
        guard index + 4 <= bytes.count else { throw error("four hex digits") }
        var value: UInt16 = 0
        for _ in 0..<4 {
            guard let digit = JSONStringDecoding.hexValue(bytes[index]) else { throw error("four hex digits") }
            value = value << 4 | UInt16(digit)
            index += 1
        }
        return value
    }

    private mutating func number() throws(CofferError) -> String {
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
        return String(decoding: bytes[start..<index], as: UTF8.self)
    }

    private func decodeToString(_ s: JSONString) -> String {
        JSONStringDecoding.string(s, in: bytes)
    }
}
