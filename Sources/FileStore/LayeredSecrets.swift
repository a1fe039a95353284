import Model

/// The secrets of one snapshot: a packed base (PackedSecrets) and the
/// secrets set or removed since it was packed.
///
/// A commit adds its few changes to the layer instead of repacking every
/// record, so what a write costs in memory does not grow with the store.
/// Once the layer outgrows `layerLimit` the next commit packs it into a new
/// base: a whole pass over the records, made once per that many writes.
/// Readers see one sorted set of secrets either way.
public struct LayeredSecrets: Sendable, Equatable, Sequence {
    let base: PackedSecrets
    /// Set (a secret) or removed from the base (nil) since it was packed.
    /// A name is here only when it differs from the base.
    let layer: [SecretName: Secret?]
    public let count: Int

    init(base: PackedSecrets, layer: [SecretName: Secret?] = [:]) {
        var count = base.count
        for (name, secret) in layer { count += Self.delta(base.contains(name), secret != nil) }
        self.init(base: base, layer: layer, count: count)
    }

    private init(base: PackedSecrets, layer: [SecretName: Secret?], count: Int) {
        self.base = base
        self.layer = layer
        self.count = count
    }

    /// How a name changes the count: held before or not, held after or not.
    private static func delta(_ inBase: Bool, _ held: Bool) -> Int {
        switch (inBase, held) {
        case (false, true): 1
        case (true, false): -1
        default: 0
        }
    }

    /// Packs `secrets` (any order).
    public init(_ secrets: [SecretName: Secret]) {
        self.init(base: PackedSecrets(secrets))
    }

    /// How many changes the layer holds before a commit packs a new base:
    /// enough that packing is rare against writes (at 100k secrets, once
    /// per 1024), few enough that copying the layer for each commit stays
    /// small next to the commit's sync.
    static func layerLimit(baseCount: Int) -> Int { Swift.min(1024, Swift.max(64, baseCount / 8)) }

    public var isEmpty: Bool { count == 0 }

    /// Whether a change of up to `names` secrets goes into the layer
    /// without packing a new base (a copy of every record).
    public func hasRoom(for names: Int) -> Bool {
        layer.count + names <= Self.layerLimit(baseCount: base.count)
    }

    public subscript(name: SecretName) -> Secret? {
        if let layered = layer[name] { return layered }
        return base[name]
    }

    public func contains(_ name: SecretName) -> Bool {
        if let layered = layer[name] { return layered != nil }
        return base.contains(name)
    }

    /// Every name, sorted.
    public var names: [SecretName] {
        guard !layer.isEmpty else { return base.names }
        return Self.merge(base.names, layer.keys.sorted()) { layer[$0].map { $0 != nil } }
    }

    /// The sorted merge of `base` and `changed` (both sorted), where
    /// `keeps` says whether a changed name is held (nil: not changed).
    static func merge(_ base: [SecretName], _ changed: [SecretName], keeps: (SecretName) -> Bool?) -> [SecretName] {
        var merged: [SecretName] = []
        merged.reserveCapacity(base.count + changed.count)
        var next = changed.startIndex
        for name in base {
            while next < changed.endIndex, changed[next] < name {
                if keeps(changed[next]) == true { merged.append(changed[next]) }
                next += 1
            }
            if next < changed.endIndex, changed[next] == name {
                if keeps(name) == true { merged.append(name) }
                next += 1
            } else {
                merged.append(name)
            }
        }
        for name in changed[next...] where keeps(name) == true { merged.append(name) }
        return merged
    }

    /// `changes` applied (set, or removed where nil): into the layer, or,
    /// once the layer would outgrow its limit, packed into a new base.
    public func applying(_ changes: [SecretName: Secret?]) -> LayeredSecrets {
        guard !changes.isEmpty else { return self }
        var next = layer
        var count = self.count
        for (name, secret) in changes {
            count += Self.delta(contains(name), secret != nil)
            if let secret {
                if base[name] == secret { next.removeValue(forKey: name) } else { next[name] = .some(secret) }
            } else if base.contains(name) {
                next[name] = .some(nil)
            } else {
                next.removeValue(forKey: name)
            }
        }
        if next.count > Self.layerLimit(baseCount: base.count) {
            return LayeredSecrets(base: base.applying(next))
        }
        return LayeredSecrets(base: base, layer: next, count: count)
    }

    /// `edits` applied (EditedSecrets keeps what a commit changed).
    public func applying(_ edits: EditedSecrets) -> LayeredSecrets { applying(edits.changes) }

    /// The same secrets, packed into one base (a store file's load does
    /// this; so does a commit whose layer is full).
    public func packed() -> LayeredSecrets {
        layer.isEmpty ? self : LayeredSecrets(base: base.applying(layer))
    }

    /// The secrets `other` does not hold as they are here (new or changed),
    /// in name order. Base records are compared as bytes, without decoding;
    /// when both share one base only the layers are looked at.
    public func secretsNotHeld(in other: LayeredSecrets) -> [Secret] {
        var out: [Secret] = []
        if !base.isSameStorage(as: other.base) {
            for index in base.indicesNotHeld(in: other.base) {
                let name = base.name(at: index)
                // A layered name is looked at below, with its layered value.
                guard layer[name] == nil, other.layer[name] == nil else { continue }
                out.append(base.secret(at: index))
            }
        }
        // Names either layer changed: compared as values.
        var looked = Set<SecretName>()
        for name in Array(layer.keys) + Array(other.layer.keys) where looked.insert(name).inserted {
            if let mine = self[name], other[name] != mine { out.append(mine) }
        }
        return out.sorted { $0.name < $1.name }
    }

    /// Equal exactly when they hold equal secrets.
    public static func == (a: LayeredSecrets, b: LayeredSecrets) -> Bool {
        if a.base.isSameStorage(as: b.base), a.layer == b.layer { return true }
        return a.count == b.count && a.secretsNotHeld(in: b).isEmpty
    }

    /// How many versions, and how many hashed secrets, all secrets hold
    /// (status): base records are read without decoding them.
    public var totals: (versions: Int, hashed: Int) {
        var totals = base.totals
        for (name, secret) in layer {
            if let before = base[name] {
                totals.versions -= before.versions.count
                if before.protection == .hashed { totals.hashed -= 1 }
            }
            if let secret {
                totals.versions += secret.versions.count
                if secret.protection == .hashed { totals.hashed += 1 }
            }
        }
        return totals
    }

    /// Secrets in name order, each decoded as it is reached.
    public func makeIterator() -> some IteratorProtocol<Secret> {
        if layer.isEmpty {
            return AnyIterator(base.makeIterator())
        }
        return AnyIterator(names.lazy.map { self[$0]! }.makeIterator())
    }

    public var underestimatedCount: Int { count }
}
