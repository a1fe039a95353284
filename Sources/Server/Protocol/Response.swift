import Audit
import JSON
import LockedMemory
import Model

/// A value in a response. `.revealed` is written only with an audit
/// receipt (Revelation); a response holding one is wiped after it is sent.
enum ResponseValue: Sendable {
    case string(String)
    case integer(Int64)
    case unsigned(UInt64)
    case bool(Bool)
    case null
    case array([ResponseValue])
    case object([(String, ResponseValue)])
    case revealed(Revelation)

    var reveals: Bool {
        switch self {
        case .revealed: return true
        case .array(let items): return items.contains { $0.reveals }
        case .object(let members): return members.contains { $0.1.reveals }
        case .string, .integer, .unsigned, .bool, .null: return false
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
    /// The receipt of the audit event that recorded this answer; without
    /// one, an answer that reveals something is written as UNAVAILABLE.
    var receipt: AuditReceipt? = nil

    static func success(_ id: RequestID, _ fields: [(String, ResponseValue)]) -> Response {
        Response(id: id, body: .success(fields))
    }

    static func failure(_ id: RequestID, _ error: CofferError) -> Response {
        Response(id: id, body: .failure(error))
    }

    var reveals: Bool {
        if case .success(let fields) = body { return fields.contains { $0.1.reveals } }
        return false
    }

    /// Said instead of an answer that would reveal something its audit
    /// event did not record (the journal is unreachable or stalled).
    static let unrecorded = CofferError(
        .unavailable, "the audit event for this answer could not be recorded, so nothing was revealed; try again")

    /// The revealed value alone, for credentials.sock (written raw, no
    /// JSON): nil unless the answer holds a value and its audit receipt.
    func revealedValue() -> LockedBytes? {
        guard let receipt, case .success(let fields) = body else { return nil }
        for (_, field) in fields {
            if case .revealed(let revelation) = field, case .value(let bytes, _) = revelation.content(receipt) { return bytes }
        }
        return nil
    }

    var error: CofferError? {
        if case .failure(let error) = body { return error }
        return nil
    }

    /// The response as one JSON line, newline included. An answer that
    /// reveals something and holds no receipt is written as UNAVAILABLE.
    func encoded() -> JSONWriter {
        if reveals, receipt == nil { return Response.failure(id, Self.unrecorded).encoded() }
        var w = JSONWriter.answer()
        w.raw("{\"id\":")
        w.raw(id.json)
        switch body {
        case .success(let fields):
            w.raw(",\"ok\":true")
            for (key, value) in fields {
                w.raw(",")
                w.string(key)
                w.raw(":")
                Self.write(value, receipt: receipt, into: &w)
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

    private static func write(_ value: ResponseValue, receipt: AuditReceipt?, into w: inout JSONWriter) {
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
                write(item, receipt: receipt, into: &w)
            }
            w.raw("]")
        case .object(let members):
            w.raw("{")
            for (i, (key, item)) in members.enumerated() {
                if i > 0 { w.raw(",") }
                w.string(key)
                w.raw(":")
                write(item, receipt: receipt, into: &w)
            }
            w.raw("}")
        case .revealed(let revelation):
            // encoded() answered UNAVAILABLE already when there is no
            // receipt; without one the content cannot even be read.
            guard let receipt else { return w.raw("null") }
            switch revelation.content(receipt) {
            case .value(let bytes, .text): bytes.withUnsafeBytes { w.escaped($0) }
            case .value(let bytes, .binary): bytes.withUnsafeBytes { w.base64($0) }
            case .verdict(let matched): matched ? w.raw("true") : w.raw("false")
            case .storeFile(let text): w.string(text)
            }
        }
    }
}
