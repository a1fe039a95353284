import JSON
import Keyring
import Model
import Seal

/// Reads a store file front to back with the project's own JSON cursor
/// (Sources/JSON): no tree of values is built, and strings stay ranges into
/// the file until a field is made from them (docs/performance.md). Every
/// member name must be one this version knows, at most once: a member added
/// outside cofferd is refused, not passed over. Errors name the field,
/// never its content.
extension StoreFileFormat {
    init(parsing bytes: [UInt8]) throws(StoreError) {
        self = try StoreFileReader.read(bytes, source: "the store file") { (reader) throws(StoreError) in try reader.file() }
    }

    init(
        format: String, formatVersion: Int, storeID: String, generation: UInt64, keyIDs: [String]?, macKeyID: String?,
        mac: String?, secrets: [Entry], outbox: [OutboxItem]?
    ) {
        self.format = format
        self.formatVersion = formatVersion
        self.storeID = storeID
        self.generation = generation
        self.keyIDs = keyIDs
        self.macKeyID = macKeyID
        self.mac = mac
        self.secrets = secrets
        self.outbox = outbox
    }
}

/// Reads the store file, or a mirror row's JSON (its metadata, a version's
/// hash), which hold the same members. `source` says which in errors.
struct StoreFileReader {
    private var cursor: JSONCursor
    private let source: String

    /// Reads `bytes` whole with `body`: nothing but whitespace may follow.
    static func read<T>(
        _ bytes: [UInt8], source: String, _ body: (inout StoreFileReader) throws(StoreError) -> T
    ) throws(StoreError) -> T {
        try bytes.withUnsafeBytes { raw in
            Result { () throws(StoreError) in
                let cursor: JSONCursor
                do throws(JSONError) { cursor = try JSONCursor(raw) } catch { throw StoreError(.corrupt, "\(source) is not valid JSON (\(error.message))") }
                var reader = StoreFileReader(cursor: cursor, source: source)
                let value = try body(&reader)
                do throws(JSONError) { try reader.cursor.end() } catch { throw StoreError(.corrupt, "\(source) is not valid JSON (\(error.message))") }
                return value
            }
        }.get()
    }

    private init(cursor: JSONCursor, source: String) {
        self.cursor = cursor
        self.source = source
    }

    /// Runs one cursor step; its error becomes "`what` is not `kind`".
    private mutating func step<T>(_ what: String, _ kind: String, _ body: (inout JSONCursor) throws(JSONError) -> T) throws(StoreError) -> T {
        do { return try body(&cursor) } catch {
            throw StoreError(.corrupt, "\(source)'s \(what) is not \(kind) (\(error.message))")
        }
    }

    /// Reads an object whose members are among `names`, each at most once,
    /// calling `member` with the name's index.
    mutating func object(
        _ what: String, _ names: [StaticString], _ member: (inout StoreFileReader, Int) throws(StoreError) -> Void
    ) throws(StoreError) {
        var container = try step(what, "an object") { (c) throws(JSONError) in try c.beginObject() }
        precondition(names.count <= 32, "seen is a 32-bit mask")
        var seen: UInt32 = 0
        while let name = try step(what, "an object", { (c) throws(JSONError) in try c.nextMember(&container) }) {
            guard let index = names.firstIndex(where: { cursor.name(name, is: $0) }) else {
                throw StoreError(.corrupt, "\(source)'s \(what) holds a member this cofferd does not know")
            }
            guard seen & (1 << index) == 0 else {
                throw StoreError(.corrupt, "\(source)'s \(what) holds a member twice")
            }
            seen |= 1 << index
            try member(&self, index)
        }
    }

    mutating func array(_ what: String, _ element: (inout StoreFileReader) throws(StoreError) -> Void) throws(StoreError) {
        var container = try step(what, "an array") { (c) throws(JSONError) in try c.beginArray() }
        while try step(what, "an array", { (c) throws(JSONError) in try c.nextElement(&container) }) {
            try element(&self)
        }
    }

    mutating func strings(_ what: String) throws(StoreError) -> [String] {
        var out: [String] = []
        try array(what) { (r) throws(StoreError) in out.append(try r.string(what)) }
        return out
    }

