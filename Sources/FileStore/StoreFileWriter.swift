import JSON
import Model
import Seal

/// Writes store-file JSON as bytes, keys sorted, several times faster than
/// JSONEncoder: a commit of a 100k-secret store, and the mirror's first
/// sync, spent most of their time in it (scripts/bench). Pretty: the layout
/// JSONEncoder's `[.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]`
/// gives (two-space indent, `"key" : value`), for the store file; compact
/// for the mirror's metadata column. Readers never depend on the layout;
/// the MACs cover the content, not the bytes.
struct PrettyJSONWriter {
    private(set) var bytes: [UInt8] = []
    private var firstInContainer: [Bool] = []
    private let pretty: Bool

    init(capacity: Int, pretty: Bool = true) {
        bytes.reserveCapacity(capacity)
        self.pretty = pretty
    }

    private mutating func newline() {
        guard pretty else { return }
        bytes.append(UInt8(ascii: "\n"))
        for _ in 0..<firstInContainer.count { bytes.append(32); bytes.append(32) }
    }

    /// The separator and newline before the next member or element.
    private mutating func next() {
        if firstInContainer[firstInContainer.count - 1] {
            firstInContainer[firstInContainer.count - 1] = false
        } else {
            bytes.append(UInt8(ascii: ","))
        }
        newline()
    }

    mutating func open(_ bracket: Character) {
        bytes.append(UInt8(ascii: bracket.unicodeScalars.first!))
        firstInContainer.append(true)
    }

    mutating func close(_ bracket: Character) {
        let empty = firstInContainer.removeLast()
        if !empty { newline() }
        bytes.append(UInt8(ascii: bracket.unicodeScalars.first!))
    }

    mutating func key(_ name: String) {
        next()
        string(name)
        bytes.append(contentsOf: (pretty ? " : " : ":").utf8)
    }

    /// Before an array element.
    mutating func element() { next() }

    mutating func string(_ text: String) {
        var text = text
        text.withUTF8 { utf8 in JSONEscaping.quote(UnsafeRawBufferPointer(utf8)) { bytes.append($0) } }
    }

    /// Base64 of `raw`, straight into the buffer.
    mutating func base64(_ raw: [UInt8]) {
        bytes.append(UInt8(ascii: "\""))
        raw.withUnsafeBytes { Base64.encode($0) { bytes.append($0) } }
        bytes.append(UInt8(ascii: "\""))
    }

    mutating func number<N: BinaryInteger>(_ value: N) { bytes.append(contentsOf: String(value).utf8) }
    mutating func bool(_ value: Bool) { bytes.append(contentsOf: (value ? "true" : "false").utf8) }
}

extension StoreFileFormat {
    /// The file's bytes (see PrettyJSONWriter), newline-terminated.
    func encoded() throws -> [UInt8] {
        var w = PrettyJSONWriter(capacity: 512 + secrets.reduce(0) { $0 + 400 + $1.versions.reduce(0) { $0 + 400 + $1.sealed.ciphertext.count * 2 } })
        w.open("{")
        w.key("format"); w.string(format)
        w.key("format_version"); w.number(formatVersion)
        w.key("generation"); w.number(generation)
        if let keyIDs {
            w.key("key_ids"); w.open("[")
            for id in keyIDs { w.element(); w.string(id) }
            w.close("]")
        }
        if let mac { w.key("mac"); w.string(mac) }
        if let macKeyID { w.key("mac_key_id"); w.string(macKeyID) }
        if let outbox {
            w.key("outbox"); w.open("[")
            for item in outbox {
                w.element(); w.open("{")
                w.key("generation"); w.number(item.generation)
                w.key("name"); w.string(item.name)
                w.key("queued_at"); w.number(item.queuedAt)
                w.close("}")
            }
            w.close("]")
        }
        w.key("secrets"); w.open("[")
        for entry in secrets { w.element(); entry.write(to: &w) }
        w.close("]")
        w.key("store_id"); w.string(storeID)
        w.close("}")
        var bytes = w.bytes
        bytes.append(UInt8(ascii: "\n"))
        return bytes
    }
}

extension StoreFileFormat.Entry {
    func write(to w: inout PrettyJSONWriter) {
        w.open("{")
        if let access {
            w.key("access"); w.open("{")
            w.key("principals"); w.open("[")
            for p in access.principals { w.element(); w.string(p.description) }
            w.close("]")
            w.key("scope"); w.open("{")
            switch access.scope {
            case .all: w.key("all"); w.bool(true)
            case .sockets(let set):
                w.key("sockets"); w.open("[")
                for l in set.map(\.rawValue).sorted() { w.element(); w.string(l) }
                w.close("]")
            }
            w.close("}")
            w.close("}")
        }
        if let expiresAt { w.key("expires_at"); w.number(expiresAt) }
        if let graceSeconds { w.key("grace_seconds"); w.number(graceSeconds) }
        w.key("kind"); w.string(kind.rawValue)
        w.key("name"); w.string(name)
        if let operations {
            w.key("operations"); w.open("[")
            for o in operations { w.element(); w.string(o) }
            w.close("]")
        }
        w.key("protection"); w.string(protection.rawValue)
        if let stages {
            w.key("stages"); w.open("{")
            w.key("changed_at"); w.number(stages.changedAt)
            w.key("changed_by"); w.string(stages.changedBy)
            w.key("current"); w.number(stages.current)
            if let pending = stages.pending { w.key("pending"); w.number(pending) }
            if let previous = stages.previous { w.key("previous"); w.number(previous) }
            if let until = stages.previousUntil { w.key("previous_until"); w.number(until) }
            w.close("}")
        }
        w.key("versions"); w.open("[")
        for v in versions {
            w.element(); w.open("{")
            w.key("created_at"); w.number(v.createdAt)
            w.key("created_by"); w.string(v.createdBy)
            w.key("encoding"); w.string(v.encoding.rawValue)
            if let hash = v.hash { w.key("hash"); hash.write(to: &w) }
            if let id = v.id { w.key("id"); w.string(id) }
            w.key("sealed"); w.open("{")
            w.key("ciphertext"); w.base64(v.sealed.ciphertext)
            w.key("key_id"); w.string(v.sealed.keyID.hex)
            w.key("nonce"); w.base64(v.sealed.nonce)
            w.key("salt"); w.base64(v.sealed.salt)
            w.close("}")
            w.key("version"); w.number(v.version)
            w.close("}")
        }
        w.close("]")
        w.close("}")
    }
}

extension StoreFileFormat.HashEntry {
    func write(to w: inout PrettyJSONWriter) {
        w.open("{")
        w.key("algorithm"); w.string(algorithm)
        if let n { w.key("n"); w.number(n) }
        if let p { w.key("p"); w.number(p) }
        if let r { w.key("r"); w.number(r) }
        if let salt { w.key("salt"); w.string(salt) }
        w.close("}")
    }

    /// Compact JSON, for the mirror's version rows.
    var json: String {
        var w = PrettyJSONWriter(capacity: 128, pretty: false)
        write(to: &w)
        return String(decoding: w.bytes, as: UTF8.self)
    }
}

extension StoreFileFormat.Entry {
    /// Compact JSON, for the mirror's metadata column (written without
    /// versions, which travel as rows of their own).
    var json: String {
        var w = PrettyJSONWriter(capacity: 512, pretty: false)
        write(to: &w)
        return String(decoding: w.bytes, as: UTF8.self)
    }
}
