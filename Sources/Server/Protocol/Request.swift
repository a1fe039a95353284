import JSON
import LockedMemory
import Model
import Seal

/// A request line, parsed: the echoed id, the operation and its members.
/// String members are decoded from `line` on demand; `line` is wiped when
/// the last reference to it goes.
struct Request: Sendable {
    let line: TransientBytes
    let id: RequestID
    let operation: Operation
    let members: JSONObject

    static let reservedMembers: Set<String> = ["id", "op"]

    /// Parses a line into a request, or the error to answer (with whatever id
    /// could be recovered, else null).
    static func parse(_ line: TransientBytes) -> Result<Request, RequestFailure> {
        let parsed = line.withUnsafeBytes { bytes in
            Result { () throws(JSONError) in try JSONParser.parse(bytes) }
        }
        let root: JSONValue
        switch parsed {
        case .success(let value): root = value
        case .failure(let error): return .failure(RequestFailure(id: .null, error: CofferError(.badRequest, error.message)))
        }
        guard case .object(let members) = root else {
            return .failure(RequestFailure(id: .null, error: CofferError(.badRequest, "a request must be a JSON object")))
        }
        let id: RequestID
        switch members["id"] {
        case nil, .null?: id = .null
        case .number(let text)?:
            // Echoed as sent, so it must be a number every client's JSON
            // parser reads back exactly: an integer within ±2^53 (RFC 8259,
            // section 6). `1e999` is valid JSON that many parsers refuse.
            guard let number = Int64(text), number.magnitude <= 1 << 53 else {
                return .failure(RequestFailure(id: .null, error: CofferError(.badRequest, "a numeric 'id' must be an integer within ±2^53")))
            }
            id = RequestID(number: text)
        case .string(let s)?:
            guard s.range.count <= RequestID.maxBytes else {
                return .failure(RequestFailure(id: .null, error: CofferError(.badRequest, "'id' is longer than \(RequestID.maxBytes) bytes")))
            }
            id = line.withUnsafeBytes { RequestID(string: JSONStringDecoding.string(s, in: $0)) }
        case let other?:
            return .failure(RequestFailure(id: .null, error: CofferError(.badRequest, "'id' must be a string, a number or null, not \(other.typeName)")))
        }
        guard let opValue = members["op"] else {
            return .failure(RequestFailure(id: id, error: CofferError(.badRequest, "missing 'op'")))
        }
        guard case .string(let opString) = opValue else {
            return .failure(RequestFailure(id: id, error: CofferError(.badRequest, "'op' must be a string")))
        }
        let opName = line.withUnsafeBytes { JSONStringDecoding.string(opString, in: $0) }
        guard let operation = Operation(rawValue: opName) else {
            return .failure(RequestFailure(id: id, error: CofferError(.unknownOperation, "unknown operation; see docs/protocol.md for the list")))
        }
        return .success(Request(line: line, id: id, operation: operation, members: members))
    }

    /// Refuses members the operation does not take, so a misspelt option
    /// (say `protecton`) is an error instead of being silently ignored.
    func checkMembers(allowed: Set<String>) throws(CofferError) {
        for key in members.keys.sorted() where !Self.reservedMembers.contains(key) && !allowed.contains(key) {
            throw CofferError(.badRequest, "\(operation.rawValue) does not take \(Self.shown(member: key))")
        }
    }

    /// A member name as an error message may show it: quoted when it looks
    /// like a name, else "a member" (the message never echoes arbitrary
    /// client text, which could be a misplaced value).
    static func shown(member key: String) -> String {
        key.utf8.count <= 64 && SecretName.problem(key) == nil ? "'\(key)'" : "a member"
    }

    func has(_ key: String) -> Bool { members[key] != nil }

    func string(_ key: String) throws(CofferError) -> String? {
        switch members[key] {
        case nil: return nil
        case .string(let s)?: return line.withUnsafeBytes { JSONStringDecoding.string(s, in: $0) }
        case let other?: throw CofferError(.badRequest, "'\(key)' must be a string, not \(other.typeName)")
        }
    }

    func requiredString(_ key: String) throws(CofferError) -> String {
        guard let value = try string(key) else { throw CofferError(.badRequest, "missing '\(key)'") }
        return value
    }

    func name(_ key: String = "name") throws(CofferError) -> SecretName {
        try SecretName(requiredString(key))
    }

    /// `names: [..]`, or a single `name`.
    func names() throws(CofferError) -> [SecretName] {
        switch (members["names"], members["name"]) {
        case (nil, nil): throw CofferError(.badRequest, "missing 'name' or 'names'")
        case (_?, _?): throw CofferError(.badRequest, "give 'name' or 'names', not both")
        case (nil, _?): return [try name()]
        case (.array(let items)?, nil):
            guard !items.isEmpty else { throw CofferError(.badRequest, "'names' is empty") }
            var result: [SecretName] = []
            for item in items {
                guard case .string(let s) = item else { throw CofferError(.badRequest, "'names' must hold strings only") }
                let name = try SecretName(line.withUnsafeBytes { JSONStringDecoding.string(s, in: $0) })
                guard !result.contains(name) else { throw CofferError(.badRequest, "'names' holds \(name) twice") }
                result.append(name)
            }
            return result
        case (let other?, nil): throw CofferError(.badRequest, "'names' must be an array, not \(other.typeName)")
        }
    }

