import JSON
import Keyring
import Model
import Seal

/// Reads a store file with the project's own JSON parser (Sources/JSON): one
/// pass that keeps strings as ranges into the file, several times faster
/// than Foundation's JSONDecoder on a 100k-secret store (scripts/bench).
/// Errors name the field, never its content.
extension StoreFileFormat {
    init(parsing bytes: [UInt8]) throws(StoreError) {
        let parsed = bytes.withUnsafeBytes { raw in Result { () throws(CofferError) in try JSONParser.parse(raw) } }
        guard case .success(let root) = parsed else {
            if case .failure(let error) = parsed { throw StoreError(.corrupt, "the store file is not valid JSON (\(error.message))") }
            throw StoreError(.corrupt, "the store file is not valid JSON")
        }
        let reader = FieldReader(bytes: bytes)
        let top = try reader.object(root, "the store file")
        format = try reader.string(top, "format")
        formatVersion = Int(try reader.integer(top, "format_version"))
        storeID = try reader.string(top, "store_id")
        guard let generation = UInt64(exactly: try reader.integer(top, "generation")) else {
            throw StoreError(.corrupt, "the store file's generation is negative")
        }
        self.generation = generation
        keyIDs = try top["key_ids"].map { (v) throws(StoreError) in
            try reader.array(v, "key_ids").map { (k) throws(StoreError) in try reader.string(k, "key_ids") }
        }
        macKeyID = try top["mac_key_id"].map { (v) throws(StoreError) in try reader.string(v, "mac_key_id") }
        mac = try top["mac"].map { (v) throws(StoreError) in try reader.string(v, "mac") }
        secrets = []
        for item in try reader.array(top["secrets"], "secrets") {
            secrets.append(try reader.entry(item))
        }
        outbox = try top["outbox"].map { (v) throws(StoreError) in
            try reader.array(v, "outbox").map { (item) throws(StoreError) in
                let members = try reader.object(item, "outbox entry")
                guard let generation = UInt64(exactly: try reader.integer(members, "generation")) else {
                    throw StoreError(.corrupt, "the store file's outbox holds a negative generation")
                }
                return OutboxItem(name: try reader.string(members, "name"), generation: generation,
                                  queuedAt: try reader.integer(members, "queued_at"))
            }
        }
    }
}

struct FieldReader {
    let bytes: [UInt8]

    func object(_ value: JSONValue?, _ what: String) throws(StoreError) -> [String: JSONValue] {
        guard case .object(let members)? = value else { throw StoreError(.corrupt, "the store file's \(what) is not an object") }
        return members
    }

    func array(_ value: JSONValue?, _ what: String) throws(StoreError) -> [JSONValue] {
        guard case .array(let items)? = value else { throw StoreError(.corrupt, "the store file's \(what) is not an array") }
        return items
    }

    func string(_ value: JSONValue?, _ what: String) throws(StoreError) -> String {
        guard case .string(let s)? = value else { throw StoreError(.corrupt, "the store file's \(what) is not a string") }
        return bytes.withUnsafeBytes { JSONStringDecoding.string(s, in: $0) }
    }

    func string(_ members: [String: JSONValue], _ key: String) throws(StoreError) -> String {
        try string(members[key], key)
    }

    func integer(_ members: [String: JSONValue], _ key: String) throws(StoreError) -> Int64 {
        guard case .number(let text)? = members[key], let value = Int64(text) else {
            throw StoreError(.corrupt, "the store file's \(key) is not a whole number")
        }
        return value
    }

    /// Base64 fields are decoded straight from the file's bytes when they
    /// hold no escapes (cofferd never writes any; other tools may write `\/`).
    func base64(_ members: [String: JSONValue], _ key: String) throws(StoreError) -> [UInt8] {
        guard case .string(let s)? = members[key] else { throw StoreError(.corrupt, "the store file's \(key) is not a string") }
        let decoded = s.hasEscapes
            ? Base64.decode(Array(try string(members, key).utf8))
            : bytes.withUnsafeBytes { Base64.decode(UnsafeRawBufferPointer(rebasing: $0[s.range])) }
        guard let decoded else { throw StoreError(.corrupt, "the store file's \(key) is not base64") }
        return decoded
    }

