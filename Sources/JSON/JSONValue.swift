/// A parsed JSON value that does not copy strings out of the request line.
///
/// Not `indirect`: arrays and objects hold their elements in arrays
/// already, so no case needs a box of its own, and a request's scalars
/// (every member of a get) cost no allocation each.
///
/// Strings stay as ranges into the line (`JSONString`) and are decoded on
/// demand: names into Swift strings, secret values straight into locked
/// memory. So the only ordinary-memory copy of a `put` value is the line
/// itself, a `TransientBytes` wiped when the request is done.
public enum JSONValue: Sendable, Equatable {
    case null
    case bool(Bool)
    /// The number's text as sent (it is only ever echoed or range-checked).
    case number(String)
    case string(JSONString)
    case array([JSONValue])
    case object(JSONObject)

    public var typeName: String {
        switch self {
        case .null: return "null"
        case .bool: return "boolean"
        case .number: return "number"
        case .string: return "string"
        case .array: return "array"
        case .object: return "object"
        }
    }
}

/// A string's place in the line, between (not including) its quotes.
public struct JSONString: Sendable, Equatable {
    public var range: Range<Int>
    public var hasEscapes: Bool
}
