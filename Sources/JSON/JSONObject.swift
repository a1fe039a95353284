/// An object's members in the order sent, each name once.
///
/// A request object has a handful of members, read a few times each: a
/// scan of a short array finds one sooner than a dictionary hashes its name
/// (a per-request hasher seed and SipHash per insert and lookup showed
/// under perf on the get path). Past `indexedFrom` members a set of names
/// keeps the duplicate check linear, so no line can make it quadratic.
public struct JSONObject: Sendable, Equatable {
    public private(set) var members: [(name: String, value: JSONValue)] = []
    private var names: Set<String>?
    static let indexedFrom = 16

    public init() {}

    public var count: Int { members.count }
    public var isEmpty: Bool { members.isEmpty }
    /// Member names in the order sent.
    public var keys: [String] { members.map(\.name) }

    public subscript(name: String) -> JSONValue? {
        for member in members where member.name == name { return member.value }
        return nil
    }

    /// Adds a member; false, and nothing added, when the name is taken.
    public mutating func add(_ name: String, _ value: JSONValue) -> Bool {
        if let taken = names {
            guard !taken.contains(name) else { return false }
        } else if members.contains(where: { $0.name == name }) {
            return false
        }
        members.append((name, value))
        if names != nil {
            names?.insert(name)
        } else if members.count >= Self.indexedFrom {
            names = Set(members.map(\.name))
        }
        return true
    }

    public static func == (a: JSONObject, b: JSONObject) -> Bool {
        a.members.count == b.members.count && a.members.allSatisfy { b[$0.name] == $0.value }
    }
}
