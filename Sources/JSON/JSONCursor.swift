#if canImport(Glibc)
import Glibc
#endif

/// Reads one JSON document front to back, without building a tree: the
/// caller asks for what it expects next (an object's members, an array's
/// elements, a string, a number). The store file is read this way: a
/// 100k-secret file as a JSONValue tree was millions of allocations
/// (docs/performance.md). Strings stay ranges into the input, as with
/// JSONParser, and the rules are the same (JSONScanner); duplicate member
/// names are the caller's to catch, since it knows which names it takes.
public struct JSONCursor {
    private var scanner: JSONScanner
    private var depth = 0

    /// An object or array being read: whether a ',' comes before the next item.
    public struct Container {
        fileprivate var first = true
    }

    public init(_ bytes: UnsafeRawBufferPointer) throws(JSONError) {
        scanner = try JSONScanner(validating: bytes, input: "the input")
    }

    public var bytes: UnsafeRawBufferPointer { scanner.bytes }

    /// The error for a value of the wrong type here.
    public func error(_ expected: String) -> JSONError { scanner.error(expected) }

    private mutating func begin(_ open: UInt8, _ what: String) throws(JSONError) -> Container {
        guard scanner.take(open) else { throw scanner.error(what) }
        depth += 1
        guard depth <= JSONScanner.maxDepth else { throw JSONError("JSON nested deeper than \(JSONScanner.maxDepth) levels") }
        return Container()
    }

    /// Whether another item follows (consuming its ','), or the container
    /// ends here (consuming its closing bracket).
    private mutating func more(_ container: inout Container, close: UInt8, _ what: String) throws(JSONError) -> Bool {
        if scanner.take(close) {
            depth -= 1
            return false
        }
        if !container.first, !scanner.take(UInt8(ascii: ",")) { throw scanner.error(what) }
        container.first = false
        return true
    }

    public mutating func beginObject() throws(JSONError) -> Container {
        try begin(UInt8(ascii: "{"), "an object")
    }

    /// The next member's name, with the cursor on its value; nil after the
    /// object's closing brace.
    public mutating func nextMember(_ object: inout Container) throws(JSONError) -> JSONString? {
        guard try more(&object, close: UInt8(ascii: "}"), "',' or '}'") else { return nil }
        scanner.skipWhitespace()
        guard scanner.peek == UInt8(ascii: "\"") else { throw scanner.error("a member name in quotes") }
        let name = try scanner.string()
        guard scanner.take(UInt8(ascii: ":")) else { throw scanner.error("':'") }
        return name
    }

    public mutating func beginArray() throws(JSONError) -> Container {
        try begin(UInt8(ascii: "["), "an array")
    }

    /// Whether another element follows, with the cursor on it.
    public mutating func nextElement(_ array: inout Container) throws(JSONError) -> Bool {
        try more(&array, close: UInt8(ascii: "]"), "',' or ']'")
    }

    public mutating func string() throws(JSONError) -> JSONString {
        scanner.skipWhitespace()
        guard scanner.peek == UInt8(ascii: "\"") else { throw scanner.error("a string") }
        return try scanner.string()
    }

    /// A number's text, in place.
    public mutating func number() throws(JSONError) -> UnsafeRawBufferPointer {
        scanner.skipWhitespace()
        guard let c = scanner.peek, c == UInt8(ascii: "-") || (48...57).contains(c) else { throw scanner.error("a number") }
        return try scanner.number()
    }

    public mutating func bool() throws(JSONError) -> Bool {
        scanner.skipWhitespace()
        switch scanner.peek {
        case UInt8(ascii: "t"): try scanner.literal("true"); return true
        case UInt8(ascii: "f"): try scanner.literal("false"); return false
        default: throw scanner.error("true or false")
        }
    }

    /// Only whitespace may follow the document.
    public mutating func end() throws(JSONError) {
        try scanner.end()
    }

    /// Whether `name` (a member name as read) is `expected`, byte for byte.
    public func name(_ name: JSONString, is expected: StaticString) -> Bool {
        // memcmp rather than elementsEqual over a slice, which went element
        // by element: this runs for every member of a store file.
        precondition(name.range.lowerBound >= 0 && name.range.upperBound <= scanner.bytes.count, "a name from another document")
        return !name.hasEscapes && name.range.count == expected.utf8CodeUnitCount
            && memcmp(scanner.bytes.baseAddress! + name.range.lowerBound, expected.utf8Start, name.range.count) == 0
    }
}
