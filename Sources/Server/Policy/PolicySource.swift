import Model
import Syscalls
#if canImport(Glibc)
import Glibc
#endif

/// Where the policy comes from: the superusers cofferd always has (root,
/// its own user, dev mode's invoking user) plus the policy file, read again
/// on SIGHUP and on the admin `reload`.
public struct PolicySource: Sendable {
    public let base: AccessPolicy
    /// nil: no policy file (only the superusers have access).
    public let path: String?

    public init(base: AccessPolicy, path: String?) {
        self.base = base
        self.path = path
    }

    /// Reads and parses the file. A missing file is an empty policy (default
    /// deny); an unreadable, unsafe or broken one is an error naming the
    /// problem (and, when it is a line, the line).
    public func load() throws(CofferError) -> AccessPolicy {
        guard let path else { return base }
        let bytes: [UInt8]
        do {
            let fd = try OwnedFileDescriptor.open(path, O_RDONLY | O_NOFOLLOW)
            let info = try fd.status()
            // Whoever can write the policy can grant themselves every secret.
            if info.st_uid != 0 && info.st_uid != geteuid() {
                throw CofferError(.conflict, "policy file \(path) must be owned by root or cofferd's user (uid \(geteuid()))")
            }
            if info.st_mode & (S_IWGRP | S_IWOTH) != 0 {
                throw CofferError(.conflict, "policy file \(path) is writable by its group or others; chmod go-w it")
            }
            bytes = try fd.readAll(limit: 1 << 20)
        } catch let error as SyscallError where error.errno == ENOENT {
            return base
        } catch let error as CofferError {
            throw error
        } catch {
            throw CofferError(.conflict, "cannot read policy file \(path): \(error)")
        }
        guard let text = String(validating: bytes, as: UTF8.self) else {
            throw CofferError(.conflict, "policy file \(path) is not UTF-8")
        }
        do {
            return base.with(try PolicyFile.parse(text, directory: SystemAccounts()))
        } catch {
            throw CofferError(.conflict, "policy file \(path) \(error.description)")
        }
    }
}

/// User and group names from the system's databases (getpwnam_r(3),
/// getgrnam_r(3)): thread-safe, unlike getpwnam.
public struct SystemAccounts: AccountDirectory {
    public init() {}

    public func userID(named name: String) -> UInt32? {
        var entry = passwd()
        var result: UnsafeMutablePointer<passwd>?
        var buffer = [CChar](repeating: 0, count: 16 * 1024)
        let rc = getpwnam_r(name, &entry, &buffer, buffer.count, &result)
        return rc == 0 && result != nil ? entry.pw_uid : nil
    }

    public func groupID(named name: String) -> UInt32? {
        var entry = group()
        var result: UnsafeMutablePointer<group>?
        var buffer = [CChar](repeating: 0, count: 64 * 1024)
        let rc = getgrnam_r(name, &entry, &buffer, buffer.count, &result)
        return rc == 0 && result != nil ? entry.gr_gid : nil
    }
}
