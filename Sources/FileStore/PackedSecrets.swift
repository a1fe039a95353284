import Keyring
import Model

/// The secrets of one snapshot, packed (docs/performance.md, "Memory"):
/// every secret's record (PackedSecretCoding) back to back in one buffer,
/// in name order, and an open-addressing index by name. 100k secrets take
/// about 16 MiB this way; as a dictionary of `Secret` values (each version
/// three arrays and two strings) they took 130 MiB.
///
/// A lookup decodes the one record it finds into a `Secret`, so readers
/// keep working with plain values; nothing here is ever plaintext.
public struct PackedSecrets: Sendable, Equatable, Sequence {
    /// The records, back to back, in name order.
    private let bytes: [UInt8]
    /// Where each record starts, then `bytes.count`.
    private let starts: [UInt32]
    /// Linear probing by the name's hash: a record's index + 1; 0 is empty.
    /// At most half full, so a miss ends within a few slots.
    private let slots: [UInt32]
    let keys: KnownKeyIDs

    private init(bytes: [UInt8], starts: [UInt32], keys: KnownKeyIDs) {
        self.bytes = bytes
        self.starts = starts
        self.keys = keys
        var capacity = 16
        while capacity < (starts.count - 1) * 2 { capacity <<= 1 }
        var slots = [UInt32](repeating: 0, count: capacity)
        bytes.withUnsafeBytes { raw in
            for index in 0..<(starts.count - 1) {
                let record = UnsafeRawBufferPointer(rebasing: raw[Int(starts[index])..<Int(starts[index + 1])])
                var slot = Self.hash(PackedSecretCoding.name(of: record)) & (capacity - 1)
                while slots[slot] != 0 { slot = (slot + 1) & (capacity - 1) }
                slots[slot] = UInt32(index + 1)
            }
        }
        self.slots = slots
    }

    /// Packs `secrets` (any order).
    public init(_ secrets: [SecretName: Secret]) {
        var packer = Packer()
        for name in secrets.keys.sorted() { packer.append(secrets[name]!) }
        self = packer.packed()
    }

    private static func hash(_ name: UnsafeRawBufferPointer) -> Int {
        var hasher = Hasher()
        hasher.combine(bytes: name)
        return hasher.finalize()
    }

    public var count: Int { starts.count - 1 }
    public var isEmpty: Bool { count == 0 }

    private func record<R>(_ index: Int, _ body: (UnsafeRawBufferPointer) -> R) -> R {
        bytes.withUnsafeBytes { body(UnsafeRawBufferPointer(rebasing: $0[Int(starts[index])..<Int(starts[index + 1])])) }
    }

    /// The record index holding `name`, or nil.
    private func index(of name: SecretName) -> Int? {
        var text = name.rawValue
        return text.withUTF8 { index(ofName: UnsafeRawBufferPointer($0)) }
    }

    private func index(ofName wanted: UnsafeRawBufferPointer) -> Int? {
        var slot = Self.hash(wanted) & (slots.count - 1)
        while slots[slot] != 0 {
            let index = Int(slots[slot] - 1)
            if record(index, { sameBytes(PackedSecretCoding.name(of: $0), wanted) }) { return index }
            slot = (slot + 1) & (slots.count - 1)
        }
        return nil
    }

    public subscript(name: SecretName) -> Secret? {
        index(of: name).map { index in record(index) { PackedSecretCoding.decode($0, name: name, keys: keys) } }
    }

    public func contains(_ name: SecretName) -> Bool { index(of: name) != nil }

    /// The indices of the records `other` does not hold byte for byte
    /// (new or changed secrets), found without decoding any record.
    public func indicesNotHeld(in other: PackedSecrets) -> [Int] {
        (0..<count).filter { index in
            record(index) { mine in
                guard let theirs = other.index(ofName: PackedSecretCoding.name(of: mine)) else { return true }
                return !other.record(theirs) { sameBytes($0, mine) }
            }
        }
    }

    /// The secret at `index` in name order.
    public func secret(at index: Int) -> Secret {
        record(index) { PackedSecretCoding.decode($0, name: nil, keys: keys) }
    }

    public func name(at index: Int) -> SecretName {
        record(index) { record in
            PackedSecretCoding.packed { () throws(CofferError) in
                try SecretName(String(decoding: PackedSecretCoding.name(of: record), as: UTF8.self))
            }
        }
    }

