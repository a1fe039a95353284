import Model
import Synchronization
import Syscalls
import Seal
#if canImport(Glibc)
import Glibc
#endif

/// The encrypted file store: one file, `store.json`, in the state directory.
///
/// Readers take `snapshot` (an immutable value, swapped atomically); writers
/// go through `commit`, one at a time, and a commit returns only after the
/// new file is durable. The in-memory state changes only after the disk has
/// it, so nothing is ever served that a crash could lose.
public final class SecretStore: Sendable {
    public static let fileName = "store.json"

    public let directory: String
    public var path: String { directory + "/" + Self.fileName }

    private let current: Mutex<StoreSnapshot>
    /// Serialises writers and reloads; held across the disk write (readers
    /// never take it).
    private let writer = Mutex<Void>(())
    let authenticator: StoreAuthenticator
    /// The file as cofferd last wrote or read it: a reload that finds the
    /// same file (cofferd's own commit, seen by the watcher) reads nothing.
    private let lastSeen = Mutex<FileIdentity?>(nil)

    struct FileIdentity: Equatable {
        let device: UInt64
        let inode: UInt64
        let size: Int64
        let modified: timespec

        init?(path: String) {
            var info = stat()
            guard lstat(path, &info) == 0 else { return nil }
            self.init(info)
        }

        init(_ info: stat) {
            device = UInt64(info.st_dev)
            inode = UInt64(info.st_ino)
            size = Int64(info.st_size)
            modified = info.st_mtim
        }

        static func == (a: Self, b: Self) -> Bool {
            a.device == b.device && a.inode == b.inode && a.size == b.size
                && a.modified.tv_sec == b.modified.tv_sec && a.modified.tv_nsec == b.modified.tv_nsec
        }
    }

    private func remember(_ info: stat) {
        lastSeen.withLock { $0 = FileIdentity(info) }
    }

    private init(directory: String, snapshot: StoreSnapshot, authenticator: StoreAuthenticator) {
        self.directory = directory
        self.current = Mutex(snapshot)
        self.authenticator = authenticator
    }

    /// Opens the store in `directory`, creating an empty one with a new
    /// random store id if there is none. The file must be 0600 and owned by
    /// the daemon's user, and its MAC must check. A version 1 file (from
    /// before the MAC) is taken once and rewritten as version 2 at once.
    public static func open(directory: String, authenticator: StoreAuthenticator) throws -> SecretStore {
        DurableFile.removeLeftovers(of: fileName, in: directory)
        let path = directory + "/" + fileName
        guard let (bytes, info) = try readStoreFile(path) else {
            let empty = StoreSnapshot(storeID: try SecureRandom.hex(16), generation: 0, secrets: [:])
            let written = try DurableFile.replace(path, in: directory, with: StoreFileFormat(empty, authenticator: authenticator).encoded())
            let store = SecretStore(directory: directory, snapshot: empty, authenticator: authenticator)
            store.remember(written)
            return store
        }
        let (snapshot, version) = try StoreFileFormat.decodeWithVersion(bytes, authenticator: authenticator, acceptUnauthenticated: true)
        let store = SecretStore(directory: directory, snapshot: snapshot, authenticator: authenticator)
        store.remember(info)
        if version != StoreFileFormat.currentVersion {
            store.remember(try DurableFile.replace(path, in: directory, with: StoreFileFormat(snapshot, authenticator: authenticator).encoded()))
        }
        return store
    }

    /// The file's bytes, or nil when there is none; refuses a file that is
    /// not private to the daemon's user.
    static func readStoreFile(_ path: String) throws -> ([UInt8], stat)? {
        let fd: OwnedFileDescriptor
        do {
            fd = try .open(path, O_RDONLY | O_NOFOLLOW | O_NONBLOCK)
        } catch let error as SyscallError where error.errno == ENOENT {
            return nil
        }
        let info = try fd.status()
        guard info.st_mode & S_IFMT == S_IFREG else {
            throw StoreError(.permissions, "refusing the store file \(path): it is not a regular file")
        }
        if let problem = secretFileProblem(info) {
            throw StoreError(.permissions, "refusing the store file \(path): it \(problem)")
        }
        return (try fd.readAll(limit: 1 << 30), info)
    }

