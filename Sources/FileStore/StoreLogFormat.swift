import JSON
import Model
import Seal

/// The store's log (docs/file-format.md, "The log"): what each commit
/// changed since the snapshot in `store.json`, one frame per commit, each
/// MAC chained onto the one before and the first onto the snapshot's MAC.
///
/// A frame is `u32be(len(payload)) || payload || mac`; the payload is
/// compact JSON. The first frame is the header, which names the snapshot
/// the log continues; every later frame is one commit.
enum StoreLogFormat {
    static let magic = "coffer-store-log"
    /// 2: entries may patch a secret (`patched`). Logs of version 1 (whole
    /// secrets only) are still read, and rewritten as version 2 at startup.
    static let currentVersion = 2
    static let macCount = 32
    /// A payload longer than this is not cofferd's (a commit of a whole
    /// 100k-secret store is some 70 MB).
    static let maxPayload = 1 << 30

    struct Header: Equatable {
        var storeID: String
        /// The snapshot this log continues: its generation and MAC.
        var baseGeneration: UInt64
        var baseMAC: [UInt8]
        /// The master key the chain's key is derived from.
        var macKeyID: String
        var formatVersion = StoreLogFormat.currentVersion
    }

    /// One commit: the secrets it set (whole) or patched or removed, and
    /// the outbox entries it set or removed.
    struct Entry: Equatable {
        var generation: UInt64
        var secrets: [Secret] = []
        var patched: [Patch] = []
        var removed: [SecretName] = []
        var outbox: [SecretName: OutboxEntry] = [:]
        var outboxRemoved: [SecretName] = []
    }

    /// A secret that existed before the commit, as the commit left it,
    /// without the versions it kept unchanged: those are named by number
    /// (`kept`) and come from the secret as it stood. A put of one new
    /// version writes that version and the secret's metadata, not the
    /// versions it keeps (a tenth of the bytes at ten kept versions; whole
    /// secrets made entries the largest part of a put's CPU, and the
    /// compactions they brought on the next).
    struct Patch: Equatable {
        /// Metadata and the new or changed versions only.
        var secret: StoreFileFormat.Entry
        var kept: [UInt64]

        var name: String { secret.name }

        /// `secret`, its kept versions taken from `prior` (the secret before
        /// the commit), checked as a store file's entry is.
        func applied(to prior: Secret?, named name: SecretName) throws(StoreError) -> Secret {
            guard let prior else { throw StoreError(.corrupt, "a store log entry patches \(name), which does not exist") }
            // Both lists ascend, as cofferd writes them (a version at most once).
            let given = secret.versions.map(\.version)
            guard zip(kept, kept.dropFirst()).allSatisfy({ $0 < $1 }), zip(given, given.dropFirst()).allSatisfy({ $0 < $1 }) else {
                throw StoreError(.corrupt, "a store log entry's patch of \(name) lists versions out of order or twice")
            }
            var versions: [StoreFileFormat.VersionEntry] = []
            for number in kept {
                guard let version = prior.version(number) else {
                    throw StoreError(.corrupt, "a store log entry keeps version \(number) of \(name), which it does not have")
                }
                versions.append(StoreFileFormat.VersionEntry(version))
            }
            guard Set(kept).isDisjoint(with: given) else {
                throw StoreError(.corrupt, "a store log entry both keeps and sets a version of \(name)")
            }
            var whole = secret
            whole.versions = (versions + secret.versions).sorted { $0.version < $1.version }
            return try whole.secret(named: name)
        }
    }

    // MARK: the chain

    /// The header's MAC: the chain's first value.
    static func headerMAC(_ payload: [UInt8], key: MACKey) throws -> [UInt8] {
        try key.authenticate { update in
            withUnsafeBytes(of: UInt8(ascii: "H"), update)
            payload.withUnsafeBytes(update)
        }
    }

    /// An entry's MAC: over the previous frame's MAC and its own payload,
    /// so a frame taken out, moved or replayed breaks every MAC after it.
    static func entryMAC(_ payload: [UInt8], after previous: [UInt8], key: MACKey) throws -> [UInt8] {
        try key.authenticate { update in
            withUnsafeBytes(of: UInt8(ascii: "E"), update)
            previous.withUnsafeBytes(update)
            payload.withUnsafeBytes(update)
        }
    }

    /// `payload` framed with its MAC, appended to `out`.
    static func frame(_ payload: [UInt8], mac: [UInt8], into out: inout [UInt8]) {
        let count = UInt32(payload.count)
        out.append(contentsOf: [UInt8(count >> 24), UInt8(truncatingIfNeeded: count >> 16),
                                UInt8(truncatingIfNeeded: count >> 8), UInt8(truncatingIfNeeded: count)])
        out.append(contentsOf: payload)
        out.append(contentsOf: mac)
    }

