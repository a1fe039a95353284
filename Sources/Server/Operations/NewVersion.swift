import CofferCore
import LockedMemory
import Model
import Seal

/// What put, rotate and token.create share on the wire: read the value
/// (given or generated) and the options from the request, have the core
/// write the version (CofferServices.write), and answer.
struct NewVersion {
    static let members: Set<String> = [
        "name", "value", "value_base64", "generate", "kind", "protection", "hash", "grace_seconds", "expires_at",
    ]

    let existing: VersionWrite.Existing
    let event: SecretChange.Event
    var pending = false
    /// token.create's fixed choices; nil: from the request.
    var forced: Forced? = nil

    struct Forced {
        let generated: GeneratedValue
        let kind: SecretKind
        let operations: [String]
    }

    func commit(
        _ request: Request, access: SecretAccess?, context: RequestContext, writes: any SecretWrites
    ) async throws -> HandlerOutcome {
        let name = try request.name()
        var options = try VersionWrite.Options(request)
        if let forced {
            options.kind = forced.kind
            options.operations = forced.operations
        }
        let generated = try forced?.generated ?? GenerateRequest.parse(request)
        let given = try request.secretInput()
        if generated != nil, given != nil { throw CofferError(.badRequest, "give a value or 'generate', not both") }
        if forced != nil, given != nil { throw CofferError(.badRequest, "token.create makes the token itself: give no value") }
        let value: LockedBytes
        let encoding: ValueEncoding
        if let generated {
            value = try generated.make()
            encoding = .text
        } else if let given {
            value = given.bytes
            encoding = given.encoding
        } else {
            throw CofferError(.badRequest, "missing 'value', 'value_base64' or 'generate' (cofferctl reads a value from stdin or --from-file)")
        }
        let written = try await writes.write(
            VersionWrite(name: name, value: value, encoding: encoding, generated: generated != nil, options: options,
                         access: access, existing: existing, event: event, pending: pending, hashedByDefault: forced != nil),
            known: context.secret(name), by: context.peer.principal)
        var fields: [(String, ResponseValue)] = [
            ("name", .string(name.rawValue)), ("version", .unsigned(written.version)), ("stage", .string(written.stage.rawValue)),
        ]
        // A generated value of a hashed secret exists nowhere else: it is
        // shown in this answer, once, and never again.
        if generated != nil, written.protection == .hashed {
            fields.append((forced != nil ? "token" : "value", .secret(value, .text)))
        }
        return HandlerOutcome(fields, version: written.version)
    }
}

extension VersionWrite.Options {
    /// put's and rotate's optional members about the secret and its versions.
    init(_ request: Request) throws {
        self.init()
        kind = try request.string("kind").map { (k: String) throws(CofferError) in try SecretKind(k) }
        protection = try request.string("protection").map { (p: String) throws(CofferError) -> Protection in
            guard let value = Protection(rawValue: p) else { throw CofferError(.badRequest, "'protection' must be sealed or hashed") }
            return value
        }
        switch try request.string("hash") {
        case nil: hash = nil
        case "scrypt": hash = .scryptDefault(salt: try SecureRandom.bytes(16))
        case "hmac-sha256": hash = .hmacSHA256
        default: throw CofferError(.badRequest, "'hash' must be scrypt (passwords) or hmac-sha256 (random tokens)")
        }
        if let grace = try request.unsigned("grace_seconds") {
            guard grace <= UInt64(Secret.maxGraceSeconds) else {
                throw CofferError(.badRequest, "'grace_seconds' is at most \(Secret.maxGraceSeconds) (a year)")
            }
            graceSeconds = Int64(grace)
        }
        expiresAt = try request.expiry()
    }
}

/// `generate: {bytes, format: hex|base64|token, prefix}`.
enum GenerateRequest {
    static func parse(_ request: Request) throws(CofferError) -> GeneratedValue? {
        guard let members = try request.object("generate") else { return nil }
        for key in members.keys where !["bytes", "format", "prefix"].contains(key) {
            throw CofferError(.badRequest, "'generate' takes bytes, format and prefix only")
        }
        var bytes = 32
        if let value = members["bytes"] {
            guard case .number(let text) = value, let count = Int(text), GeneratedValue.byteRange.contains(count) else {
                throw CofferError(.badRequest, "'generate.bytes' must be a whole number from \(GeneratedValue.byteRange.lowerBound) to \(GeneratedValue.byteRange.upperBound)")
            }
            bytes = count
        }
        var format = GeneratedValue.Format.base64
        if let value = members["format"] {
            guard case .string(let s) = value, let chosen = GeneratedValue.Format(rawValue: request.text(s)) else {
                throw CofferError(.badRequest, "'generate.format' must be hex, base64 or token")
            }
            format = chosen
        }
        var prefix: String?
        if let value = members["prefix"] {
            guard case .string(let s) = value, GeneratedValue.isValidPrefix(request.text(s)) else {
                throw CofferError(.badRequest, "'generate.prefix' must be 1 to 32 of A-Z a-z 0-9 -")
            }
            prefix = request.text(s)
        }
        return GeneratedValue(bytes: bytes, format: format, prefix: prefix)
    }
}

extension Request {
    /// `expires_at`: seconds since the Unix epoch, or null to clear.
    func expiry() throws(CofferError) -> Int64?? {
        switch members["expires_at"] {
        case nil: return nil
        case .null?: return .some(nil)
        case .number(let text)?:
            guard let value = Int64(text), value > 0 else {
                throw CofferError(.badRequest, "'expires_at' must be seconds since the Unix epoch (or null to clear it)")
            }
            return .some(value)
        case let other?: throw CofferError(.badRequest, "'expires_at' must be a number or null, not \(other.typeName)")
        }
    }

    /// `stage`: current, previous or pending.
    func stage() throws(CofferError) -> Stage? {
        try string("stage").map { (text: String) throws(CofferError) -> Stage in
            guard let stage = Stage(rawValue: text) else { throw CofferError(.badRequest, "'stage' must be current, previous or pending") }
            return stage
        }
    }
}