    /// The current snapshot as a store file (ciphertext only, with its
    /// MAC): what `export` hands out and another host can load.
    public func exportedFile() throws -> [UInt8] {
        try StoreFileFormat(snapshot, authenticator: authenticator).encoded()
    }

    /// What a reload found.
    public enum ReloadOutcome: Sendable {
        /// The file is the one already loaded (cofferd's own last commit).
        case unchanged
        /// A newer generation was checked and is now served.
        case replaced(old: StoreSnapshot, new: StoreSnapshot)
    }

    /// Reads the file again (it changed on disk: a git pull, a copy from
    /// another host), checks it whole, and swaps it in. Refused, with the
    /// last good snapshot still served: a missing, unreadable or malformed
    /// file; a MAC that does not match; another store's file; a generation
    /// older than the loaded one (rollback) or equal with other content; a
    /// record that does not open (`checkRecord`).
    public func reload(checkRecord: (Secret, SecretVersion, String) throws -> Void) throws(StoreError) -> ReloadOutcome {
        try writer.withLock { (_) throws(StoreError) -> ReloadOutcome in
            let loaded = snapshot
            if let seen = lastSeen.withLock({ $0 }), FileIdentity(path: path) == seen { return .unchanged }
            let bytes: [UInt8]
            let info: stat
            do {
                guard let (read, status) = try Self.readStoreFile(path) else {
                    throw StoreError(.notFound, "the store file \(path) is gone; still serving generation \(loaded.generation)")
                }
                bytes = read
                info = status
            } catch let error as StoreError {
                throw error
            } catch {
                throw StoreError(.io, "cannot read the store file", underlying: "\(error)")
            }
            let next = try StoreFileFormat.decode(bytes, authenticator: authenticator)
            guard next.storeID == loaded.storeID else {
                throw StoreError(.tampered, "the store file belongs to another store (\(next.storeID.prefix(8))…)")
            }
            if next.generation == loaded.generation {
                if next == loaded {
                    remember(info)
                    return .unchanged
                }
                throw StoreError(.tampered, "the store file has generation \(next.generation), as loaded, but other content")
            }
            guard next.generation > loaded.generation else {
                throw StoreError(.tampered, "rollback: the store file has generation \(next.generation), older than the loaded \(loaded.generation)")
            }
            for name in next.sortedNames {
                let secret = next.secrets[name]!
                for version in secret.versions {
                    do {
                        try checkRecord(secret, version, next.storeID)
                    } catch {
                        throw StoreError(.tampered, "\(name) version \(version.version) does not open", underlying: "\(error)")
                    }
                }
            }
            current.withLock { $0 = next }
            remember(info)
            return .replaced(old: loaded, new: next)
        }
    }

    public var snapshot: StoreSnapshot { current.withLock { $0 } }

    /// Applies `change` to a copy of the current secrets, writes the result
    /// durably as the next generation, then publishes it. If `change` throws,
    /// or the write fails, nothing changes.
    public func commit<Result>(
        _ change: (_ storeID: String, _ secrets: inout [SecretName: Secret]) throws -> Result
    ) throws -> Result {
        try writer.withLock { _ in
            let base = snapshot
            var secrets = base.secrets
            let result = try change(base.storeID, &secrets)
            let next = StoreSnapshot(storeID: base.storeID, generation: base.generation + 1, secrets: secrets)
            let written: stat
            do {
                written = try DurableFile.replace(path, in: directory, with: StoreFileFormat(next, authenticator: authenticator).encoded())
            } catch {
                throw StoreError(.io, "could not write the store file", underlying: "\(error)")
            }
            current.withLock { $0 = next }
            remember(written)
            return result
        }
    }
}