    func bool(_ key: String) throws(CofferError) -> Bool? {
        switch members[key] {
        case nil: return nil
        case .bool(let b)?: return b
        case let other?: throw CofferError(.badRequest, "'\(key)' must be true or false, not \(other.typeName)")
        }
    }

    /// An array of strings; nil when absent.
    func strings(_ key: String, max: Int) throws(CofferError) -> [String]? {
        switch members[key] {
        case nil: return nil
        case .array(let items)?:
            guard items.count <= max else { throw CofferError(.badRequest, "'\(key)' holds more than \(max) items") }
            var result: [String] = []
            for item in items {
                guard case .string(let s) = item else { throw CofferError(.badRequest, "'\(key)' must hold strings only") }
                result.append(line.withUnsafeBytes { JSONStringDecoding.string(s, in: $0) })
            }
            return result
        case let other?: throw CofferError(.badRequest, "'\(key)' must be an array, not \(other.typeName)")
        }
    }

    /// The object member `key`'s own members; nil when absent.
    func object(_ key: String) throws(CofferError) -> JSONObject? {
        switch members[key] {
        case nil: return nil
        case .object(let members)?: return members
        case let other?: throw CofferError(.badRequest, "'\(key)' must be an object, not \(other.typeName)")
        }
    }

    /// A string member decoded straight into locked memory (a value the
    /// client sends, never held in a Swift String); nil when absent.
    func lockedString(_ key: String) throws -> LockedBytes? {
        switch members[key] {
        case nil: return nil
        case .string(let s)?: return try locked(s)
        case let other?: throw CofferError(.badRequest, "'\(key)' must be a string, not \(other.typeName)")
        }
    }

    private func locked(_ string: JSONString) throws -> LockedBytes {
        try line.withUnsafeBytes { raw in
            try LockedBytes(count: JSONStringDecoding.decodedCount(string, in: raw)) { out in
                JSONStringDecoding.decode(string, in: raw, into: out)
            }
        }
    }

    /// The text of a string found inside this request's line.
    func text(_ string: JSONString) -> String {
        line.withUnsafeBytes { JSONStringDecoding.string(string, in: $0) }
    }

    func unsigned(_ key: String) throws(CofferError) -> UInt64? {
        switch members[key] {
        case nil: return nil
        case .number(let text)?:
            guard let value = UInt64(text) else { throw CofferError(.badRequest, "'\(key)' must be a whole number ≥ 0") }
            return value
        case let other?: throw CofferError(.badRequest, "'\(key)' must be a number, not \(other.typeName)")
        }
    }

    /// The secret in `value` (text) or `value_base64` (bytes), decoded
    /// straight into locked memory. nil when neither is present.
    func secretInput() throws -> SecretInput? {
        try secretInput(in: members)
    }

    /// The same, from an object inside the request (import's items).
    func secretInput(in members: JSONObject) throws -> SecretInput? {
        switch (members["value"], members["value_base64"]) {
        case (nil, nil): return nil
        case (_?, _?): throw CofferError(.badRequest, "give 'value' or 'value_base64', not both")
        case (.string(let s)?, nil):
            return SecretInput(bytes: try locked(s), encoding: .text)
        case (nil, .string(let s)?):
            var text = [UInt8](repeating: 0, count: line.withUnsafeBytes { JSONStringDecoding.decodedCount(s, in: $0) })
            defer { text.wipe() }
            text.withUnsafeMutableBytes { out in line.withUnsafeBytes { JSONStringDecoding.decode(s, in: $0, into: out) } }
            guard var decoded = Base64.decode(text) else { throw CofferError(.badRequest, "'value_base64' is not valid base64") }
            return SecretInput(bytes: try LockedBytes(takingAndWiping: &decoded), encoding: .binary)
        case (let other?, nil), (nil, let other?):
            throw CofferError(.badRequest, "the value must be a string, not \(other.typeName)")
        }
    }
}

/// A value from the client, in locked memory, with the form it came in.
struct SecretInput {
    let bytes: LockedBytes
    let encoding: ValueEncoding
}

struct RequestFailure: Error {
    let id: RequestID
    let error: CofferError
}

/// The request's `id`, kept as the JSON to echo and as text for the audit.
struct RequestID: Sendable, Equatable {
    static let maxBytes = 128
    static let null = RequestID(json: Array("null".utf8), text: nil)

    let json: [UInt8]
    let text: String?

    private init(json: [UInt8], text: String?) {
        self.json = json
        self.text = text
    }

    init(number: String) {
        self.init(json: Array(number.prefix(Self.maxBytes).utf8), text: String(number.prefix(Self.maxBytes)))
    }

    init(string: String) {
        var writer = JSONWriter()
        writer.string(string)
        self.init(json: writer.bytes, text: string)
    }
}
