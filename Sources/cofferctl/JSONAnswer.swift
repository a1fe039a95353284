import Foundation

/// cofferd's answer as typed JSON (JSONSerialization would turn booleans
/// into numbers on Linux).
enum JSONAnswer: Decodable, CustomStringConvertible {
    case null
    case bool(Bool)
    case integer(Int64)
    case number(Double)
    case string(String)
    case array([JSONAnswer])
    case object([String: JSONAnswer])

    init(from decoder: any Decoder) throws {
        let c = try decoder.singleValueContainer()
        if c.decodeNil() { self = .null }
        else if let b = try? c.decode(Bool.self) { self = .bool(b) }
        else if let i = try? c.decode(Int64.self) { self = .integer(i) }
        else if let d = try? c.decode(Double.self) { self = .number(d) }
        else if let s = try? c.decode(String.self) { self = .string(s) }
        else if let a = try? c.decode([JSONAnswer].self) { self = .array(a) }
        else { self = .object(try c.decode([String: JSONAnswer].self)) }
    }

    subscript(key: String) -> JSONAnswer? {
        if case .object(let members) = self { return members[key] }
        return nil
    }

    var string: String? { if case .string(let s) = self { return s } else { return nil } }
    var bool: Bool? { if case .bool(let b) = self { return b } else { return nil } }
    var integer: Int64? { if case .integer(let i) = self { return i } else { return nil } }
    var array: [JSONAnswer] { if case .array(let a) = self { return a } else { return [] } }

    var description: String {
        switch self {
        case .null: return "-"
        case .bool(let b): return b ? "yes" : "no"
        case .integer(let i): return String(i)
        case .number(let d): return String(d)
        case .string(let s): return s
        case .array(let a): return a.map(\.description).joined(separator: ", ")
        case .object: return "{…}"
        }
    }
}
