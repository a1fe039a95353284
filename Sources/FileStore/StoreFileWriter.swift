import JSON
import Model
import Seal

// The store file is written with JSON's JSONWriter, keys sorted, several
// times faster than JSONEncoder: a commit of a 100k-secret store, and the
// mirror's first sync, spent most of their time in it (scripts/bench).
// Pretty for the store file (the layout JSONEncoder's `[.prettyPrinted,
// .sortedKeys, .withoutEscapingSlashes]` gives), compact for the mirror's
// metadata column. Readers never depend on the layout; the MACs cover the
// content, not the bytes.
extension JSONWriter {
    /// Base64 of `raw`, quoted, straight into the buffer.
    mutating func base64(_ raw: [UInt8]) {
        raw.withUnsafeBytes { data in quoted(count: Base64.encodedCount(data.count)) { emit in Base64.encode(data, emit: emit) } }
    }
}

extension StoreFileFormat {
    /// The file's bytes (see above), newline-terminated.
    func encoded() throws -> [UInt8] {
        var w = JSONWriter(capacity: 512 + secrets.reduce(0) { $0 + 400 + $1.versions.reduce(0) { $0 + 400 + $1.sealed.ciphertext.count * 2 } },
                           layout: .pretty)
        w.open("{")
        w.key("format"); w.string(format)
        w.key("format_version"); w.integer(formatVersion)
        w.key("generation"); w.integer(generation)
        if let keyIDs {
            w.key("key_ids"); w.open("[")
            for id in keyIDs { w.element(); w.string(id) }
            w.close("]")
        }
        if let mac { w.key("mac"); w.string(mac) }
        if let macKeyID { w.key("mac_key_id"); w.string(macKeyID) }
        if let outbox {
            w.key("outbox"); w.open("[")
            for item in outbox { w.element(); item.write(to: &w) }
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
    /// With `kept`, as a log's patch: the numbers of the versions kept.
    func write(to w: inout JSONWriter, kept: [UInt64]? = nil) {
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
        if let expiresAt { w.key("expires_at"); w.integer(expiresAt) }
        if let graceSeconds { w.key("grace_seconds"); w.integer(graceSeconds) }
        if let kept {
            w.key("kept"); w.open("[")
            for number in kept { w.element(); w.integer(number) }
            w.close("]")
        }
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
            w.key("changed_at"); w.integer(stages.changedAt)
            w.key("changed_by"); w.string(stages.changedBy)
            w.key("current"); w.integer(stages.current)
            if let pending = stages.pending { w.key("pending"); w.integer(pending) }
            if let previous = stages.previous { w.key("previous"); w.integer(previous) }
            if let until = stages.previousUntil { w.key("previous_until"); w.integer(until) }
            w.close("}")
        }
        w.key("versions"); w.open("[")
        for v in versions {
            w.element(); w.open("{")
            w.key("created_at"); w.integer(v.createdAt)
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
            w.key("version"); w.integer(v.version)
            w.close("}")
        }
        w.close("]")
        w.close("}")
    }
}

extension StoreFileFormat.OutboxItem {
    /// As the store file and the log's entries hold it.
    func write(to w: inout JSONWriter) {
        w.open("{")
        w.key("generation"); w.integer(generation)
        w.key("name"); w.string(name)
        w.key("queued_at"); w.integer(queuedAt)
        w.close("}")
    }
}

extension StoreFileFormat.HashEntry {
    func write(to w: inout JSONWriter) {
        w.open("{")
        w.key("algorithm"); w.string(algorithm)
        if let n { w.key("n"); w.integer(n) }
        if let p { w.key("p"); w.integer(p) }
        if let r { w.key("r"); w.integer(r) }
        if let salt { w.key("salt"); w.string(salt) }
        w.close("}")
    }

    /// Compact JSON, for the mirror's version rows.
    var json: String {
        var w = JSONWriter(capacity: 128)
        write(to: &w)
        return String(decoding: w.bytes, as: UTF8.self)
    }
}

extension StoreFileFormat.Entry {
    /// Compact JSON, for the mirror's metadata column (written without
    /// versions, which travel as rows of their own).
    var json: String {
        var w = JSONWriter(capacity: 512)
        write(to: &w)
        return String(decoding: w.bytes, as: UTF8.self)
    }
}