    /// How many versions, and how many hashed secrets, all records hold
    /// (status), read without decoding them.
    public var totals: (versions: Int, hashed: Int) {
        (0..<count).reduce(into: (versions: 0, hashed: 0)) { totals, index in
            let summary = record(index, PackedSecretCoding.summary(of:))
            totals.versions += summary.versions
            if summary.hashed { totals.hashed += 1 }
        }
    }

    /// Every name, sorted.
    public var names: [SecretName] { (0..<count).map(name(at:)) }

    /// Secrets in name order, each decoded as it is reached.
    public struct Iterator: IteratorProtocol {
        let packed: PackedSecrets
        var position = 0
        public mutating func next() -> Secret? {
            guard position < packed.count else { return nil }
            defer { position += 1 }
            return packed.secret(at: position)
        }
    }

    public func makeIterator() -> Iterator { Iterator(packed: self) }
    public var underestimatedCount: Int { count }

    /// Equal exactly when they hold equal secrets: the encoding is a
    /// function of the secret (PackedSecretCoding).
    public static func == (a: PackedSecrets, b: PackedSecrets) -> Bool {
        a.starts == b.starts && a.bytes.withUnsafeBytes { x in b.bytes.withUnsafeBytes { y in sameBytes(x, y) } }
    }

    /// `changes` applied (set, or removed where nil): untouched records are
    /// copied as bytes, changed ones encoded, in one pass over both in name
    /// order (names are ASCII, so byte order is name order).
    func applying(_ changes: [SecretName: Secret?]) -> PackedSecrets {
        var packer = Packer(reserving: bytes.count, keys: keys)
        let changed = changes.keys.sorted()
        var next = changed.startIndex
        func flush(before name: UnsafeRawBufferPointer?) {
            while next < changed.endIndex {
                var text = changed[next].rawValue
                let order = name.map { name in text.withUTF8 { compareBytes(UnsafeRawBufferPointer($0), name) } } ?? -1
                guard order <= 0 else { return }
                if let secret = changes[changed[next]]! { packer.append(secret) }
                next += 1
                if order == 0 { return }
            }
        }
        for index in 0..<count {
            record(index) { record in
                let name = PackedSecretCoding.name(of: record)
                let before = next
                flush(before: name)
                let replaced = next > before && changed[next - 1].rawValue.utf8.elementsEqual(name)
                if !replaced { packer.append(record: record) }
            }
        }
        flush(before: nil)
        return packer.packed()
    }

    /// Whether both are the same packing (one commit's base kept by the
    /// next): then they hold the same records without comparing any.
    func isSameStorage(as other: PackedSecrets) -> Bool {
        starts.count == other.starts.count
            && bytes.withUnsafeBufferPointer { mine in other.bytes.withUnsafeBufferPointer { $0.baseAddress == mine.baseAddress } }
    }

    /// Builds a PackedSecrets from secrets given in strictly increasing
    /// name order (a parsed store file is sorted already).
    public struct Packer {
        private var out: PackedRecordWriter
        private var starts: [UInt32] = [0]
        private var keys: KnownKeyIDs
        /// The last name appended, to keep strict name order.
        private var last: [UInt8]?

        public init() { self.init(reserving: 0, keys: KnownKeyIDs()) }

        init(reserving capacity: Int, keys: KnownKeyIDs) {
            out = PackedRecordWriter(bytes: [])
            out.bytes.reserveCapacity(capacity)
            self.keys = keys
        }

        private mutating func ordered(_ name: UnsafeRawBufferPointer) {
            if let last {
                precondition(last.withUnsafeBytes { compareBytes($0, name) } < 0, "secrets packed out of order")
            }
            last = Array(name)
        }

        public mutating func append(_ secret: Secret) {
            let start = out.bytes.count
            for version in secret.versions { keys.note(version.sealed.keyID) }
            PackedSecretCoding.encode(secret, into: &out)
            out.bytes.withUnsafeBytes { ordered(PackedSecretCoding.name(of: UnsafeRawBufferPointer(rebasing: $0[start...]))) }
            starts.append(UInt32(out.bytes.count))
        }

        /// A record of another PackedSecrets whose keys this one knows.
        mutating func append(record: UnsafeRawBufferPointer) {
            ordered(PackedSecretCoding.name(of: record))
            out.bytes.append(contentsOf: record)
            starts.append(UInt32(out.bytes.count))
        }

        public func packed() -> PackedSecrets {
            precondition(out.bytes.count <= Int(UInt32.max), "packed secrets past 4 GiB")
            return PackedSecrets(bytes: out.bytes, starts: starts, keys: keys)
        }
    }
}
