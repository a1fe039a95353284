
/// A strict RFC 8259 parser for one request line. Rejects trailing data,
/// duplicate keys, raw control characters in strings, lone surrogates, and
/// nesting deeper than `maxDepth`. Error messages give a byte offset and what
/// was expected, never the input.
public struct JSONParser {
    static let maxDepth = JSONScanner.maxDepth

    private var scanner: JSONScanner

    private init(_ bytes: UnsafeRawBufferPointer) throws(JSONError) {
        scanner = try JSONScanner(validating: bytes, input: "the request")
    }

    /// Parses `bytes` as exactly one JSON value.
    public static func parse(_ bytes: UnsafeRawBufferPointer) throws(JSONError) -> JSONValue {
        var parser = try JSONParser(bytes)
        let value = try parser.value(depth: 0)
        try parser.scanner.end()
        return value
    }

    private mutating func value(depth: Int) throws(JSONError) -> JSONValue {
        guard depth <= Self.maxDepth else { throw JSONError("JSON nested deeper than \(Self.maxDepth) levels") }
        scanner.skipWhitespace()
        guard let c = scanner.peek else { throw scanner.error("a value") }
        switch c {
        case UInt8(ascii: "{"): return try object(depth: depth)
        case UInt8(ascii: "["): return try array(depth: depth)
        case UInt8(ascii: "\""): return .string(try scanner.string())
        case UInt8(ascii: "t"): try scanner.literal("true"); return .bool(true)
        case UInt8(ascii: "f"): try scanner.literal("false"); return .bool(false)
        case UInt8(ascii: "n"): try scanner.literal("null"); return .null
        case UInt8(ascii: "-"), UInt8(ascii: "0")...UInt8(ascii: "9"):
            return .number(String(decoding: try scanner.number(), as: UTF8.self))
        default: throw scanner.error("a value")
        }
    }

    private mutating func object(depth: Int) throws(JSONError) -> JSONValue {
        scanner.index += 1
        var members = JSONObject()
        if scanner.take(UInt8(ascii: "}")) { return .object(members) }
        while true {
            scanner.skipWhitespace()
            guard scanner.peek == UInt8(ascii: "\"") else { throw scanner.error("a member name in quotes") }
            let keyStart = scanner.index
            let key = JSONStringDecoding.string(try scanner.string(), in: scanner.bytes)
            guard scanner.take(UInt8(ascii: ":")) else { throw scanner.error("':'") }
            let member = try value(depth: depth + 1)
            guard members.add(key, member) else {
                scanner.index = keyStart
                throw scanner.error("each member name once (duplicate name)")
            }
            scanner.skipWhitespace()
            switch scanner.peek {
            case UInt8(ascii: ","): scanner.index += 1
            case UInt8(ascii: "}"): scanner.index += 1; return .object(members)
            default: throw scanner.error("',' or '}'")
            }
        }
    }

    private mutating func array(depth: Int) throws(JSONError) -> JSONValue {
        scanner.index += 1
        var elements: [JSONValue] = []
        if scanner.take(UInt8(ascii: "]")) { return .array(elements) }
        while true {
            elements.append(try value(depth: depth + 1))
            scanner.skipWhitespace()
            switch scanner.peek {
            case UInt8(ascii: ","): scanner.index += 1
            case UInt8(ascii: "]"): scanner.index += 1; return .array(elements)
            default: throw scanner.error("',' or ']'")
            }
        }
    }
}