    mutating func string(_ what: String) throws(StoreError) -> String {
        let s = try step(what, "a string") { (c) throws(JSONError) in try c.string() }
        return JSONStringDecoding.string(s, in: cursor.bytes)
    }

    mutating func integer(_ what: String) throws(StoreError) -> Int64 {
        let text = try step(what, "a whole number") { (c) throws(JSONError) in try c.number() }
        guard let value = Int64(String(decoding: text, as: UTF8.self)) else {
            throw StoreError(.corrupt, "\(source)'s \(what) is not a whole number")
        }
        return value
    }

    private mutating func positive(_ what: String) throws(StoreError) -> UInt64 {
        guard let value = UInt64(exactly: try integer(what)), value > 0 else {
            throw StoreError(.corrupt, "\(source)'s \(what) is not a positive number")
        }
        return value
    }

    /// Base64 is decoded straight from the file's bytes when it holds no
    /// escapes (cofferd never writes any; other tools may write `\/`).
    private mutating func base64(_ what: String) throws(StoreError) -> [UInt8] {
        let s = try step(what, "a string") { (c) throws(JSONError) in try c.string() }
        let decoded = s.hasEscapes
            ? Base64.decode(Array(JSONStringDecoding.string(s, in: cursor.bytes).utf8))
            : Base64.decode(UnsafeRawBufferPointer(rebasing: cursor.bytes[s.range]))
        guard let decoded else { throw StoreError(.corrupt, "\(source)'s \(what) is not base64") }
        return decoded
    }

    func require<T>(_ value: T?, _ what: String) throws(StoreError) -> T {
        guard let value else { throw StoreError(.corrupt, "\(source)'s \(what) is missing") }
        return value
    }

    mutating func file() throws(StoreError) -> StoreFileFormat {
        var format: String?, version: Int64?, storeID: String?, generation: Int64?
        var keyIDs: [String]?, macKeyID: String?, mac: String?, secrets: [StoreFileFormat.Entry]?
        var outbox: [StoreFileFormat.OutboxItem]?
        try object("top level", ["format", "format_version", "store_id", "generation", "key_ids", "mac_key_id", "mac",
                                     "secrets", "outbox"]) { (r, member) throws(StoreError) in
            switch member {
            case 0: format = try r.string("format")
            case 1: version = try r.integer("format_version")
            case 2: storeID = try r.string("store_id")
            case 3: generation = try r.integer("generation")
            case 4: keyIDs = try r.strings("key_ids")
            case 5: macKeyID = try r.string("mac_key_id")
            case 6: mac = try r.string("mac")
            case 7:
                var entries: [StoreFileFormat.Entry] = []
                try r.array("secrets") { (r) throws(StoreError) in entries.append(try r.entry()) }
                secrets = entries
            default:
                var items: [StoreFileFormat.OutboxItem] = []
                try r.array("outbox") { (r) throws(StoreError) in items.append(try r.outboxItem()) }
                outbox = items
            }
        }
        guard let generation = UInt64(exactly: try require(generation, "generation")) else {
            throw StoreError(.corrupt, "\(source)'s generation is negative")
        }
        guard let formatVersion = Int(exactly: try require(version, "format_version")) else {
            throw StoreError(.corrupt, "\(source)'s format_version is out of range")
        }
        return StoreFileFormat(
            format: try require(format, "format"), formatVersion: formatVersion, storeID: try require(storeID, "store_id"),
            generation: generation, keyIDs: keyIDs, macKeyID: macKeyID, mac: mac, secrets: try require(secrets, "secrets"),
            outbox: outbox)
    }

    mutating func outboxItem() throws(StoreError) -> StoreFileFormat.OutboxItem {
        var name: String?, generation: Int64?, queuedAt: Int64?
        try object("outbox entry", ["name", "generation", "queued_at"]) { (r, member) throws(StoreError) in
            switch member {
            case 0: name = try r.string("outbox name")
            case 1: generation = try r.integer("outbox generation")
            default: queuedAt = try r.integer("outbox queued_at")
            }
        }
        guard let generation = UInt64(exactly: try require(generation, "outbox generation")) else {
            throw StoreError(.corrupt, "\(source)'s outbox holds a negative generation")
        }
        return StoreFileFormat.OutboxItem(name: try require(name, "outbox name"), generation: generation,
                                          queuedAt: try require(queuedAt, "outbox queued_at"))
    }

