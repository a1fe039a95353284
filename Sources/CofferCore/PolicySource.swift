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

    /// Whether the policy file is there (a missing one grants nothing).
    public var fileIsMissing: Bool {
        guard let path else { return false }
        var info = stat()
        return lstat(path, &info) != 0 && errno == ENOENT
    }

    /// Reads and parses the file. A missing file is an empty policy (default
    /// deny); an unreadable, unsafe or broken one is an error naming the
    /// problem (and, when it is a line, the line).
    public func load() throws(CofferError) -> AccessPolicy {
        guard let path else { return base }
        let bytes: [UInt8]
        do {
            // O_NONBLOCK: a FIFO put in its place must not hang the reload.
            let fd = try OwnedFileDescriptor.open(path, O_RDONLY | O_NOFOLLOW | O_NONBLOCK)
            let info = try fd.status()
            guard info.st_mode & S_IFMT == S_IFREG else {
                throw CofferError(.conflict, "policy file \(path) is not a regular file")
            }
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
        return lookUp { buffer, result in
            var found: UnsafeMutablePointer<passwd>?
            let rc = getpwnam_r(name, &entry, buffer.baseAddress!, buffer.count, &found)
            result = found == nil ? nil : entry.pw_uid
            return rc
        }
    }

    public func groupID(named name: String) -> UInt32? {
        var entry = group()
        return lookUp { buffer, result in
            var found: UnsafeMutablePointer<group>?
            let rc = getgrnam_r(name, &entry, buffer.baseAddress!, buffer.count, &found)
            result = found == nil ? nil : entry.gr_gid
            return rc
        }
    }

    /// Calls a *_r lookup with a growing buffer: ERANGE means "larger
    /// buffer", not "no such name" (a group with many members needs one).
    private func lookUp(_ call: (UnsafeMutableBufferPointer<CChar>, inout UInt32?) -> Int32) -> UInt32? {
        var size = 16 * 1024
        while size <= 16 * 1024 * 1024 {
            var buffer = [CChar](repeating: 0, count: size)
            var result: UInt32?
            let rc = buffer.withUnsafeMutableBufferPointer { call($0, &result) }
            if rc == ERANGE { size *= 4; continue }
            return rc == 0 ? result : nil
        }
        return nil
    }
}
