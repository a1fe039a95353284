import Model
#if canImport(Glibc)
import Glibc
#endif

/// The mirror's outbox as one snapshot holds it: a packed dictionary shared
/// by every snapshot since it was packed, and the entries set or removed
/// since, layered over it (as LayeredSecrets does for secrets).
///
/// While the mirror is away the outbox holds every name changed since, up
/// to the whole store. A commit changes a few of its entries; copying the
/// whole dictionary for each commit, and comparing it whole to find what
/// the log entry records, made a put cost in proportion to the outbox (65
/// ms at 100,000 names against 0.6 ms with it empty). A commit now copies
/// only the layer, and `changes(since:)` compares layers.
public struct Outbox: Sendable, Equatable, Sequence, ExpressibleByDictionaryLiteral {
    /// Shared, never changed: its identity tells two outboxes built on the
    /// same packing apart from two that are not.
    private final class Packed: Sendable {
        let entries: [SecretName: OutboxEntry]
        init(_ entries: [SecretName: OutboxEntry]) { self.entries = entries }
    }

    private var packed: Packed
    /// Set (an entry) or removed from `packed` (nil) since it was packed.
    /// A name is here only when it differs from `packed`.
    private var layer: [SecretName: OutboxEntry?] = [:]
    public private(set) var count: Int

    public init(_ entries: [SecretName: OutboxEntry] = [:]) {
        packed = Packed(entries)
        count = entries.count
    }

    public init(dictionaryLiteral elements: (SecretName, OutboxEntry)...) {
        self.init(Dictionary(elements, uniquingKeysWith: { _, last in last }))
    }

    /// How many changes the layer holds before the next change packs it:
    /// the same bound as LayeredSecrets' (at 100,000 names, a pass over
    /// the outbox once per 1,024 changes).
    static func layerLimit(packedCount: Int) -> Int { Swift.min(1024, Swift.max(64, packedCount / 8)) }

    public var isEmpty: Bool { count == 0 }

    /// Whether `names` more changes fit in the layer without packing it (a
    /// copy of every entry).
    public func hasRoom(for names: Int) -> Bool {
        layer.count + names <= Self.layerLimit(packedCount: packed.entries.count)
    }

    public subscript(name: SecretName) -> OutboxEntry? {
        get {
            if let layered = layer[name] { return layered }
            return packed.entries[name]
        }
        set {
            let before = self[name]
            guard before != newValue else { return }
            count += (newValue == nil ? 0 : 1) - (before == nil ? 0 : 1)
            layer[name] = packed.entries[name] == newValue ? nil : .some(newValue)
            if layer.count > Self.layerLimit(packedCount: packed.entries.count) { pack() }
        }
    }

    /// Sets (an entry) or removes (nil) each name in `changes`: through the
    /// layer when they fit in it, else in one new packing rather than one
    /// per layer filled (a mirror's first push confirms every name).
    public mutating func update(_ changes: [SecretName: OutboxEntry?]) {
        guard !hasRoom(for: changes.count) else {
            for (name, entry) in changes { self[name] = entry }
            return
        }
        var all = entries
        for (name, entry) in changes { all[name] = entry }
        self = Outbox(all)
    }

    /// Queues `names` as changed by the commit of `generation`, now
    /// (`update`).
    public mutating func queue(_ names: [SecretName], generation: UInt64) {
        let entry = OutboxEntry(generation: generation, queuedAt: Int64(time(nil)))
        update(Dictionary(uniqueKeysWithValues: names.map { ($0, OutboxEntry?.some(entry)) }))
    }

    /// Removes every entry `picked` picks (`update`).
    public mutating func removeAll(where picked: (SecretName, OutboxEntry) -> Bool) {
        update(Dictionary(uniqueKeysWithValues: filter { picked($0.key, $0.value) }.map { ($0.key, OutboxEntry?.none) }))
    }

    /// Every entry, as one dictionary.
    public var entries: [SecretName: OutboxEntry] {
        guard !layer.isEmpty else { return packed.entries }
        var all = packed.entries
        for (name, entry) in layer { all[name] = entry }
        return all
    }

    private mutating func pack() {
        packed = Packed(entries)
        layer = [:]
    }

    /// What changed from `older` to this outbox: the entries set (new or
    /// different) and the names removed. When both were built on the same
    /// packing (every commit between two packings), only their layers are
    /// compared.
    public func changes(since older: Outbox) -> (set: [SecretName: OutboxEntry], removed: [SecretName]) {
        var set: [SecretName: OutboxEntry] = [:]
        var removed: [SecretName] = []
        func compare(_ name: SecretName) {
            let now = self[name]
            guard now != older[name] else { return }
            if let now { set[name] = now } else { removed.append(name) }
        }
        if packed === older.packed {
            for name in layer.keys { compare(name) }
            for name in older.layer.keys where layer[name] == nil { compare(name) }
        } else {
            for name in entries.keys { compare(name) }
            for name in older.entries.keys where self[name] == nil { removed.append(name) }
        }
        return (set, removed.sorted())
    }

    public static func == (a: Outbox, b: Outbox) -> Bool {
        guard a.count == b.count else { return false }
        // On one packing, a name is layered only where it differs from it.
        if a.packed === b.packed { return a.layer == b.layer }
        return a.entries == b.entries
    }

    public func makeIterator() -> Dictionary<SecretName, OutboxEntry>.Iterator {
        entries.makeIterator()
    }

    public var keys: Dictionary<SecretName, OutboxEntry>.Keys { entries.keys }

    // For tests: how it is layered.
    var layerCount: Int { layer.count }
    var packedCount: Int { packed.entries.count }
    func sharesPacking(with other: Outbox) -> Bool { packed === other.packed }
}