    /// The frames of `bytes` in order: each frame's payload and MAC ranges.
    /// `torn` is where the bytes stop being whole frames (a write a crash
    /// cut short, or the zeros after the last frame), or nil when the last
    /// frame ends the bytes.
    static func frames(in bytes: [UInt8]) -> (frames: [(payload: Range<Int>, mac: Range<Int>)], torn: Int?) {
        var out: [(payload: Range<Int>, mac: Range<Int>)] = []
        var at = 0
        while at < bytes.count {
            guard bytes.count - at >= 4 else { return (out, at) }
            let count = Int(bytes[at]) << 24 | Int(bytes[at + 1]) << 16 | Int(bytes[at + 2]) << 8 | Int(bytes[at + 3])
            // No payload is empty (each is a JSON object): a zero length is
            // where the zeros written ahead of the frames begin.
            guard count > 0, count <= maxPayload, bytes.count - at - 4 >= count + macCount else { return (out, at) }
            let payload = (at + 4)..<(at + 4 + count)
            out.append((payload, payload.upperBound..<(payload.upperBound + macCount)))
            at = payload.upperBound + macCount
        }
        return (out, nil)
    }

    // MARK: payloads

    static func encode(_ header: Header) -> [UInt8] {
        var w = JSONWriter(capacity: 256)
        w.open("{")
        w.key("base_generation"); w.integer(header.baseGeneration)
        w.key("base_mac"); w.string(Hex.encode(header.baseMAC))
        w.key("format"); w.string(magic)
        w.key("format_version"); w.integer(header.formatVersion)
        w.key("mac_key_id"); w.string(header.macKeyID)
        w.key("store_id"); w.string(header.storeID)
        w.close("}")
        return w.bytes
    }

    static func encode(_ entry: Entry) -> [UInt8] {
        var w = JSONWriter(capacity: 256 + entry.secrets.reduce(0) { $0 + 400 + $1.versions.count * 600 }
                                + entry.patched.reduce(0) { $0 + 400 + $1.secret.versions.count * 600 })
        w.open("{")
        w.key("generation"); w.integer(entry.generation)
        if !entry.outbox.isEmpty {
            w.key("outbox"); w.open("[")
            for name in entry.outbox.keys.sorted() {
                let item = entry.outbox[name]!
                w.element()
                StoreFileFormat.OutboxItem(name: name.rawValue, generation: item.generation, queuedAt: item.queuedAt).write(to: &w)
            }
            w.close("]")
        }
        writeNames(entry.outboxRemoved, as: "outbox_removed", to: &w)
        if !entry.patched.isEmpty {
            w.key("patched"); w.open("[")
            for patch in entry.patched { w.element(); patch.secret.write(to: &w, kept: patch.kept) }
            w.close("]")
        }
        writeNames(entry.removed, as: "removed", to: &w)
        if !entry.secrets.isEmpty {
            w.key("secrets"); w.open("[")
            for secret in entry.secrets { w.element(); StoreFileFormat.Entry(secret).write(to: &w) }
            w.close("]")
        }
        w.close("}")
        return w.bytes
    }

    /// `names` as the member `key`, absent when empty.
    private static func writeNames(_ names: [SecretName], as key: String, to w: inout JSONWriter) {
        guard !names.isEmpty else { return }
        w.key(key); w.open("[")
        for name in names { w.element(); w.string(name.rawValue) }
        w.close("]")
    }

    static func header(parsing payload: [UInt8]) throws(StoreError) -> Header {
        try StoreFileReader.read(payload, source: "the store log's header") { (r) throws(StoreError) in try r.logHeader() }
    }

    /// An entry of a log of `formatVersion` (patches only from version 2).
    static func entry(parsing payload: [UInt8], formatVersion: Int = currentVersion) throws(StoreError) -> Entry {
        try StoreFileReader.read(payload, source: "a store log entry") { (r) throws(StoreError) in
            try r.logEntry(patches: formatVersion >= 2)
        }
    }

    /// What a commit from `old` to `new` changed, as an entry: the secrets
    /// `edits` set or removed that differ from the base (a secret that
    /// existed as a patch, a new one whole), and the outbox entries that
    /// differ.
    static func entry(from old: StoreSnapshot, to new: StoreSnapshot, edits: EditedSecrets) -> Entry {
        var entry = Entry(generation: new.generation)
        for name in edits.changedNames {
            guard let secret = edits.changes[name]! else {
                entry.removed.append(name)
                continue
            }
            guard let prior = old.secrets[name] else {
                entry.secrets.append(secret)
                continue
            }
            // A version is kept when it is the very version the secret had
            // (a master-key rotation reseals every one: all are written).
            var patch = StoreFileFormat.Entry(secret, versions: false)
            var kept: [UInt64] = []
            for version in secret.versions {
                if prior.version(version.version) == version {
                    kept.append(version.version)
                } else {
                    patch.versions.append(StoreFileFormat.VersionEntry(version))
                }
            }
            entry.patched.append(Patch(secret: patch, kept: kept))
        }
        (entry.outbox, entry.outboxRemoved) = new.outbox.changes(since: old.outbox)
        return entry
    }
}