    mutating func entry() throws(StoreError) -> StoreFileFormat.Entry {
        try entry(keeping: false).entry
    }

    /// A secret's entry; with `keeping`, a log's patch, which may also
    /// hold `kept` (the numbers of the versions it keeps).
    mutating func entry(keeping: Bool) throws(StoreError) -> (entry: StoreFileFormat.Entry, kept: [UInt64]?) {
        var name: String?, kind: SecretKind?, protection: Protection?, versions: [StoreFileFormat.VersionEntry]?
        var access: SecretAccess?, stages: StoreFileFormat.StagesEntry?, grace: Int64?, expiry: Int64?, operations: [String]?
        var kept: [UInt64]?
        try object("secret", ["name", "kind", "protection", "versions", "access", "stages", "grace_seconds", "expires_at",
                                  "operations"] + (keeping ? ["kept"] as [StaticString] : [])) { (r, member) throws(StoreError) in
            switch member {
            case 0: name = try r.string("name")
            case 1:
                do { kind = try SecretKind(try r.string("kind")) } catch let error as StoreError { throw error } catch {
                    throw StoreError(.corrupt, "\(r.source) holds an invalid kind")
                }
            case 2:
                guard let value = Protection(rawValue: try r.string("protection")) else {
                    throw StoreError(.corrupt, "\(r.source) holds an invalid protection")
                }
                protection = value
            case 3:
                var list: [StoreFileFormat.VersionEntry] = []
                try r.array("versions") { (r) throws(StoreError) in list.append(try r.version()) }
                versions = list
            case 4: access = try r.access()
            case 5: stages = try r.stages()
            case 6: grace = try r.integer("grace_seconds")
            case 7: expiry = try r.integer("expires_at")
            case 8:
                let names = try r.strings("operations")
                // Checked before the MAC is: the MAC joins them with
                // commas, so a name holding one would let two lists share
                // a MAC.
                guard names.allSatisfy(Secret.isValidOperation) else {
                    throw StoreError(.corrupt, "\(r.source) holds an operation name that is not 1 to 64 of a-z 0-9 . _ : -")
                }
                operations = names
            default:
                var numbers: [UInt64] = []
                try r.array("kept") { (r) throws(StoreError) in numbers.append(try r.positive("kept")) }
                kept = numbers
            }
        }
        let entry = StoreFileFormat.Entry(
            name: try require(name, "name"), kind: try require(kind, "kind"),
            protection: try require(protection, "protection"), versions: try require(versions, "versions"),
            access: access, stages: stages, graceSeconds: grace, expiresAt: expiry, operations: operations)
        return (entry, kept)
    }

    private mutating func stages() throws(StoreError) -> StoreFileFormat.StagesEntry {
        var current: UInt64?, previous: UInt64?, pending: UInt64?, changedAt: Int64?, changedBy: String?, until: Int64?
        try object("stages", ["current", "previous", "pending", "changed_at", "changed_by", "previous_until"]) {
            (r, member) throws(StoreError) in
            switch member {
            case 0: current = try r.positive("current")
            case 1: previous = try r.positive("previous")
            case 2: pending = try r.positive("pending")
            case 3: changedAt = try r.integer("changed_at")
            case 4: changedBy = try r.string("changed_by")
            default: until = try r.integer("previous_until")
            }
        }
        guard let current else { throw StoreError(.corrupt, "\(source)'s stages have no current version") }
        return StoreFileFormat.StagesEntry(
            current: current, previous: previous, pending: pending, changedAt: try require(changedAt, "changed_at"),
            changedBy: try require(changedBy, "changed_by"), previousUntil: until)
    }

