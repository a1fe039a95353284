import Model

/// What a commit works on: the secrets it started from and the secrets it
/// set or removed since. Reads see the changes over the base; the commit
/// then adds only what changed (LayeredSecrets.applying), so a put into
/// 100k secrets does not decode the other 99,999.
public struct EditedSecrets: Sequence {
    public let base: LayeredSecrets
    /// Set or removed (nil) since `base`.
    public private(set) var changes: [SecretName: Secret?] = [:]

    public init(_ base: LayeredSecrets) { self.base = base }

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
        return LayeredSecrets.merge(base.names, changes.keys.sorted()) { changes[$0].map { $0 != nil } }
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
