import JSON
import Model
import NIOCore

/// An answer line read where it lies: the parse keeps ranges into the line,
/// and strings are decoded on demand; a value goes straight into a
/// `SecretValue`. The line is zeroed once read.
struct Answer {
    let object: JSONObject
    let raw: UnsafeRawBufferPointer

    /// Parses `line`, turns `ok: false` into the error cofferd sent, and
    /// hands the rest to `body`.
    static func read<R>(_ line: ByteBuffer, _ body: (Answer) throws(CofferClientError) -> R) throws(CofferClientError) -> R {
        defer { line.zeroInPlace() }
        let result: Result<R, CofferClientError> = line.withUnsafeReadableBytes { raw in
            guard let parsed = try? JSONParser.parse(raw), case .object(let object) = parsed else {
                return .failure(CofferClientError(.malformedAnswer, "an answer that is not a JSON object"))
            }
            let answer = Answer(object: object, raw: raw)
            guard answer.bool("ok") == true else {
                let error = answer.nested("error")
                return .failure(CofferClientError(Code(wire: error?.string("code") ?? "INTERNAL"),
                                                  error?.string("message") ?? "no message"))
            }
            return Result { () throws(CofferClientError) in try body(answer) }
        }
        return try result.get()
    }

    typealias Code = CofferClientError.Code

    /// A watch's event line.
    static func event(_ line: ByteBuffer) throws(CofferClientError) -> ChangeEvent {
        let result: Result<ChangeEvent, CofferClientError> = line.withUnsafeReadableBytes { raw in
            guard let parsed = try? JSONParser.parse(raw), case .object(let object) = parsed else {
                return .failure(CofferClientError(.malformedAnswer, "an event that is not a JSON object"))
            }
            let answer = Answer(object: object, raw: raw)
            return .success(ChangeEvent(kind: ChangeEvent.Kind(rawValue: answer.string("event") ?? "") ?? .other,
                                        name: answer.string("name"), version: answer.unsigned("version"),
                                        stage: answer.string("stage")))
        }
        return try result.get()
    }

    func string(_ key: String) -> String? {
        guard case .string(let s)? = object[key] else { return nil }
        return JSONStringDecoding.string(s, in: raw)
    }

    func unsigned(_ key: String) -> UInt64? {
        guard case .number(let digits)? = object[key] else { return nil }
        return UInt64(digits)
    }

    func bool(_ key: String) -> Bool? {
        guard case .bool(let b)? = object[key] else { return nil }
        return b
    }

    func nested(_ key: String) -> Answer? {
        guard case .object(let inner)? = object[key] else { return nil }
        return Answer(object: inner, raw: raw)
    }

    func objects(_ key: String) throws(CofferClientError) -> [Answer] {
        guard case .array(let items)? = object[key] else { return [] }
        var out: [Answer] = []
        for item in items {
            guard case .object(let inner) = item else { throw CofferClientError(.malformedAnswer, "'\(key)' holds a non-object") }
            out.append(Answer(object: inner, raw: raw))
        }
        return out
    }

    /// `value` (text) or `value_base64` (bytes), decoded straight into a
    /// SecretValue.
    func value() throws(CofferClientError) -> SecretValue {
        if case .string(let s)? = object["value"] {
            return SecretValue(count: JSONStringDecoding.decodedCount(s, in: raw)) { out in
                JSONStringDecoding.decode(s, in: raw, into: out)
            }
        }
        if case .string(let s)? = object["value_base64"], var bytes = Base64.decode(UnsafeRawBufferPointer(rebasing: raw[s.range])) {
            defer { bytes.wipe() }
            return SecretValue(count: bytes.count) { $0.copyBytes(from: bytes) }
        }
        throw CofferClientError(.malformedAnswer, "an answer without a value")
    }
}