    func entry(_ value: JSONValue) throws(StoreError) -> StoreFileFormat.Entry {
        let members = try object(value, "secret")
        let kind: SecretKind
        do { kind = try SecretKind(try string(members, "kind")) } catch {
            throw StoreError(.corrupt, "the store file holds an invalid kind")
        }
        guard let protection = Protection(rawValue: try string(members, "protection")) else {
            throw StoreError(.corrupt, "the store file holds an invalid protection")
        }
        var versions: [StoreFileFormat.VersionEntry] = []
        for item in try array(members["versions"], "versions") {
            versions.append(try version(item))
        }
        return StoreFileFormat.Entry(
            name: try string(members, "name"), kind: kind, protection: protection, versions: versions,
            access: try members["access"].map { (v) throws(StoreError) in try access(v) },
            stages: try members["stages"].map { (v) throws(StoreError) in try stages(v) },
            graceSeconds: try optionalInteger(members, "grace_seconds"),
            expiresAt: try optionalInteger(members, "expires_at"),
            operations: try members["operations"].map { (v) throws(StoreError) in
                try array(v, "operations").map { (o) throws(StoreError) in try string(o, "operations") }
            })
    }

    func optionalInteger(_ members: [String: JSONValue], _ key: String) throws(StoreError) -> Int64? {
        members[key] == nil ? nil : try integer(members, key)
    }

    func optionalUnsigned(_ members: [String: JSONValue], _ key: String) throws(StoreError) -> UInt64? {
        try optionalInteger(members, key).map { (v) throws(StoreError) in
            guard let u = UInt64(exactly: v), u > 0 else { throw StoreError(.corrupt, "the store file's \(key) is not a positive number") }
            return u
        }
    }

    func stages(_ value: JSONValue) throws(StoreError) -> StoreFileFormat.StagesEntry {
        let members = try object(value, "stages")
        guard let current = try optionalUnsigned(members, "current") else {
            throw StoreError(.corrupt, "the store file's stages have no current version")
        }
        return StoreFileFormat.StagesEntry(
            current: current, previous: try optionalUnsigned(members, "previous"), pending: try optionalUnsigned(members, "pending"),
            changedAt: try integer(members, "changed_at"), changedBy: try string(members, "changed_by"),
            previousUntil: try optionalInteger(members, "previous_until"))
    }

    func hash(_ value: JSONValue) throws(StoreError) -> StoreFileFormat.HashEntry {
        let members = try object(value, "hash")
        func small(_ key: String) throws(StoreError) -> UInt32? {
            try optionalUnsigned(members, key).map { (v) throws(StoreError) in
                guard let small = UInt32(exactly: v) else { throw StoreError(.corrupt, "the store file's hash.\(key) is out of range") }
                return small
            }
        }
        return StoreFileFormat.HashEntry(
            algorithm: try string(members, "algorithm"), n: try optionalUnsigned(members, "n"), r: try small("r"), p: try small("p"),
            salt: try members["salt"].map { (v) throws(StoreError) in try string(v, "hash.salt") })
    }

    func version(_ value: JSONValue) throws(StoreError) -> StoreFileFormat.VersionEntry {
        let members = try object(value, "version")
        let sealed = try object(members["sealed"], "sealed")
        guard let keyID = KeyID(hex: try string(sealed, "key_id")) else {
            throw StoreError(.corrupt, "the store file holds an invalid key_id")
        }
        guard let encoding = ValueEncoding(rawValue: try string(members, "encoding")) else {
            throw StoreError(.corrupt, "the store file holds an invalid encoding")
        }
        let number = try integer(members, "version")
        guard number > 0 else { throw StoreError(.corrupt, "the store file holds a version below 1") }
        return StoreFileFormat.VersionEntry(
            version: UInt64(number),
            sealed: SealedRecord(keyID: keyID, salt: try base64(sealed, "salt"), nonce: try base64(sealed, "nonce"),
                                 ciphertext: try base64(sealed, "ciphertext")),
            encoding: encoding, createdAt: try integer(members, "created_at"), createdBy: try string(members, "created_by"),
            hash: try members["hash"].map { (v) throws(StoreError) in try hash(v) },
            id: try members["id"].map { (v) throws(StoreError) in try string(v, "id") })
    }

    func access(_ value: JSONValue) throws(StoreError) -> SecretAccess {
        let members = try object(value, "access")
        var principals: [Principal] = []
        for item in try members["principals"].map({ (v) throws(StoreError) in try array(v, "principals") }) ?? [] {
            do { principals.append(try Principal.parse(try string(item, "principals"), directory: NumericAccounts())) } catch {
                throw StoreError(.corrupt, "the store file holds an invalid principal")
            }
        }
        var scope = SecretScope.all
        if let scopeValue = members["scope"] {
            let scopeMembers = try object(scopeValue, "scope")
            if let sockets = scopeMembers["sockets"] {
                var listeners: Set<Listener> = []
                for item in try array(sockets, "scope.sockets") {
                    guard let listener = Listener(rawValue: try string(item, "scope.sockets")), listener != .admin else {
                        throw StoreError(.corrupt, "the store file holds an invalid scope")
                    }
                    listeners.insert(listener)
                }
                scope = .sockets(listeners)
            }
        }
        return SecretAccess(principals: principals, scope: scope)
    }
}
