import Keyring
import LockedMemory
import Model
import Seal
#if canImport(Glibc)
import Glibc
#endif

/// What put, rotate and token.create share: make the value (given or
/// generated), derive what a hashed secret stores, seal it as the secret's
/// next version, apply the stage and retention rules, and commit durably
/// before answering; then tell the watchers.
struct NewVersion {
    static let members: Set<String> = [
        "name", "value", "value_base64", "generate", "kind", "protection", "hash", "grace_seconds", "expires_at",
    ]
    static let maxValueBytes = 48 * 1024

    enum Existing {
        /// put: the first version or the next.
        case optional
        /// rotate: the secret must exist.
        case required
    }

    let existing: Existing
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
        _ request: Request, access: SecretAccess?, context: RequestContext, services: CofferServices
    ) async throws -> HandlerOutcome {
        let name = try request.name()
        let options = try VersionOptions(request)
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
        guard value.count <= Self.maxValueBytes else {
            throw CofferError(.badRequest, "the value is larger than \(Self.maxValueBytes) bytes")
        }

        let known = context.secret(name)
        let protection = options.protection ?? (forced != nil ? .hashed : known?.protection ?? .sealed)
        try Self.check(known, named: name, existing: existing, protection: protection)
        // Hash first (scrypt takes a while), outside the store's writer lock.
        let hash: HashParameters? = protection == .sealed ? nil
            : try options.hash ?? (generated != nil ? .hmacSHA256 : .scryptDefault(salt: SecureRandom.bytes(16)))
        if protection == .sealed, options.hash != nil {
            throw CofferError(.badRequest, "'hash' applies to protection hashed only")
        }
        let payload: LockedBytes
        if let hash, case .scrypt = hash {
            payload = try await services.scrypt.run(on: services.blockingPool) {
                try value.withUnsafeBytes { try ValueHashing.derive($0, hash) }
            }
        } else if let hash {
            payload = try value.withUnsafeBytes { try ValueHashing.derive($0, hash) }
        } else {
            payload = value
        }

        let keyring = services.keyring
        let sealer = services.sealer
        let author = context.peer.principal
        let now = Int64(time(nil))
        let existing = self.existing
        let pending = self.pending
        let forced = self.forced
        let retain = services.retainVersions

        let (version, finalAccess) = try await services.commit { storeID, secrets in
            let found = secrets[name]
            try Self.check(found, named: name, existing: existing, protection: protection)
            var secret = found ?? Secret(name: name, kind: options.kind ?? .generic, protection: protection, versions: [])
            if let kind = forced?.kind ?? options.kind { secret.kind = kind }
            if let access { secret.access = access }
            if let grace = options.graceSeconds { secret.graceSeconds = grace }
            if let expiry = options.expiresAt { secret.expiresAt = expiry }
            if let operations = forced?.operations { secret.operations = operations }
            let number = secret.nextVersion
            // The key is taken under the store's writer lock: a master-key
            // rotation's commit (and the retiring that follows it) cannot
            // fall between taking it and committing with it.
            let key = try keyring.current()
            let sealed = try payload.withUnsafeBytes {
                try sealer.seal($0, for: secret.identity(storeID: storeID, version: number), with: key)
            }
            try secret.add(SecretVersion(version: number, sealed: sealed, encoding: encoding, createdAt: now,
                                         createdBy: author, hash: hash, id: try SecureRandom.hex(8)),
                           pending: pending, at: now, by: author)
            secret.applyRetention(keep: retain)
            secrets[name] = secret
            return (number, secret.access)
        }
        let stage = pending ? Stage.pending : .current
        services.publish([(SecretChange(event: event, name: name, version: version, stage: stage.rawValue), finalAccess)])
        var fields: [(String, ResponseValue)] = [
            ("name", .string(name.rawValue)), ("version", .unsigned(version)), ("stage", .string(stage.rawValue)),
        ]
        // A generated value of a hashed secret exists nowhere else: it is
        // shown in this answer, once, and never again.
        if generated != nil, protection == .hashed {
            fields.append((forced != nil ? "token" : "value", .secret(value, .text)))
        }
        return HandlerOutcome(fields, version: version)
    }
}

extension NewVersion {
    /// What the secret as it stands allows. Checked before hashing (which
    /// may take a while) and again under the store's writer lock, where a
    /// request that came in between may have changed it.
    static func check(_ found: Secret?, named name: SecretName, existing: Existing, protection: Protection) throws(CofferError) {
        if existing == .required, found == nil {
            throw CofferError(.notFound, "no secret named \(name) to rotate; put creates it")
        }
        if let found, found.protection != protection {
            throw CofferError(.conflict, "\(name) is \(found.protection.rawValue); delete it to change its protection")
        }
    }
}

/// put's and rotate's optional members about the secret and its versions.
struct VersionOptions {
    var kind: SecretKind?
    var protection: Protection?
    var hash: HashParameters?
    var graceSeconds: Int64?
    /// nil: unchanged; .some(nil): cleared (`"expires_at": null`).
    var expiresAt: Int64??

    init(_ request: Request) throws {
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
