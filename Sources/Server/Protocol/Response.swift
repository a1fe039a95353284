import JSON
import LockedMemory
import Model

/// A value in a response. `.secret` is written from locked memory as text or
/// base64; a response holding one is wiped after it is sent.
enum ResponseValue: Sendable {
    case string(String)
    case integer(Int64)
    case unsigned(UInt64)
    case bool(Bool)
    case null
    case array([ResponseValue])
    case object([(String, ResponseValue)])
    case secret(LockedBytes, ValueEncoding)

    var holdsSecret: Bool {
        switch self {
        case .secret: return true
        case .array(let items): return items.contains { $0.holdsSecret }
        case .object(let members): return members.contains { $0.1.holdsSecret }
        default: return false
        }
    }
}

/// One response line: `{"id":…,"ok":true,…}` or `{"id":…,"ok":false,"error":{…}}`.
struct Response: Sendable {
    enum Body: Sendable {
        case success([(String, ResponseValue)])
        case failure(CofferError)
    }

    let id: RequestID
    let body: Body

    static func success(_ id: RequestID, _ fields: [(String, ResponseValue)]) -> Response {
        Response(id: id, body: .success(fields))
    }

    static func failure(_ id: RequestID, _ error: CofferError) -> Response {
        Response(id: id, body: .failure(error))
    }

    var holdsSecret: Bool {
        if case .success(let fields) = body { return fields.contains { $0.1.holdsSecret } }
        return false
    }

    var error: CofferError? {
        if case .failure(let error) = body { return error }
        return nil
    }

    /// The response as one JSON line, newline included.
    func encoded() -> JSONWriter {
        var w = JSONWriter()
        w.raw("{\"id\":")
        w.raw(id.json)
        switch body {
        case .success(let fields):
            w.raw(",\"ok\":true")
            for (key, value) in fields {
                w.raw(",")
                w.string(key)
                w.raw(":")
                Self.write(value, into: &w)
            }
        case .failure(let error):
            w.raw(",\"ok\":false,\"error\":{\"code\":")
            w.string(error.code.wireName)
            w.raw(",\"message\":")
            w.string(error.message)
            w.raw("}")
        }
        w.raw("}\n")
        return w
    }

    private static func write(_ value: ResponseValue, into w: inout JSONWriter) {
        switch value {
        case .string(let s): w.string(s)
        case .integer(let n): w.integer(n)
        case .unsigned(let n): w.integer(n)
        case .bool(let b): b ? w.raw("true") : w.raw("false")
        case .null: w.raw("null")
        case .array(let items):
            w.raw("[")
            for (i, item) in items.enumerated() {
                if i > 0 { w.raw(",") }
                write(item, into: &w)
            }
            w.raw("]")
        case .object(let members):
            w.raw("{")
            for (i, (key, item)) in members.enumerated() {
                if i > 0 { w.raw(",") }
                w.string(key)
                w.raw(":")
                write(item, into: &w)
            }
            w.raw("}")
        case .secret(let bytes, .text): bytes.withUnsafeBytes { w.escaped($0) }
        case .secret(let bytes, .binary): bytes.withUnsafeBytes { w.base64($0) }
        }
    }
}