    mutating func hash() throws(StoreError) -> StoreFileFormat.HashEntry {
        var algorithm: String?, n: UInt64?, r32: UInt32?, p: UInt32?, salt: String?
        func small(_ r: inout StoreFileReader, _ what: String) throws(StoreError) -> UInt32 {
            guard let value = UInt32(exactly: try r.positive(what)) else {
                throw StoreError(.corrupt, "\(r.source)'s \(what) is out of range")
            }
            return value
        }
        try object("hash", ["algorithm", "n", "r", "p", "salt"]) { (r, member) throws(StoreError) in
            switch member {
            case 0: algorithm = try r.string("hash.algorithm")
            case 1: n = try r.positive("hash.n")
            case 2: r32 = try small(&r, "hash.r")
            case 3: p = try small(&r, "hash.p")
            default: salt = try r.string("hash.salt")
            }
        }
        return StoreFileFormat.HashEntry(algorithm: try require(algorithm, "hash.algorithm"), n: n, r: r32, p: p, salt: salt)
    }

    private mutating func version() throws(StoreError) -> StoreFileFormat.VersionEntry {
        var number: Int64?, sealed: SealedRecord?, encoding: ValueEncoding?, createdAt: Int64?, createdBy: String?
        var hash: StoreFileFormat.HashEntry?, id: String?
        try object("version", ["version", "sealed", "encoding", "created_at", "created_by", "hash", "id"]) {
            (r, member) throws(StoreError) in
            switch member {
            case 0: number = try r.integer("version")
            case 1: sealed = try r.sealed()
            case 2:
                guard let value = ValueEncoding(rawValue: try r.string("encoding")) else {
                    throw StoreError(.corrupt, "\(r.source) holds an invalid encoding")
                }
                encoding = value
            case 3: createdAt = try r.integer("created_at")
            case 4: createdBy = try r.string("created_by")
            case 5: hash = try r.hash()
            default: id = try r.string("id")
            }
        }
        guard let number = UInt64(exactly: try require(number, "version")), number > 0 else {
            throw StoreError(.corrupt, "\(source) holds a version below 1")
        }
        return StoreFileFormat.VersionEntry(
            version: number, sealed: try require(sealed, "sealed"), encoding: try require(encoding, "encoding"),
            createdAt: try require(createdAt, "created_at"), createdBy: try require(createdBy, "created_by"),
            hash: hash, id: id)
    }

    private mutating func sealed() throws(StoreError) -> SealedRecord {
        var keyID: KeyID?, salt: [UInt8]?, nonce: [UInt8]?, ciphertext: [UInt8]?
        try object("sealed", ["ciphertext", "key_id", "nonce", "salt"]) { (r, member) throws(StoreError) in
            switch member {
            case 0: ciphertext = try r.base64("ciphertext")
            case 1:
                guard let id = KeyID(hex: try r.string("key_id")) else {
                    throw StoreError(.corrupt, "\(r.source) holds an invalid key_id")
                }
                keyID = id
            case 2: nonce = try r.base64("nonce")
            default: salt = try r.base64("salt")
            }
        }
        return SealedRecord(keyID: try require(keyID, "key_id"), salt: try require(salt, "salt"),
                            nonce: try require(nonce, "nonce"), ciphertext: try require(ciphertext, "ciphertext"))
    }

    private mutating func access() throws(StoreError) -> SecretAccess {
        var principals: [Principal] = []
        var scope = SecretScope.all
        try object("access", ["principals", "scope"]) { (r, member) throws(StoreError) in
            if member == 0 {
                for text in try r.strings("principals") {
                    do { principals.append(try Principal.parse(text, directory: NumericAccounts())) } catch {
                        throw StoreError(.corrupt, "\(r.source) holds an invalid principal")
                    }
                }
                return
            }
            try r.object("scope", ["all", "sockets"]) { (r, member) throws(StoreError) in
                guard member == 1 else {
                    _ = try r.step("scope.all", "true or false") { (c) throws(JSONError) in try c.bool() }
                    return
                }
                var listeners: Set<Listener> = []
                for text in try r.strings("scope.sockets") {
                    guard let listener = Listener(rawValue: text), listener != .admin else {
                        throw StoreError(.corrupt, "\(r.source) holds an invalid scope")
                    }
                    listeners.insert(listener)
                }
                scope = .sockets(listeners)
            }
        }
        return SecretAccess(principals: principals, scope: scope)
    }
}