extension StoreFileReader {
    mutating func logHeader() throws(StoreError) -> StoreLogFormat.Header {
        var format: String?, version: Int64?, storeID: String?, base: Int64?, mac: String?, keyID: String?
        try object("header", ["format", "format_version", "store_id", "base_generation", "base_mac", "mac_key_id"]) {
            (r, member) throws(StoreError) in
            switch member {
            case 0: format = try r.string("format")
            case 1: version = try r.integer("format_version")
            case 2: storeID = try r.string("store_id")
            case 3: base = try r.integer("base_generation")
            case 4: mac = try r.string("base_mac")
            default: keyID = try r.string("mac_key_id")
            }
        }
        guard try require(format, "format") == StoreLogFormat.magic, let version = try Int(exactly: require(version, "format_version")),
              (1...StoreLogFormat.currentVersion).contains(version) else {
            throw StoreError(.corrupt, "the store log is not a coffer-store-log of format version 1 to \(StoreLogFormat.currentVersion)")
        }
        guard let generation = UInt64(exactly: try require(base, "base_generation")),
              let baseMAC = Hex.decode(try require(mac, "base_mac")), baseMAC.count == StoreLogFormat.macCount else {
            throw StoreError(.corrupt, "the store log's header names no valid snapshot")
        }
        return StoreLogFormat.Header(storeID: try require(storeID, "store_id"), baseGeneration: generation, baseMAC: baseMAC,
                                     macKeyID: try require(keyID, "mac_key_id"), formatVersion: version)
    }

    mutating func logEntry(patches allowed: Bool) throws(StoreError) -> StoreLogFormat.Entry {
        var generation: Int64?
        var secrets: [Secret] = [], removed: [SecretName] = [], outboxRemoved: [SecretName] = []
        var patched: [StoreLogFormat.Patch] = []
        var outbox: [SecretName: OutboxEntry] = [:]
        func name(_ text: String) throws(StoreError) -> SecretName {
            do { return try SecretName(text) } catch { throw StoreError(.corrupt, "a store log entry holds an invalid secret name") }
        }
        let members: [StaticString] = ["generation", "secrets", "removed", "outbox", "outbox_removed"] + (allowed ? ["patched"] : [])
        try object("entry", members) { (r, member) throws(StoreError) in
            switch member {
            case 0: generation = try r.integer("generation")
            case 1:
                try r.array("secrets") { (r) throws(StoreError) in
                    let entry = try r.entry()
                    secrets.append(try entry.secret(named: try name(entry.name)))
                }
            case 2: removed = try r.strings("removed").map { (text) throws(StoreError) in try name(text) }
            case 3:
                try r.array("outbox") { (r) throws(StoreError) in
                    let item = try r.outboxItem()
                    outbox[try name(item.name)] = OutboxEntry(generation: item.generation, queuedAt: item.queuedAt)
                }
            case 4: outboxRemoved = try r.strings("outbox_removed").map { (text) throws(StoreError) in try name(text) }
            default:
                try r.array("patched") { (r) throws(StoreError) in
                    let (entry, kept) = try r.entry(keeping: true)
                    _ = try name(entry.name)
                    guard let kept else { throw StoreError(.corrupt, "a store log entry's patch of \(entry.name) has no 'kept'") }
                    patched.append(StoreLogFormat.Patch(secret: entry, kept: kept))
                }
            }
        }
        guard let generation = UInt64(exactly: try require(generation, "generation")), generation > 0 else {
            throw StoreError(.corrupt, "a store log entry has no valid generation")
        }
        let named = secrets.map(\.name) + removed + (try patched.map { (patch) throws(StoreError) in try name(patch.name) })
        guard Set(named).count == named.count, Set(outbox.keys).isDisjoint(with: outboxRemoved),
              outbox.values.allSatisfy({ $0.generation <= generation }) else {
            throw StoreError(.corrupt, "a store log entry names a secret or an outbox entry twice")
        }
        return StoreLogFormat.Entry(generation: generation, secrets: secrets, patched: patched, removed: removed, outbox: outbox,
                                    outboxRemoved: outboxRemoved)
    }
}
