import Model

/// What a commit works on: the packed secrets it started from and the
/// secrets it set or removed since. Reads see the changes over the base;
/// the commit then packs only what changed (PackedSecrets.applying), so a
/// put into 100k secrets does not decode the other 99,999.
public struct EditedSecrets: Sequence {
    public let base: PackedSecrets
    /// Set or removed (nil) since `base`.
    public private(set) var changes: [SecretName: Secret?] = [:]

    public init(_ base: PackedSecrets) { self.base = base }

    public subscript(name: SecretName) -> Secret? {
        get {
            if let change = changes[name] { return change }
            return base[name]
        }
        set {
            if let newValue { precondition(newValue.name == name, "a secret set under another name") }
            changes.updateValue(newValue, forKey: name)
        }
    }

    @discardableResult
    public mutating func removeValue(forKey name: SecretName) -> Secret? {
        let old = self[name]
        self[name] = nil
        return old
    }

    /// Every name held, sorted.
    public var names: [SecretName] {
        guard !changes.isEmpty else { return base.names }
        let changed = changes.keys.sorted()
        var merged: [SecretName] = []
        merged.reserveCapacity(base.count + changed.count)
        var next = changed.startIndex
        for name in base.names {
            while next < changed.endIndex, changed[next] <= name {
                if changes[changed[next]]! != nil { merged.append(changed[next]) }
                next += 1
            }
            if merged.last != name, changes[name] == nil { merged.append(name) }
        }
        for name in changed[next...] where changes[name]! != nil { merged.append(name) }
        return merged
    }

    /// The names whose secret differs from the base: added, changed or
    /// removed.
    public var changedNames: [SecretName] {
        changes.keys.filter { base[$0] != changes[$0]! }.sorted()
    }

    /// (name, secret) in name order, each decoded as it is reached.
    public func makeIterator() -> some IteratorProtocol<(name: SecretName, secret: Secret)> {
        names.lazy.map { name in (name: name, secret: self[name]!) }.makeIterator()
    }
}
