/// Someone a policy rule can name: a user, a group, a systemd unit (glob),
/// or anyone. Users and groups are held by number: names are resolved when
/// the policy is loaded, so a later rename cannot widen a grant.
public enum Principal: Sendable, Equatable, Hashable, CustomStringConvertible {
    case uid(UInt32)
    case gid(UInt32)
    case unit(NamePattern)
    case anyone

    public func matches(_ peer: PeerIdentity) -> Bool {
        switch self {
        case .uid(let uid): return peer.uid == uid
        case .gid(let gid): return peer.isMember(of: gid)
        case .unit(let pattern): return peer.unit.map(pattern.matches(text:)) ?? false
        case .anyone: return true
        }
    }

    public var description: String {
        switch self {
        case .uid(let uid): return "uid:\(uid)"
        case .gid(let gid): return "gid:\(gid)"
        case .unit(let pattern): return "unit:\(pattern)"
        case .anyone: return "anyone"
        }
    }

    /// Parses `user:NAME`, `uid:N`, `group:NAME`, `gid:N`, `unit:GLOB` or
    /// `anyone`, resolving names through `directory`. The error is a message
    /// for the operator (the policy file names its line).
    public static func parse(_ text: String, directory: some AccountDirectory) throws(CofferError) -> Principal {
        if text == "anyone" { return .anyone }
        guard let colon = text.firstIndex(of: ":") else {
            throw CofferError(.badRequest, "'\(text)' is not a principal (user:, uid:, group:, gid:, unit: or anyone)")
        }
        let kind = text[..<colon]
        let value = String(text[text.index(after: colon)...])
        guard !value.isEmpty else { throw CofferError(.badRequest, "'\(text)' names nobody") }
        // A name goes to getpwnam_r(3) as a C string, which ends at the
        // first NUL: "user:root\0x" would resolve root.
        guard !value.utf8.contains(0) else { throw CofferError(.badRequest, "a principal holds a NUL byte") }
        switch kind {
        case "uid", "gid":
            guard let number = UInt32(value) else { throw CofferError(.badRequest, "'\(value)' is not a number in '\(text)'") }
            return kind == "uid" ? .uid(number) : .gid(number)
        case "user":
            guard let uid = directory.userID(named: value) else { throw CofferError(.badRequest, "no user named '\(value)'") }
            return .uid(uid)
        case "group":
            guard let gid = directory.groupID(named: value) else { throw CofferError(.badRequest, "no group named '\(value)'") }
            return .gid(gid)
        case "unit":
            guard UnitName.isValidPattern(value), !value.contains("**") else {
                throw CofferError(.badRequest, "'\(value)' is not a unit name or glob (e.g. web.service, app-*.service)")
            }
            let pattern = NamePattern(value)
            guard pattern.wildcardCount <= NamePattern.maxWildcards else {
                throw CofferError(.badRequest, "a unit glob may hold at most \(NamePattern.maxWildcards) wildcards")
            }
            return .unit(pattern)
        default:
            throw CofferError(.badRequest, "'\(kind):' is not a kind of principal (user:, uid:, group:, gid:, unit:)")
        }
    }
}

/// Resolves user and group names to numbers (getpwnam/getgrnam in the
/// daemon, a table in tests).
public protocol AccountDirectory {
    func userID(named: String) -> UInt32?
    func groupID(named: String) -> UInt32?
}

/// systemd unit names (systemd.unit(5)): `name.type`, at most 255 bytes, of
/// ASCII letters, digits and `:-_.\@`.
public enum UnitName {
    static let types: Set<Substring> = [
        "service", "socket", "device", "mount", "automount", "swap", "target", "path", "timer", "slice", "scope",
    ]

    public static func isValid(_ text: some StringProtocol) -> Bool {
        guard (3...255).contains(text.utf8.count), text.utf8.allSatisfy(isUnitByte),
              let dot = text.lastIndex(of: "."), dot != text.startIndex
        else { return false }
        return types.contains(Substring(text[text.index(after: dot)...]))
    }

    static func isValidPattern(_ text: String) -> Bool {
        (1...255).contains(text.utf8.count) && text.utf8.allSatisfy { isUnitByte($0) || $0 == UInt8(ascii: "*") }
    }

    private static func isUnitByte(_ c: UInt8) -> Bool {
        (48...57).contains(c) || (65...90).contains(c) || (97...122).contains(c)
            || c == UInt8(ascii: ":") || c == UInt8(ascii: "-") || c == UInt8(ascii: "_")
            || c == UInt8(ascii: ".") || c == UInt8(ascii: "\\") || c == UInt8(ascii: "@")
    }
}
