#if canImport(Glibc)
import Glibc
#endif

/// Why a secret-bearing file (key file, store file) is not acceptable.
public enum FilePermissionProblem: Equatable, CustomStringConvertible {
    case notRegularFile
    case accessibleByOthers(mode: mode_t)
    case wrongOwner(owner: uid_t, expected: uid_t)

    public var description: String {
        switch self {
        case .notRegularFile:
            return "is not a regular file"
        case .accessibleByOthers(let mode):
            return "has mode \(String(mode & 0o7777, radix: 8)); it must be 0600 (chmod 600)"
        case .wrongOwner(let owner, let expected):
            return "is owned by uid \(owner); it must be owned by the daemon's user (uid \(expected))"
        }
    }
}

/// Checks that an open file is a regular file, mode 0600 (or stricter) and
/// owned by `owner`. Checked on the descriptor, not the path, so the answer
/// is about the file actually read.
public func secretFileProblem(_ info: stat, owner: uid_t = geteuid()) -> FilePermissionProblem? {
    if (info.st_mode & S_IFMT) != S_IFREG { return .notRegularFile }
    if (info.st_mode & 0o077) != 0 { return .accessibleByOthers(mode: info.st_mode) }
    if info.st_uid != owner { return .wrongOwner(owner: info.st_uid, expected: owner) }
    return nil
}
