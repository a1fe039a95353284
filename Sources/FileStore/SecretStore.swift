import Keyring
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
        /// Set by the kernel on every change; unlike mtime, no caller can
        /// put it back.
        let changed: timespec

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
            changed = info.st_ctim
        }

        static func == (a: Self, b: Self) -> Bool {
            a.device == b.device && a.inode == b.inode && a.size == b.size
                && a.modified.tv_sec == b.modified.tv_sec && a.modified.tv_nsec == b.modified.tv_nsec
                && a.changed.tv_sec == b.changed.tv_sec && a.changed.tv_nsec == b.changed.tv_nsec
        }
    }

    private func remember(_ info: stat) {
        lastSeen.withLock { $0 = FileIdentity(info) }
    }

    private let highWater: StoreHighWater
    /// The master key id the file on disk is authenticated with: unseal
    /// must bring it back, or the next start could not check the file.
    private let fileKey = Mutex<String?>(nil)
    public var fileKeyID: String? { fileKey.withLock { $0 } }

    /// Writes `snapshot` durably, noting which key authenticated it.
    private func write(_ snapshot: StoreSnapshot) throws -> stat {
        let file = try StoreFileFormat(snapshot, authenticator: authenticator)
        do {
            let written = try DurableFile.replace(path, in: directory, with: file.encoded())
            fileKey.withLock { $0 = file.macKeyID }
            return written
        } catch let partly as DurableFile.RenamedButNotSynced {
            fileKey.withLock { $0 = file.macKeyID }
            throw partly
        }
    }

    private init(directory: String, snapshot: StoreSnapshot, authenticator: StoreAuthenticator, highWater: StoreHighWater) {
        self.directory = directory
        self.current = Mutex(snapshot)
        self.authenticator = authenticator
        self.highWater = highWater
    }

    /// Opens the store in `directory`. The file must be 0600 and owned by
    /// the daemon's user, its MAC must check, and it must not be older than
    /// (or another store than) the last one this directory served
    /// (`store-generation`, below): a restart cannot be used to roll back.
    /// A missing file is a new, empty store only when the directory has
    /// never served one.
    ///
    /// A version 1 file (from before the MAC) is refused unless
    /// `migrateVersion1` (`cofferd --migrate-store-v1`): then every record
    /// must open and the file is rewritten as version 2.
    public static func open(
        directory: String, authenticator: StoreAuthenticator, migrateVersion1: Bool = false
    ) throws -> SecretStore {
        DurableFile.removeLeftovers(of: fileName, in: directory)
        let path = directory + "/" + fileName
        let highWater = try StoreHighWater(directory: directory)
        guard let (bytes, info) = try readStoreFile(path) else {
            if let last = highWater.last {
                throw StoreError(.notFound, """
                    the store file \(path) is missing, but this directory served store \(last.storeID) generation \(last.generation): \
                    restore it (docs/operations.md) rather than start empty
                    """)
            }
            let empty = StoreSnapshot(storeID: try SecureRandom.hex(16), generation: 0, secrets: [:])
            let store = SecretStore(directory: directory, snapshot: empty, authenticator: authenticator, highWater: highWater)
            store.remember(try store.write(empty))
            try highWater.record(empty)
            return store
        }
        let (snapshot, version, fileKeyID) = try StoreFileFormat.decodeWithVersion(bytes, authenticator: authenticator, acceptUnauthenticated: migrateVersion1)
        if let last = highWater.last {
            guard snapshot.storeID == last.storeID else {
                throw StoreError(.tampered, "the store file belongs to store \(snapshot.storeID.prefix(8))…, but this directory served \(last.storeID.prefix(8))…")
            }
            guard snapshot.generation >= last.generation else {
                throw StoreError(.tampered, "rollback: the store file has generation \(snapshot.generation), older than the \(last.generation) this directory served")
            }
        }
        let store = SecretStore(directory: directory, snapshot: snapshot, authenticator: authenticator, highWater: highWater)
        store.remember(info)
        store.fileKey.withLock { $0 = fileKeyID }
        if version != StoreFileFormat.currentVersion {
            try authenticator.checkEveryRecord(of: snapshot)
            store.remember(try store.write(snapshot))
        }
        try highWater.record(snapshot)
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

    /// `snapshot` (by default the current one) as a store file (ciphertext
    /// only, with its MAC): what `export` hands out and another host can
    /// load.
    public func exportedFile(of snapshot: StoreSnapshot? = nil) throws -> [UInt8] {
        // Authenticated by the current key, like the next commit would be.
        try StoreFileFormat(snapshot ?? self.snapshot, authenticator: authenticator).encoded()
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
    /// record that does not open.
    public func reload() throws(StoreError) -> ReloadOutcome {
        try writer.withLock { (_) throws(StoreError) -> ReloadOutcome in
            let loaded = snapshot
            guard !authenticator.isSealed else {
                throw StoreError(.sealed, "cofferd is sealed: the store file is read again at unseal")
            }
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
            let (next, _, nextKeyID) = try StoreFileFormat.decodeWithVersion(bytes, authenticator: authenticator)
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
            try authenticator.checkEveryRecord(of: next, besides: loaded)
            serve(next, origin: .file)
            remember(info)
            fileKey.withLock { $0 = nextKeyID }
            do { try highWater.record(next) } catch {
                throw StoreError(.io, "could not record the store's generation", underlying: "\(error)")
            }
            return .replaced(old: loaded, new: next)
        }
    }

    public var snapshot: StoreSnapshot { current.withLock { $0 } }

    /// Every master key id the store needs: the ones its records are sealed
    /// under, and the one its file's MAC is made with. Startup, unseal and
    /// master-key rotation all ask this before keeping or dropping keys.
    public var neededKeyIDs: Set<KeyID> {
        var needed = Set(snapshot.secrets.flatMap { $0.versions.map(\.sealed.keyID) })
        if let fileKey = fileKeyID.flatMap(KeyID.init(hex:)) { needed.insert(fileKey) }
        return needed
    }

    /// Runs `body` while no commit, reload or restore runs (seal wipes the
    /// keys under it, so no commit seals with a key being wiped).
    public func whileNoCommitRuns<R>(_ body: () throws -> R) rethrows -> R {
        try writer.withLock { _ in try body() }
    }

    /// Whether local commits queue what they change in the outbox (set
    /// when a replica, the PostgreSQL mirror, is configured).
    private let queueing = Mutex(false)
    public var keepsOutbox: Bool {
        get { queueing.withLock { $0 } }
        set { queueing.withLock { $0 = newValue } }
    }

    /// Applies `change` to a copy of the current secrets, writes the result
    /// durably as the next generation, then publishes it. If `change` throws,
    /// or the write fails, nothing changes. With `keepsOutbox`, every name
    /// the change touched enters the outbox in the same write.
    public func commit<Result>(
        _ change: (_ storeID: String, _ secrets: inout EditedSecrets) throws -> Result
    ) throws -> Result {
        try commitWhole(.local) { base, secrets, outbox in
            let result = try change(base.storeID, &secrets)
            if keepsOutbox {
                let queued = OutboxEntry(generation: base.generation + 1, queuedAt: Int64(time(nil)))
                for name in secrets.changedNames { outbox[name] = queued }
            }
            return result
        }
    }

    /// A commit of changes taken from elsewhere (another host's, by the
    /// replica that carries them). Nothing is queued for it: `change` sees
    /// and decides the outbox itself (a merge of theirs with ours is
    /// queued; theirs alone is not), under the writer lock, so no local
    /// commit can fall between what it read and what it writes.
    public func commitTaken<Result>(
        _ change: (_ base: StoreSnapshot, _ secrets: inout EditedSecrets, _ outbox: inout [SecretName: OutboxEntry]) throws -> Result
    ) throws -> Result {
        try commitWhole(.taken, change)
    }

    /// Drops outbox entries a replica confirmed, as of the generations it
    /// confirmed them at: entries queued again since (a later generation)
    /// stay.
    public func dropFromOutbox(_ confirmed: [SecretName: UInt64]) throws {
        try commitWhole(.outbox) { _, _, outbox in
            for (name, generation) in confirmed where outbox[name].map({ $0.generation <= generation }) == true {
                outbox[name] = nil
            }
        }
    }

    /// Queues every secret (a replica's first sync into an empty database).
    public func queueEverything() throws {
        try commitWhole(.outbox) { base, secrets, outbox in
            let queued = OutboxEntry(generation: base.generation + 1, queuedAt: Int64(time(nil)))
            // Every name, also one whose entry was confirmed (it may linger,
            // settled, until the replica drops it): that database lacks
            // them all.
            for name in secrets.base.names { outbox[name] = queued }
        }
    }

    /// Replaces an empty store with `secrets` of store `storeID` (restore
    /// from a replica): refused when this store holds any secret.
    public func restore(storeID: String, secrets: [SecretName: Secret]) throws {
        try writer.withLock { _ in
            let base = snapshot
            // Unpushed deletions count as content: restoring over them
            // would bring the deleted secrets back.
            guard base.secrets.isEmpty, base.outbox.isEmpty else {
                throw StoreError(.tampered, "restore needs an empty store; this one holds \(base.secrets.count) secrets and \(base.outbox.count) unmirrored changes")
            }
            try publish(StoreSnapshot(storeID: storeID, generation: base.generation + 1, secrets: secrets), origin: .taken)
        }
    }

    // MARK: Publishing commits

    private let observers = Mutex<[@Sendable (StoreCommit) -> Void]>([])

    /// Calls `observer` with every snapshot the store serves from now on,
    /// in order. It runs under the writer lock, so it must be quick and
    /// must not commit: wake a thread, queue an event.
    public func onCommit(_ observer: @escaping @Sendable (StoreCommit) -> Void) {
        observers.withLock { $0.append(observer) }
    }

    private func commitWhole<Result>(
        _ origin: StoreCommit.Origin, _ change: (_ base: StoreSnapshot, _ secrets: inout EditedSecrets, _ outbox: inout [SecretName: OutboxEntry]) throws -> Result
    ) throws -> Result {
        try writer.withLock { _ in
            guard !authenticator.isSealed else { throw KeyringError(.sealed, "the keyring is sealed") }
            let base = snapshot
            var secrets = EditedSecrets(base.secrets)
            var outbox = base.outbox
            let result = try change(base, &secrets, &outbox)
            let next = secrets.changes.isEmpty ? base.secrets : base.secrets.applying(secrets)
            try publish(StoreSnapshot(storeID: base.storeID, generation: base.generation + 1, secrets: next, outbox: outbox), origin: origin)
            return result
        }
    }

    /// Swaps `next` in and tells the observers; the old snapshot is then
    /// freed outside the lock and off the readers' threads
    /// (SnapshotRetirement). Call with the writer lock held.
    private func serve(_ next: StoreSnapshot, origin: StoreCommit.Origin) {
        let old = current.withLock { served -> StoreSnapshot in
            let old = served
            served = next
            return old
        }
        let commit = StoreCommit(old: old, new: next, origin: origin)
        for observer in observers.withLock({ $0 }) { observer(commit) }
        SnapshotRetirement.retire(old)
    }

    /// Writes `next` durably, then serves it. Call with the writer lock held.
    private func publish(_ next: StoreSnapshot, origin: StoreCommit.Origin) throws {
        let written: stat
        do {
            written = try write(next)
        } catch let partly as DurableFile.RenamedButNotSynced {
            // Serve what is on disk (the watcher would take it anyway),
            // but do not call it durable.
            serve(next, origin: origin)
            remember(partly.written)
            try? highWater.record(next)
            throw StoreError(.io, "the write is in place but the directory could not be synced; it may not survive a power loss",
                             underlying: "\(partly.underlying)")
        } catch {
            throw StoreError(.io, "could not write the store file", underlying: "\(error)")
        }
        serve(next, origin: origin)
        remember(written)
        try highWater.record(next)
    }
}
