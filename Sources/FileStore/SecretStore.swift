import Foundation
import Keyring
import Model
import Synchronization
import Syscalls
import Seal
#if canImport(Glibc)
import Glibc
#endif

/// The encrypted file store: a snapshot, `store.json`, and a log of the
/// commits since, `store.log`, in the state directory (docs/file-format.md).
///
/// Readers take `snapshot` (an immutable value, swapped atomically). A
/// commit is staged, in order, onto the latest staged state; the store's
/// syncer thread appends every commit staged meanwhile to the log in one
/// write and one sync (group commit), records the generation, then serves
/// each commit's snapshot in order and answers it. Nothing is served that
/// a crash could lose. From time to time, off the write path, the served
/// snapshot is written whole to `store.json` and the log starts again
/// after it (compaction).
public final class SecretStore: Sendable {
    public static let fileName = "store.json"
    public static let logFileName = StoreLogFile.fileName

    public let directory: String
    public var path: String { directory + "/" + Self.fileName }

    /// What readers see: the newest durable state.
    private let current: Mutex<StoreSnapshot>
    /// The staged state and the commits waiting for the syncer.
    private let pipeline: ConditionMutex<Pipeline>
    /// The open log. The syncer uses it while `pipeline.syncing`; anything
    /// else only inside `exclusively` (no commit staged or syncing).
    private let log: Mutex<LogState>
    let authenticator: StoreAuthenticator
    /// The file as cofferd last wrote or read it: a reload that finds the
    /// same file (cofferd's own compaction, seen by the watcher) reads nothing.
    private let lastSeen = Mutex<FileIdentity?>(nil)

    struct Pipeline {
        /// The state after every staged commit: the next one builds on it.
        var tip: StoreSnapshot
        var queue: [StagedCommit] = []
        /// The syncer holds a batch.
        var syncing = false
        var stopping = false
        var compacting = false
        /// A whole commit's file is being written (`commitWhole`): commits
        /// staged meanwhile build on it and wait in the queue for the log
        /// that follows it.
        var installing = false

        /// The queued commits, now the syncer's (none while a whole commit
        /// is being written).
        mutating func takeBatch() -> [StagedCommit] {
            guard !installing else { return [] }
            defer { queue = [] }
            syncing = !queue.isEmpty
            return queue
        }
    }

    struct StagedCommit {
        let snapshot: StoreSnapshot
        let origin: StoreCommit.Origin
        let payload: [UInt8]
        let ticket: CommitTicket
    }

    /// The log and what compaction weighs it against.
    struct LogState {
        var file: StoreLogFile
        /// The size of `store.json` as last written or read.
        var snapshotBytes: Int
    }

    /// store-generation written since its last sync, and when that was
    /// (`persist` puts the sync off under load).
    private let highWaterSync = Mutex<(unsynced: Bool, syncedAt: ContinuousClock.Instant)>((false, .now))
    /// The files on disk may not keep what the log appends: a directory
    /// sync after cofferd renamed a store file or log into place failed
    /// (or the one at open), so the renames may not survive a power loss;
    /// or the log was replaced or removed outside cofferd, so its appends
    /// go to a file no start reads. A later sync that succeeds proves
    /// nothing (after a failed fsync Linux may have dropped the dirty state
    /// it could not write, fsync(2) "ERRORS"): only files renamed into
    /// place again and a directory sync after them do. Set by exclusive
    /// operations and at open; while set, the syncer answers every batch
    /// with an error (the commits are written and served), records no
    /// generation, and has the store compacted, whose switch clears it.
    private let filesInDoubt = Atomic<Bool>(false)
    /// Called before every sync of the store's directory: tests make it
    /// throw, as a failing disk would.
    let beforeDirectorySync = Mutex<(@Sendable () throws -> Void)?>(nil)
    /// Whether commits wait for the files to be put in place again (tests).
    var filesAreInDoubt: Bool { filesInDoubt.load(ordering: .acquiring) }
    /// Commits wait on a store file on disk that cofferd has neither taken
    /// nor refused (a reload could not read it, or could not start its
    /// log): no compaction writes over it, so only another reload clears
    /// the doubt. The watcher tries again while this holds.
    public var waitsOnAStoreFile: Bool { filesAreInDoubt && !storeFileIsAsLastSeen }
    /// Whether a compaction the syncer started is running (tests).
    var isCompacting: Bool { pipeline.withLock { $0.compacting } }
    /// The directory's fsync, through `beforeDirectorySync`.
    private var syncDirectory: @Sendable (String) throws -> Void {
        let before = beforeDirectorySync.withLock { $0 }
        return { directory in
            try before?()
            try DurableFile.syncDirectory(directory)
        }
    }

    /// Exclusive operations waiting or running: new commits wait for them,
    /// so they are not starved. Changed under the pipeline's lock (a stager
    /// waiting on its condition re-checks once it falls to zero), and read
    /// without it by `stagePromptly`.
    private let exclusiveOperations = Atomic<Int>(0)

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

        /// The same file, unchanged, though renamed since (a rename sets
        /// the ctime of the file it moves).
        func isMoved(_ other: Self) -> Bool {
            device == other.device && inode == other.inode && size == other.size
                && modified.tv_sec == other.modified.tv_sec && modified.tv_nsec == other.modified.tv_nsec
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

    private init(directory: String, snapshot: StoreSnapshot, log: LogState, authenticator: StoreAuthenticator,
                 highWater: StoreHighWater) {
        self.directory = directory
        self.current = Mutex(snapshot)
        self.pipeline = ConditionMutex(Pipeline(tip: snapshot))
        self.log = Mutex(log)
        self.authenticator = authenticator
        self.highWater = highWater
    }

    deinit {
        pipeline.withLock { $0.stopping = true }
        // A sync of store-generation put off under load is not left to
        // the page cache when the store goes.
        if highWaterUnsynced { try? highWater.sync() }
    }

    // MARK: Opening

    /// Opens the store in `directory`: `store.json`, then the commits
    /// `store.log` holds after it. Both must be 0600 and owned by the
    /// daemon's user; the file's MAC and the log's chain must check; and
    /// the result must not be older than (or another store than) the last
    /// state this directory served (`store-generation`): a restart cannot
    /// be used to roll back. A missing file is a new, empty store only
    /// when the directory has never served one.
    ///
    /// A version 1 file (from before the MAC) is refused unless
    /// `migrateVersion1` (`cofferd --migrate-store-v1`): then every record
    /// must open and the file is rewritten as version 2.
    public static func open(
        directory: String, authenticator: StoreAuthenticator, migrateVersion1: Bool = false
    ) throws -> SecretStore {
        try open(directory: directory, authenticator: authenticator, migrateVersion1: migrateVersion1, beforeDirectorySync: nil)
    }

    /// `open`, with `beforeDirectorySync` in place before the store's
    /// first directory sync (tests).
    static func open(
        directory: String, authenticator: StoreAuthenticator, migrateVersion1: Bool = false,
        beforeDirectorySync: (@Sendable () throws -> Void)?
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
            return try openRewritten(empty, in: directory, authenticator: authenticator, highWater: highWater,
                                     beforeDirectorySync: beforeDirectorySync)
        }
        let (base, version, fileKeyID, fileMAC) = try StoreFileFormat.decodeWithVersion(
            bytes, authenticator: authenticator, acceptUnauthenticated: migrateVersion1)
        if version != StoreFileFormat.currentVersion {
            // store-generation came after the MAC: a directory that has one
            // served authenticated files, and a file without a MAC in it
            // was put there since. Migrating it would serve whatever its
            // writer chose (records copied from any backup still open).
            if let last = highWater.last {
                throw StoreError(.tampered, """
                    the store file has no MAC (format version 1), but this directory served authenticated store \
                    \(last.storeID.prefix(8))… generation \(last.generation): it was put there since, and is not migrated
                    """)
            }
            try authenticator.checkEveryRecord(of: base)
            try checkNotRolledBack(base, against: highWater)
            return try openRewritten(base, in: directory, authenticator: authenticator, highWater: highWater,
                                     beforeDirectorySync: beforeDirectorySync)
        }
        let (snapshot, log) = try continueFromLog(base, fileMAC: fileMAC!, fileBytes: bytes.count, in: directory,
                                                  authenticator: authenticator, highWater: highWater)
        let store = SecretStore(directory: directory, snapshot: snapshot, log: log, authenticator: authenticator,
                                highWater: highWater)
        store.beforeDirectorySync.withLock { $0 = beforeDirectorySync }
        store.finishOpening(fileInfo: info, fileKeyID: fileKeyID)
        if !store.filesAreInDoubt { try highWater.record(snapshot) }
        return store
    }

    /// A store serving `snapshot`, written first as a new store file and an
    /// empty log (a new store; a version 1 file migrated).
    private static func openRewritten(
        _ snapshot: StoreSnapshot, in directory: String, authenticator: StoreAuthenticator, highWater: StoreHighWater,
        beforeDirectorySync: (@Sendable () throws -> Void)?
    ) throws -> SecretStore {
        let written = try rewrite(snapshot, in: directory, authenticator: authenticator)
        if let problem = written.problem { throw problem }
        let store = SecretStore(directory: directory, snapshot: snapshot, log: written.log, authenticator: authenticator,
                                highWater: highWater)
        store.beforeDirectorySync.withLock { $0 = beforeDirectorySync }
        store.finishOpening(fileInfo: written.info, fileKeyID: written.keyID)
        if !store.filesAreInDoubt { try highWater.record(snapshot) }
        return store
    }

    private func finishOpening(fileInfo: stat, fileKeyID: String?) {
        remember(fileInfo)
        fileKey.withLock { $0 = fileKeyID }
        // The files may be as a run that died before its directory sync
        // left them: nothing is answered as durable until one goes through.
        if (try? syncDirectory(directory)) == nil { filesInDoubt.store(true, ordering: .releasing) }
        startSyncer()
    }

    /// Refuses `state` when it is older than what this directory served, or
    /// another store's. A restore a crash interrupted recorded what it was
    /// putting in place (`StoreHighWater.pending`): that state is accepted
    /// too.
    private static func checkNotRolledBack(_ state: StoreSnapshot, against highWater: StoreHighWater, dropped: Int = 0) throws {
        guard let last = highWater.last else { return }
        // A pending line a crash left behind a later record names nothing
        // newer than that record: ignored then.
        if let pending = highWater.pending, pending.storeID != last.storeID || pending.generation > last.generation,
           state.storeID == pending.storeID, state.generation >= pending.generation { return }
        guard state.storeID == last.storeID else {
            throw StoreError(.tampered, "the store file belongs to store \(state.storeID.prefix(8))…, but this directory served \(last.storeID.prefix(8))…")
        }
        guard state.generation >= last.generation else {
            let tail = dropped > 0
                ? " (the store log's last \(dropped) bytes do not check: an entry was changed, removed or moved)" : ""
            throw StoreError(.tampered, "rollback: the store file and its log reach generation \(state.generation), older than the \(last.generation) this directory served\(tail)")
        }
    }

    /// `base` (store.json) with the commits of the log that continues it.
    /// A log left by a compaction a crash interrupted (`store.log.next`,
    /// synced, continuing this very file) is put in place first. A log of
    /// an older snapshot (the file was replaced by a newer one while
    /// cofferd was stopped) is set aside for a new one; a log continuing
    /// a newer snapshot than this file means the file was rolled back.
    private static func continueFromLog(
        _ base: StoreSnapshot, fileMAC: [UInt8], fileBytes: Int, in directory: String, authenticator: StoreAuthenticator,
        highWater: StoreHighWater
    ) throws -> (StoreSnapshot, LogState) {
        let header = StoreLogFormat.Header(storeID: base.storeID, baseGeneration: base.generation, baseMAC: fileMAC,
                                           macKeyID: "")
        func continues(_ found: StoreLogFormat.Header) -> Bool {
            found.storeID == header.storeID && found.baseGeneration == header.baseGeneration
                && ConstantTime.equals(found.baseMAC, header.baseMAC)
        }
        let keyFor = { (id: String) in authenticator.mac(forKeyID: id, for: .storeLog) }
        let nextPath = directory + "/" + StoreLogFile.nextFileName
        // Deleted only when it is known not to continue this file: one that
        // cannot be read now (I/O, permissions, a key not loaded) may be the
        // only copy of a compaction's carried commits, so the start stops.
        let next: StoreLogFile.Recovered?
        switch Result(catching: { () throws(StoreError) in
            try StoreLogFile.open(in: directory, fileName: StoreLogFile.nextFileName, keyFor: keyFor)
        }) {
        case .success(let opened):
            next = opened
        case .failure(let error):
            // Known not to be a whole, authentic log: dropped below.
            guard error.code == .corrupt || error.code == .tampered else { throw error }
            next = nil
        }
        if let next, continues(next.log.header) {
            try syscall("rename") { rename(nextPath, directory + "/" + StoreLogFile.fileName) }
            try DurableFile.syncDirectory(directory)
        } else {
            unlink(nextPath)
        }
        // A new log continuing this file, with `carried` after its header,
        // put in place.
        func startLog(carrying carried: [[UInt8]] = []) throws -> LogState {
            let log = try newLog(for: base, fileMAC: fileMAC, carrying: carried, in: directory, authenticator: authenticator)
            try log.install(in: directory)
            try DurableFile.syncDirectory(directory)
            return LogState(file: log, snapshotBytes: fileBytes)
        }
        let opened = try StoreLogFile.open(in: directory, keyFor: keyFor)
        guard let recovered = opened, continues(recovered.log.header) else {
            if let found = opened?.log.header, found.storeID == base.storeID, found.baseGeneration > base.generation {
                throw StoreError(.tampered, "rollback: the store log continues generation \(found.baseGeneration) of the store file, but the store file holds generation \(base.generation) (an older copy was put in its place)")
            }
            // A log of this store that reaches past this file holds commits
            // the file does not: the file is older than what was served.
            if let found = opened, found.log.header.storeID == base.storeID, found.log.lastGeneration > base.generation {
                throw StoreError(.tampered, "rollback: the store log holds commits up to generation \(found.log.lastGeneration), newer than the store file's \(base.generation); to go back on purpose, remove store.log and store-generation too")
            }
            // No log (a store from before the log), or one of an older
            // snapshot: a new one starts from this file.
            try checkNotRolledBack(base, against: highWater)
            return (base, try startLog())
        }
        var changes: [SecretName: Secret?] = [:]
        var outbox = base.outbox
        for entry in recovered.entries {
            for secret in entry.secrets { changes[secret.name] = .some(secret) }
            for patch in entry.patched {
                let name = try SecretName(patch.name)
                changes[name] = .some(try patch.applied(to: changes[name] ?? base.secrets[name], named: name))
            }
            for name in entry.removed { changes[name] = .some(nil) }
            var outboxChanges: [SecretName: OutboxEntry?] = entry.outbox.mapValues { $0 }
            for name in entry.outboxRemoved { outboxChanges[name] = .some(nil) }
            outbox.update(outboxChanges)
        }
        let state = StoreSnapshot(storeID: base.storeID, generation: recovered.log.lastGeneration,
                                  secrets: base.secrets.applying(changes).packed(), outbox: outbox)
        try checkNotRolledBack(state, against: highWater, dropped: recovered.droppedTail)
        if recovered.droppedTail > 0 { try recovered.log.dropTail() }
        guard recovered.log.header.formatVersion == StoreLogFormat.currentVersion else {
            // A log of an earlier format (version 1: whole secrets only) is
            // written again as the current one, carrying its commits (valid
            // in both), so that this cofferd's patches go into a log whose
            // header allows them.
            guard let key = keyFor(recovered.log.header.macKeyID) else {
                throw StoreError(.notFound, "the store log's key is not held")
            }
            return (state, try startLog(carrying: recovered.log.payloads(after: base.generation, key: key)))
        }
        return (state, LogState(file: recovered.log, snapshotBytes: fileBytes))
    }

    /// A new, empty log continuing the snapshot whose file has `fileMAC`,
    /// chained under the keyring's current key, prepared as store.log.next.
    private static func newLog(
        for snapshot: StoreSnapshot, fileMAC: [UInt8], carrying payloads: [[UInt8]] = [], in directory: String,
        authenticator: StoreAuthenticator
    ) throws -> StoreLogFile {
        let keyID = try authenticator.currentKeyID()
        guard let key = authenticator.mac(forKeyID: keyID, for: .storeLog) else {
            throw StoreError(.io, "the store log's key could not be derived")
        }
        let header = StoreLogFormat.Header(storeID: snapshot.storeID, baseGeneration: snapshot.generation, baseMAC: fileMAC,
                                           macKeyID: keyID)
        return try StoreLogFile.prepare(in: directory, header: header, carrying: payloads, key: key)
    }

    /// Writes `snapshot` whole as store.json and an empty log after it,
    /// both durable. Crash-safe in either order of what survives: a new
    /// file with the old log is a log of an older snapshot, set aside at
    /// the next open. Once the file is renamed into place, only the new log
    /// continues it: the caller adopts `log` even when `problem` says a
    /// later step failed.
    private static func rewrite(
        _ snapshot: StoreSnapshot, in directory: String, authenticator: StoreAuthenticator, replacing: Replacing = .anything,
        syncDirectory: (String) throws -> Void = DurableFile.syncDirectory
    ) throws -> (log: LogState, info: stat, keyID: String, problem: (any Error)?) {
        let prepared = try prepareFiles(for: snapshot, in: directory, authenticator: authenticator)
        let (installed, problem) = try switchFiles(prepared.temp, written: prepared.written, log: prepared.log.file, in: directory,
                                                   replacing: replacing, syncDirectory: syncDirectory)
        return (prepared.log, installed, prepared.keyID, problem)
    }

    /// `snapshot` written whole to a synced temp file beside store.json,
    /// and its empty log to store.log.next: what `switchFiles` puts in
    /// place.
    private static func prepareFiles(
        for snapshot: StoreSnapshot, in directory: String, authenticator: StoreAuthenticator
    ) throws -> (temp: String, written: stat, log: LogState, keyID: String) {
        let file = try StoreFileFormat(snapshot, authenticator: authenticator)
        let bytes = try file.encoded()
        let (temp, written) = try DurableFile.writeTemporary(for: directory + "/" + fileName, bytes)
        do {
            let log = try newLog(for: snapshot, fileMAC: Hex.decode(file.mac!)!, in: directory, authenticator: authenticator)
            return (temp, written, LogState(file: log, snapshotBytes: bytes.count), file.macKeyID!)
        } catch {
            unlink(temp)
            throw error
        }
    }

    /// What a new store file may be renamed over.
    enum Replacing {
        /// Whatever is there (a new store; a migration at open).
        case anything
        /// Only the file cofferd last wrote or read, or refused: checked
        /// with the rename, in one step, so that a file dropped in since is
        /// never renamed over.
        case only(FileIdentity)
        /// No file: one created since cofferd found none is kept.
        case nothing

        /// What cofferd saw at `path` last: that file, or none.
        init(_ seen: FileIdentity?) {
            self = seen.map { .only($0) } ?? .nothing
        }
    }

    /// Renames a synced store file and its prepared log into place, then
    /// syncs the directory. Throws only when the file could not be renamed
    /// (nothing changed); a failure after that is returned: the new file is
    /// in place, and the prepared log (as store.log.next or store.log) is
    /// the one that continues it, at the next open too. With anything but
    /// `.anything`, a file dropped in meanwhile is left in place, and
    /// `DurableFile.ReplacedMeanwhile` thrown.
    private static func switchFiles(
        _ temp: String, written: stat, log: StoreLogFile, in directory: String, replacing: Replacing,
        syncDirectory: (String) throws -> Void
    ) throws -> (installed: stat, problem: (any Error)?) {
        var problem: (any Error)?
        let path = directory + "/" + fileName
        do {
            switch replacing {
            case .anything:
                try DurableFile.install(temp, over: path, in: directory, written: written, syncDirectory: syncDirectory)
            case .only(let expected):
                try DurableFile.install(temp, over: path, in: directory, written: written,
                                        onlyOver: { FileIdentity($0).isMoved(expected) }, syncDirectory: syncDirectory)
            case .nothing:
                try DurableFile.installIfAbsent(temp, at: path, in: directory, written: written, syncDirectory: syncDirectory)
            }
        } catch let partly as DurableFile.RenamedButNotSynced {
            problem = partly.underlying
        } catch {
            unlink(directory + "/" + StoreLogFile.nextFileName)
            throw error
        }
        // The rename sets the file's ctime: its identity as the watcher will
        // find it is taken now (the same inode, or the one written).
        var installed = stat()
        if lstat(path, &installed) != 0 || installed.st_ino != written.st_ino { installed = written }
        do {
            try log.install(in: directory)
            try syncDirectory(directory)
        } catch {
            problem = problem ?? error
        }
        return (installed, problem)
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
        let bytes = try fd.readAll(limit: 1 << 30)
        // A file put in place by a copy or `git pull` may not be on disk
        // yet; a new log is about to be built on it.
        try fd.fsync()
        return (bytes, info)
    }

    /// `snapshot` (by default the current one) as a store file (ciphertext
    /// only, with its MAC): what `export` hands out and another host can
    /// load.
    public func exportedFile(of snapshot: StoreSnapshot? = nil) throws -> [UInt8] {
        // Authenticated by the current key, like the next compaction.
        try StoreFileFormat(snapshot ?? self.snapshot, authenticator: authenticator).encoded()
    }

    public var snapshot: StoreSnapshot { current.withLock { $0 } }

    /// How many syncs the current log took (each a group of commits).
    var logSyncs: Int { log.withLock { $0.file.syncs } }
    /// How many times the syncer synced store-generation (at once, or put
    /// off); reloads and restores sync their own writes as they make them.
    var highWaterSyncs: Int { highWater.syncCount }
    /// Where the log's frames end (zeros follow, to the file's end).
    var logEnd: Int { log.withLock { $0.file.end } }

    /// Called by the syncer before it writes a batch: tests stand in a slow
    /// disk with it.
    let beforeSync = Mutex<(@Sendable () -> Void)?>(nil)
    /// Called by `commitWhole` once its change is applied, before the file
    /// is written: tests make commits then.
    let beforeWholeWrite = Mutex<(@Sendable () -> Void)?>(nil)
    /// Called by a compaction and a whole commit after their last check of
    /// the files on disk, just before the rename, and by a repair before it
    /// writes: tests drop a file in then.
    let beforeSwitch = Mutex<(@Sendable () -> Void)?>(nil)

    /// Every master key id the store needs: the ones its records are sealed
    /// under, the one its file's MAC is made with, and the one its log is
    /// chained under. Startup, unseal and master-key rotation all ask this
    /// before keeping or dropping keys.
    public var neededKeyIDs: Set<KeyID> {
        var needed = Set(snapshot.secrets.flatMap { $0.versions.map(\.sealed.keyID) })
        if let fileKey = fileKeyID.flatMap(KeyID.init(hex:)) { needed.insert(fileKey) }
        if let logKey = KeyID(hex: log.withLock { $0.file.header.macKeyID }) { needed.insert(logKey) }
        return needed
    }

    /// Whether local commits queue what they change in the outbox (set
    /// when a replica, the PostgreSQL mirror, is configured).
    private let queueing = Mutex(false)
    public var keepsOutbox: Bool {
        get { queueing.withLock { $0 } }
        set { queueing.withLock { $0 = newValue } }
    }

    // MARK: Commits

    /// Applies `change` to a copy of the latest staged secrets, stages the
    /// result as the next generation, and returns once it is durable and
    /// served. If `change` throws, or the write fails, nothing changes.
    /// With `keepsOutbox`, every name the change touched enters the outbox
    /// in the same commit.
    public func commit<Result>(
        _ change: (_ storeID: String, _ secrets: inout EditedSecrets) throws -> Result
    ) throws -> Result {
        let (result, ticket) = try stage(change)
        try ticket.wait()
        return result
    }

    /// `commit` for a change of (nearly) every record, such as a master-key
    /// rotation's reseal. Through the log it would be written twice: an
    /// entry as large as the store, then the compaction that entry brings
    /// on at once. Here the new state is written once, as the store file
    /// with an empty log after it, the way a compaction writes them (crash
    /// safe in the same way). The change is applied while no other commit
    /// is staged or syncing; the file is then written outside the store's
    /// lock: commits asked for meanwhile stage on the new state and are
    /// synced, in the new log, once it is in place (or fail with it).
    /// Durable and served when it returns. With `keepsOutbox` the names it
    /// changed are queued, as `commit` queues them. Refused, with nothing
    /// changed, when the store file or the log on disk is no longer what
    /// cofferd last wrote or read, checked before the change and again
    /// just before the rename: a file dropped in is the watcher's to take
    /// or refuse, not to be written over.
    public func commitWhole<Result>(
        _ change: (_ storeID: String, _ secrets: inout EditedSecrets) throws -> Result
    ) throws -> Result {
        let (result, next) = try exclusively { state -> (Result, StoreSnapshot) in
            guard !state.stopping else { throw StoreError(.io, "the store is closed") }
            guard !authenticator.isSealed else { throw KeyringError(.sealed, "the keyring is sealed") }
            guard filesAreAsLastSeen else {
                throw StoreError(.tampered, "the store file or log changed on disk since cofferd last read it; it is read again first: retry")
            }
            // The edits (a copy of every changed secret) end with this
            // function, before the file is written: only the packed result
            // is held through the write.
            func applied(to base: StoreSnapshot) throws -> (Result, StoreSnapshot) {
                var secrets = EditedSecrets(base.secrets)
                let result = try change(base.storeID, &secrets)
                var outbox = base.outbox
                if keepsOutbox { outbox.queue(secrets.changedNames, generation: base.generation + 1) }
                return (result, StoreSnapshot(storeID: base.storeID, generation: base.generation + 1,
                                              secrets: base.secrets.applying(secrets), outbox: outbox))
            }
            let (result, next) = try applied(to: state.tip)
            state.tip = next
            state.installing = true
            return (result, next)
        }
        beforeWholeWrite.withLock { $0 }?()
        // The file and its empty log are written outside the store's lock,
        // then put in place under it, once the files on disk are checked
        // again: one dropped in meanwhile is never renamed over.
        let prepared: (temp: String, written: stat, log: LogState, keyID: String)
        do { prepared = try Self.prepareFiles(for: next, in: directory, authenticator: authenticator) } catch {
            throw abandonWhole(StoreError(.io, "could not write the store file", underlying: "\(error)"))
        }
        // Either the commit is abandoned (nothing changed on disk), or it
        // is in place and served, with an error when that is not all.
        let (abandoned, installError) = pipeline.withLock { state -> (StoreError?, (any Error)?) in
            guard filesAreAsLastSeen else {
                unlink(prepared.temp)
                unlink(directory + "/" + StoreLogFile.nextFileName)
                return (StoreError(.tampered, "the store file or log changed on disk while the change was written; it is read again first: retry"), nil)
            }
            let installed: stat, problem: (any Error)?
            beforeSwitch.withLock { $0 }?()
            do {
                (installed, problem) = try Self.switchFiles(prepared.temp, written: prepared.written, log: prepared.log.file,
                                                            in: directory, replacing: .init(lastSeen.withLock { $0 }),
                                                            syncDirectory: syncDirectory)
            } catch is DurableFile.ReplacedMeanwhile {
                return (StoreError(.tampered, "the store file changed on disk while the change was written; it is read again first: retry"), nil)
            } catch {
                // Not renamed: the temp file and store.log.next are gone already.
                return (StoreError(.io, "could not put the store file in place", underlying: "\(error)"), nil)
            }
            state.installing = false
            do {
                try install(next, written: (prepared.log, installed, prepared.keyID, problem), origin: .local, as: "the change", in: &state)
            } catch {
                return (nil, error)
            }
            return (nil, nil)
        }
        if let abandoned { throw abandonWhole(abandoned) }
        if let installError { throw installError }
        return result
    }

    /// Whether store.json is the file cofferd last wrote or read (the same
    /// inode, size and times), not one dropped in since.
    private var storeFileIsAsLastSeen: Bool {
        lastSeen.withLock { $0 }.map { FileIdentity(path: path) == $0 } ?? false
    }

    /// `storeFileIsAsLastSeen`, and the log is the one cofferd appends to.
    private var filesAreAsLastSeen: Bool {
        storeFileIsAsLastSeen && log.withLock { $0.file.isInPlace(directory: directory) }
    }

    /// A whole commit that did not go in place: nothing changed on disk,
    /// and the commits staged on it fail too; the staged state goes back
    /// to what is served.
    private func abandonWhole(_ error: StoreError) -> StoreError {
        let failed = pipeline.withLock { state -> [StagedCommit] in
            defer { state.queue = [] }
            state.tip = snapshot
            state.installing = false
            return state.queue
        }
        for staged in failed { staged.ticket.complete(.failure(error)) }
        return error
    }

    /// Serves `next`, written whole as the store file with an empty log
    /// after it (under the pipeline's lock). The staged state is the
    /// caller's: commits may already build on `next`. `what` names it in
    /// errors.
    private func install(
        _ next: StoreSnapshot, written: (log: LogState, info: stat, keyID: String, problem: (any Error)?),
        origin: StoreCommit.Origin, as what: String, in state: inout Pipeline
    ) throws {
        // The file is in place: from here on it is what the store is.
        takeUp(written.log, fileInfo: written.info, fileKeyID: written.keyID, directorySyncFailed: written.problem != nil)
        serve(next, origin: origin)
        // Recorded only once the renames are known durable: after a power
        // loss that undid them, a generation recorded ahead of the files
        // left would refuse the start as a rollback.
        if let problem = written.problem {
            throw StoreError(.notDurable, "\(what) is in place but may not survive a power loss", underlying: "\(problem)")
        }
        do { try highWater.record(next) } catch {
            throw StoreError(.notDurable, "\(what) is in place, but its generation could not be recorded", underlying: "\(error)")
        }
    }

    /// `commit`'s first half: stages the change and returns its result and
    /// the ticket that answers once it is durable. Staging is quick (the
    /// write and the sync are the syncer's), so many writers' commits
    /// share one sync.
    public func stage<Result>(
        _ change: (_ storeID: String, _ secrets: inout EditedSecrets) throws -> Result
    ) throws -> (Result, CommitTicket) {
        try stageLocal(patience: nil, change)!
    }

    /// How long `stagePromptly` waits for the store's lock. Another
    /// thread stages in tens of microseconds; an exclusive operation (a
    /// compaction's switch, a reload) can hold it far longer, and an event
    /// loop must not wait for that.
    public static let promptPatience: Duration = .microseconds(500)

    /// `stage` for a thread that must not wait long (an event loop), of a
    /// change that touches at most `names` secrets: nil, having run
    /// nothing, when the store's lock is not had within `promptPatience`,
    /// an exclusive operation waits or runs, or the change could make the
    /// snapshot pack a new base (a copy of every record, LayeredSecrets);
    /// the caller then stages on a thread that may wait. `change` runs on
    /// the caller's thread.
    public func stagePromptly<Result>(
        touching names: Int, _ change: (_ storeID: String, _ secrets: inout EditedSecrets) throws -> Result
    ) throws -> (Result, CommitTicket)? {
        try stageLocal(patience: Self.promptPatience, room: names, change)
    }

    private func stageLocal<Result>(
        patience: Duration?, room: Int? = nil, _ change: (_ storeID: String, _ secrets: inout EditedSecrets) throws -> Result
    ) throws -> (Result, CommitTicket)? {
        try stageWhole(.local, patience: patience, room: room) { base, secrets, outbox in
            let result = try change(base.storeID, &secrets)
            if keepsOutbox { outbox.queue(secrets.changedNames, generation: base.generation + 1) }
            return result
        }
    }

    /// A commit of changes taken from elsewhere (another host's, by the
    /// replica that carries them). Nothing is queued for it: `change` sees
    /// and decides the outbox itself (a merge of theirs with ours is
    /// queued; theirs alone is not), on the latest staged state, so no
    /// local commit can fall between what it read and what it writes.
    public func commitTaken<Result>(
        _ change: (_ base: StoreSnapshot, _ secrets: inout EditedSecrets, _ outbox: inout Outbox) throws -> Result
    ) throws -> Result {
        let (result, ticket) = try stageWhole(.taken, change)
        try ticket.wait()
        return result
    }

    /// Drops outbox entries a replica confirmed, as of the generations it
    /// confirmed them at: entries queued again since (a later generation)
    /// stay.
    public func dropFromOutbox(_ confirmed: [SecretName: UInt64]) throws {
        let (_, ticket) = try stageWhole(.outbox) { _, _, outbox in
            var dropped: [SecretName: OutboxEntry?] = [:]
            for (name, generation) in confirmed where outbox[name].map({ $0.generation <= generation }) == true {
                dropped[name] = .some(nil)
            }
            outbox.update(dropped)
        }
        try ticket.wait()
    }

    /// Queues every secret (a replica's first sync into an empty database).
    public func queueEverything() throws {
        let (_, ticket) = try stageWhole(.outbox) { base, secrets, outbox in
            // Every name, also one whose entry was confirmed (it may linger,
            // settled, until the replica drops it): that database lacks
            // them all.
            outbox.queue(secrets.base.names, generation: base.generation + 1)
        }
        try ticket.wait()
    }

    private func stageWhole<Result>(
        _ origin: StoreCommit.Origin, _ change: (_ base: StoreSnapshot, _ secrets: inout EditedSecrets, _ outbox: inout Outbox) throws -> Result
    ) throws -> (Result, CommitTicket) {
        try stageWhole(origin, patience: nil, change)!
    }

    /// With `patience`, nothing runs (nil) unless the store's lock is had
    /// within it; with `room`, unless the latest staged secrets take a
    /// change of that many names without packing.
    private func stageWhole<Result>(
        _ origin: StoreCommit.Origin, patience: Duration?, room: Int? = nil,
        _ change: (_ base: StoreSnapshot, _ secrets: inout EditedSecrets, _ outbox: inout Outbox) throws -> Result
    ) throws -> (Result, CommitTicket)? {
        func staging(_ state: inout Pipeline) throws -> (Result, CommitTicket)? {
            guard !state.stopping else { throw StoreError(.io, "the store is closed") }
            guard !authenticator.isSealed else { throw KeyringError(.sealed, "the keyring is sealed") }
            let base = state.tip
            if let room, !base.secrets.hasRoom(for: room) || keepsOutbox && !base.outbox.hasRoom(for: room) { return nil }
            var secrets = EditedSecrets(base.secrets)
            var outbox = base.outbox
            let result = try change(base, &secrets, &outbox)
            let next = StoreSnapshot(storeID: base.storeID, generation: base.generation + 1,
                                     secrets: secrets.changes.isEmpty ? base.secrets : base.secrets.applying(secrets), outbox: outbox)
            let payload = StoreLogFormat.encode(StoreLogFormat.entry(from: base, to: next, edits: secrets))
            let ticket = CommitTicket()
            state.queue.append(StagedCommit(snapshot: next, origin: origin, payload: payload, ticket: ticket))
            state.tip = next
            return (result, ticket)
        }
        // New commits wait for an exclusive operation that waits.
        let ready = { (_: Pipeline) in self.exclusiveOperations.load(ordering: .acquiring) == 0 }
        guard let patience else { return try pipeline.withLock(when: ready, staging) }
        // An exclusive operation may hold the lock far longer than the
        // patience: a thread that must not wait goes elsewhere at once.
        guard exclusiveOperations.load(ordering: .acquiring) == 0 else { return nil }
        return try pipeline.withLock(within: patience, when: ready, staging) ?? nil
    }

    // MARK: The syncer

    /// Starts the thread that makes staged commits durable, batch by batch.
    /// It holds the store weakly: when the store goes, it ends.
    private func startSyncer() {
        let pipeline = self.pipeline
        Thread.detachNewThread { [weak self] in
            let hasWork = { (state: Pipeline) in !state.queue.isEmpty && !state.installing || state.stopping }
            while true {
                // Under load the next batch is queued already: the lock,
                // which stagers hold while they stage, is taken once.
                var batch = pipeline.withLock { $0.takeBatch() }
                if batch.isEmpty, self?.highWaterUnsynced == true {
                    // store-generation's sync was put off while writers
                    // were busy: the next commit is likely a moment away.
                    batch = pipeline.withLock(when: hasWork, waitingAtMost: Self.highWaterLinger) { $0.takeBatch() } ?? []
                    if batch.isEmpty { self?.syncHighWater() }
                }
                if batch.isEmpty { batch = pipeline.withLock(when: hasWork) { $0.takeBatch() } }
                guard !batch.isEmpty else { return }
                guard let store = self else {
                    for staged in batch { staged.ticket.complete(.failure(StoreError(.io, "the store is closed"))) }
                    return
                }
                store.persist(batch)
            }
        }
    }

    /// Appends `batch` to the log and syncs it, records the generation,
    /// then serves each commit in order and answers it. On failure every
    /// commit staged since the last durable one fails (each was built on
    /// those before it) and the staged state goes back to what is served.
    private func persist(_ batch: [StagedCommit]) {
        beforeSync.withLock { $0 }?()
        let last = batch.last!.snapshot
        let appended = Result { () throws(StoreError) in
            do {
                try log.withLock { log in
                    guard let key = authenticator.mac(forKeyID: log.file.header.macKeyID, for: .storeLog) else {
                        throw StoreError(.sealed, "the store log's key is not held (sealed?)")
                    }
                    try log.file.append(batch.map(\.payload), key: key)
                }
            } catch let error as StoreError {
                throw error
            } catch {
                throw StoreError(.io, "could not write the store log", underlying: "\(error)")
            }
        }
        if case .failure(let error) = appended {
            let failed = pipeline.withLock { state -> [StagedCommit] in
                defer { state.queue = [] }
                state.tip = snapshot
                state.syncing = false
                return state.queue
            }
            for staged in batch + failed { staged.ticket.complete(.failure(error)) }
            return
        }
        // The generation is written now and synced once the commits are
        // answered: the log's sync is what makes them durable, and
        // store-generation only has to follow it (written after the log is
        // on disk, it never leads it; after a crash it may lag, which
        // docs/file-format.md allows). Under load its sync is put off (see
        // below), so that a batch costs one sync, not two.
        var answer: Result<Void, StoreError> = .success(())
        // The files are in doubt (`filesInDoubt`): the frames are on disk,
        // but a start may not find them. Served, but not answered as
        // durable; the compaction asked for below puts the files in place
        // again.
        // Nor is its generation recorded (`install` says why): the
        // compaction's switch, once it syncs, records it.
        let unsynced = filesInDoubt.load(ordering: .acquiring)
        if unsynced {
            answer = .failure(StoreError(.notDurable, "the change is written, but the store's files on disk may not keep it (a directory sync failed after they were replaced, or the log was replaced outside cofferd); cofferd writes them again"))
        } else {
            do { try highWater.record(last, sync: false) } catch {
                // Durable, so served; but a later start could not tell a
                // rollback to before it: the writer hears of it.
                answer = .failure(StoreError(.notDurable, "the change is written, but its generation could not be recorded", underlying: "\(error)"))
            }
        }
        for staged in batch {
            serve(staged.snapshot, origin: staged.origin)
            staged.ticket.complete(answer)
        }
        // One turn of the lock for all the syncer needs to know; an
        // exclusive operation may start now, as it does not touch
        // store-generation's sync.
        let (waiting, compact) = pipeline.withLock { state -> (Bool, Bool) in
            state.syncing = false
            let compact = !state.compacting && (unsynced || log.withLock { $0.isWorthCompacting })
            if compact { state.compacting = true }
            return (!state.queue.isEmpty, compact)
        }
        // A lone commit with none waiting is a writer alone: store-generation
        // is synced now, while the writer reads its answer. Several at once,
        // or more waiting, are writers at work: its sync is put off (at most
        // 100 ms) so that one sync per batch serves them, and done when the
        // syncer finds no commit for `highWaterLinger`.
        let due = highWaterSync.withLock { sync -> Bool in
            sync.unsynced = true
            return (batch.count == 1 && !waiting) || sync.syncedAt.duration(to: .now) > .milliseconds(100)
        }
        if due { syncHighWater() }
        if compact {
            Thread.detachNewThread { [weak self] in
                guard let self else { return }
                try? self.compactNow()
                self.pipeline.withLock { $0.compacting = false }
            }
        }
    }

    private func syncHighWater() {
        do {
            try highWater.sync()
            highWaterSync.withLock { $0 = (false, .now) }
        } catch {
            // Tried again after the next batch.
        }
    }

    /// Whether store-generation was written since its last sync.
    var highWaterUnsynced: Bool { highWaterSync.withLock { $0.unsynced } }

    /// How long the syncer, finding no commit, waits for one before it
    /// syncs store-generation put off under load.
    static let highWaterLinger: Duration = .milliseconds(1)

    // MARK: Exclusive operations

    /// Runs `body` with no commit staged or syncing, and none staged until
    /// it returns (reload, restore, compaction's switch, a whole commit, seal).
    private func exclusively<R, E: Error>(_ body: (inout Pipeline) throws(E) -> R) throws(E) -> R {
        pipeline.withLock { _ in _ = exclusiveOperations.add(1, ordering: .releasing) }
        defer { pipeline.withLock { _ in _ = exclusiveOperations.subtract(1, ordering: .releasing) } }
        return try pipeline.withLock(when: { $0.queue.isEmpty && !$0.syncing && !$0.installing }) { (state) throws(E) -> R in
            try body(&state)
        }
    }

    /// Runs `body` while no commit, reload or restore runs (seal wipes the
    /// keys under it, so no commit seals with a key being wiped).
    public func whileNoCommitRuns<R>(_ body: () throws -> R) rethrows -> R {
        try exclusively { _ in try body() }
    }

    // MARK: Compaction

    /// Writes the served snapshot whole to `store.json` and starts the log
    /// again after it, carrying over what was committed meanwhile. The
    /// file is written and synced with commits going on; only the switch
    /// (a new log of the few commits since, two renames) stops them.
    /// Runs on its own when the log has grown (`isWorthCompacting`);
    /// master-key rotation calls it so the old key is no longer needed.
    public func compactNow() throws {
        // The MAC key is derived while no seal can wipe the master key under
        // the derivation; once made it is a key of its own.
        let (served, keyID, key) = try exclusively { _ in
            guard !authenticator.isSealed else { throw KeyringError(.sealed, "the keyring is sealed") }
            let (keyID, key) = try authenticator.current()
            return (snapshot, keyID, key)
        }
        let file = try StoreFileFormat(served, macKeyID: keyID, key: key)
        let bytes = try file.encoded()
        let fileMAC = Hex.decode(file.mac!)!
        let (temp, written) = try DurableFile.writeTemporary(for: path, bytes)
        do {
            try exclusively { _ in
                guard !authenticator.isSealed else { throw KeyringError(.sealed, "the keyring is sealed") }
                // A file dropped in meanwhile is the watcher's to read (and
                // take, or refuse and write back over): never renamed over.
                guard storeFileIsAsLastSeen else {
                    unlink(temp)
                    return
                }
                let carried = try log.withLock { log -> [[UInt8]]? in
                    // A reload or restore since started another log: this
                    // snapshot is no longer what the log continues.
                    guard log.file.header.storeID == served.storeID, log.file.header.baseGeneration <= served.generation,
                          served.generation <= log.file.lastGeneration else { return nil }
                    guard let key = authenticator.mac(forKeyID: log.file.header.macKeyID, for: .storeLog) else {
                        throw StoreError(.sealed, "the store log's key is not held")
                    }
                    return try log.file.payloads(after: served.generation, key: key)
                }
                guard let carried else {
                    unlink(temp)
                    return
                }
                let next = try Self.newLog(for: served, fileMAC: fileMAC, carrying: carried, in: directory, authenticator: authenticator)
                let installed: stat, problem: (any Error)?
                beforeSwitch.withLock { $0 }?()
                do {
                    (installed, problem) = try Self.switchFiles(temp, written: written, log: next, in: directory,
                                                                replacing: .init(lastSeen.withLock { $0 }), syncDirectory: syncDirectory)
                } catch is DurableFile.ReplacedMeanwhile {
                    // Dropped in between the check above and the rename:
                    // left in place for the watcher, as above.
                    return
                }
                let wasInDoubt = filesAreInDoubt
                takeUp(LogState(file: next, snapshotBytes: bytes.count), fileInfo: installed, fileKeyID: file.macKeyID,
                       directorySyncFailed: problem != nil)
                if let problem { throw problem }
                // The generations served while in doubt were not recorded:
                // recorded now (no commit is in flight: this is the tip).
                if wasInDoubt { try highWater.record(snapshot) }
            }
        } catch {
            unlink(temp)
            throw error
        }
    }

    /// A new store file and log are in place: cofferd knows the file as its
    /// own, by the key that authenticates it, and appends to the log. When
    /// the directory's sync after the renames failed, the files are in
    /// doubt (`filesInDoubt`) until files are put in place again; when it
    /// went through, they no longer are.
    private func takeUp(_ newLog: LogState, fileInfo: stat, fileKeyID: String?, directorySyncFailed: Bool) {
        log.withLock { $0 = newLog }
        remember(fileInfo)
        fileKey.withLock { $0 = fileKeyID }
        filesInDoubt.store(directorySyncFailed, ordering: .releasing)
    }

    // MARK: Reloads and restores

    /// What a reload found.
    public enum ReloadOutcome: Sendable {
        /// The file is the one already loaded (cofferd's own last write).
        case unchanged
        /// A newer generation was checked and is now served.
        case replaced(old: StoreSnapshot, new: StoreSnapshot)
    }

    /// Reads the file again (it changed on disk: a git pull, a copy from
    /// another host), checks it whole, and swaps it in, with a new log
    /// after it. Refused, with the last good snapshot still served: a
    /// missing, unreadable or malformed file; a MAC that does not match;
    /// another store's file; a generation not above the latest commit
    /// (rollback), or equal with other content; a record that does not
    /// open. After a refusal cofferd writes its own state back, so what
    /// is on disk is again what it serves (and a restart finds it).
    /// A log replaced, removed or cut short outside cofferd is written
    /// back the same way.
    public func reload() throws(StoreError) -> ReloadOutcome {
        guard !authenticator.isSealed else {
            throw StoreError(.sealed, "cofferd is sealed: the store file is read again at unseal")
        }
        // Looked at with no commit or compaction in flight: a compaction
        // replaces the log between its renames and taking the new one up.
        let logInPlace = exclusively { _ in
            let inPlace = log.withLock { $0.file.isInPlace(directory: directory) }
            // Appends now go to a file no start reads: nothing is answered
            // as durable until cofferd's files are in place again.
            if !inPlace { filesInDoubt.store(true, ordering: .releasing) }
            return inPlace
        }
        let fileAsLastSeen = storeFileIsAsLastSeen
        if !logInPlace, fileAsLastSeen {
            let repaired = repair(over: lastSeen.withLock { $0 })
            throw StoreError(.tampered, "the store log was replaced, removed or cut short outside cofferd; "
                + (repaired ? "cofferd wrote its own state back" : "a store file dropped in meanwhile is read next"))
        }
        // Both changed (a backup put back over the directory): the store
        // file decides, as for a file dropped in alone.
        if logInPlace, fileAsLastSeen { return .unchanged }
        // The file refused, as read (or as found, when it cannot be read).
        var refused = FileIdentity(path: path)
        do {
            return try readAndTake(found: &refused, logInPlace: logInPlace)
        } catch let error where error.code != .io && error.code != .sealed && error.code != .notDurable {
            repair(over: refused)
            throw error
        } catch let error where error.code == .io && !storeFileIsAsLastSeen {
            // A file not taken (unreadable now, or its new log not put in
            // place) is not the file the log continues: a restart would set
            // the log's commits aside. Nothing is answered as durable until
            // it is taken or refused (the watcher reads it again meanwhile:
            // `waitsOnAStoreFile`).
            filesInDoubt.store(true, ordering: .releasing)
            throw error
        }
    }

    /// `found`: the file read (nil when there was none).
    private func readAndTake(found: inout FileIdentity?, logInPlace: Bool) throws(StoreError) -> ReloadOutcome {
        let bytes: [UInt8]
        let info: stat
        do {
            guard let (read, status) = try Self.readStoreFile(path) else {
                found = nil
                throw StoreError(.notFound, "the store file \(path) is gone; still serving generation \(snapshot.generation)")
            }
            bytes = read
            info = status
            found = FileIdentity(status)
        } catch let error as StoreError {
            throw error
        } catch {
            throw StoreError(.io, "cannot read the store file", underlying: "\(error)")
        }
        let decoded: (snapshot: StoreSnapshot, formatVersion: Int, macKeyID: String?, mac: [UInt8]?)
        do {
            decoded = try StoreFileFormat.decodeWithVersion(bytes, authenticator: authenticator)
        } catch where authenticator.isSealed {
            // Sealed while the file was checked: its MAC key may have been
            // wiped under the check. Not a verdict on the file.
            throw StoreError(.sealed, "cofferd was sealed while the store file was read; it is read again at unseal")
        }
        let (next, _, nextKeyID, nextMAC) = decoded
        return try exclusively { (state) throws(StoreError) -> ReloadOutcome in
            // Replaced again since it was read (a compaction cannot rename
            // over a file it did not write, so this is someone else's):
            // the event that replacement raised reads it.
            guard FileIdentity(path: path) == FileIdentity(info) else { return .unchanged }
            let loaded = state.tip
            // The very snapshot the log continues, its file touched (chmod,
            // an editor saving it unchanged): nothing to take.
            let base = log.withLock { $0.file.header }
            if logInPlace, next.storeID == base.storeID, next.generation == base.baseGeneration, let nextMAC,
               ConstantTime.equals(nextMAC, base.baseMAC) {
                remember(info)
                return .unchanged
            }
            guard next.storeID == loaded.storeID else {
                throw StoreError(.tampered, "the store file belongs to another store (\(next.storeID.prefix(8))…)")
            }
            if next.generation == loaded.generation {
                guard next == loaded else {
                    throw StoreError(.tampered, "the store file has generation \(next.generation), as loaded, but other content")
                }
                // What is served, as a file (an export put in place): the log
                // continued the file this one replaced, so a new log must
                // continue this one, or a restart could not replay onto it.
                if let problem = try adopt(next, fileMAC: nextMAC!, keyID: nextKeyID, info: info, fileBytes: bytes.count) {
                    throw problem
                }
                return .unchanged
            }
            guard next.generation > loaded.generation else {
                throw StoreError(.tampered, "rollback: the store file has generation \(next.generation), older than the loaded \(loaded.generation)")
            }
            try authenticator.checkEveryRecord(of: next, besides: loaded)
            // Once the new log is in place, commits go into it: `next` must
            // be what they build on, even if the directory's sync failed.
            let problem = try adopt(next, fileMAC: nextMAC!, keyID: nextKeyID, info: info, fileBytes: bytes.count)
            state.tip = next
            serve(next, origin: .file)
            // Not recorded ahead of renames that may not be durable (`install`).
            if let problem { throw problem }
            do { try highWater.record(next) } catch {
                throw StoreError(.notDurable, "could not record the store's generation", underlying: "\(error)")
            }
            return .replaced(old: loaded, new: next)
        }
    }

    /// Starts a new log continuing `file`, the store file now in place (it
    /// was synced when read). Nothing changes if the new log cannot be put
    /// in place; once it is, it is the log, even if the directory's sync
    /// then fails: that is returned, for the caller to report once it has
    /// made `file` what is served. Call inside `exclusively`.
    private func adopt(_ file: StoreSnapshot, fileMAC: [UInt8], keyID: String?, info: stat, fileBytes: Int) throws(StoreError) -> StoreError? {
        let fresh: StoreLogFile
        do {
            fresh = try Self.newLog(for: file, fileMAC: fileMAC, in: directory, authenticator: authenticator)
            try fresh.install(in: directory)
        } catch {
            unlink(directory + "/" + StoreLogFile.nextFileName)
            throw error as? StoreError ?? StoreError(.io, "could not start the store log after the new file", underlying: "\(error)")
        }
        let synced = Result { try syncDirectory(directory) }
        takeUp(LogState(file: fresh, snapshotBytes: fileBytes), fileInfo: info, fileKeyID: keyID,
               directorySyncFailed: (try? synced.get()) == nil)
        guard case .failure(let error) = synced else { return nil }
        return StoreError(.notDurable, "the new store log is in place but may not survive a power loss", underlying: "\(error)")
    }

    /// Writes the served state back as store.json and a new log (after a
    /// file or log was refused). Best effort: a failure leaves things as
    /// they are, and the next start says what is wrong.
    ///
    /// Only over `refused`, the file found (or no file): one dropped in
    /// since is left for the watcher, whose event reads it.
    /// Returns whether cofferd's files were written.
    @discardableResult
    private func repair(over refused: FileIdentity?) -> Bool {
        var wrote = false
        do {
            try exclusively { (state: inout Pipeline) throws -> Void in
                beforeSwitch.withLock { $0 }?()
                let written = try Self.rewrite(state.tip, in: directory, authenticator: authenticator, replacing: .init(refused),
                                               syncDirectory: syncDirectory)
                takeUp(written.log, fileInfo: written.info, fileKeyID: written.keyID, directorySyncFailed: written.problem != nil)
                wrote = true
                if let problem = written.problem { throw problem }
            }
        } catch {
            // Not written (a file dropped in meanwhile, an I/O error), or
            // written with its directory sync failed (`filesInDoubt`).
        }
        return wrote
    }

    /// Replaces an empty store with `secrets` of store `storeID` (restore
    /// from a replica): refused when this store holds any secret.
    public func restore(storeID: String, secrets: [SecretName: Secret]) throws {
        // An empty store commits nothing that would start the compaction
        // that clears a doubt: started here.
        if filesAreInDoubt { try? compactNow() }
        try exclusively { state in
            let base = state.tip
            // Unpushed deletions count as content: restoring over them
            // would bring the deleted secrets back.
            guard base.secrets.isEmpty, base.outbox.isEmpty else {
                throw StoreError(.tampered, "restore needs an empty store; this one holds \(base.secrets.count) secrets and \(base.outbox.count) unmirrored changes")
            }
            // It is written into store-generation, which must parse again.
            guard Hex.isDigits(storeID, count: 32) else {
                throw StoreError(.corrupt, "a store id is 32 lowercase hex digits")
            }
            // store-generation may lag the files until they are put in place
            // again; the restore's first line must not move it ahead.
            guard !filesAreInDoubt else {
                throw StoreError(.io, "the store's files are being written again after a failed sync; retry the restore shortly")
            }
            let next = StoreSnapshot(storeID: storeID, generation: base.generation + 1, secrets: secrets)
            // Another store's, most often: a start after a crash between the
            // rename and the record below must accept it.
            do { try highWater.recordPending(next, after: base) } catch {
                throw StoreError(.io, "could not record the restore before it", underlying: "\(error)")
            }
            let written: (log: LogState, info: stat, keyID: String, problem: (any Error)?)
            do {
                written = try Self.rewrite(next, in: directory, authenticator: authenticator,
                                           replacing: .init(lastSeen.withLock { $0 }), syncDirectory: syncDirectory)
            } catch is DurableFile.ReplacedMeanwhile {
                throw StoreError(.tampered, "the store file changed on disk during the restore; it is read again first: retry")
            } catch {
                throw StoreError(.io, "could not write the store file", underlying: "\(error)")
            }
            state.tip = next
            try install(next, written: written, origin: .taken, as: "the restored store", in: &state)
        }
    }

    // MARK: Publishing commits

    private let observers = Mutex<[@Sendable (StoreCommit) -> Void]>([])

    /// Calls `observer` with every snapshot the store serves from now on,
    /// in order. It runs on the store's syncer thread (or in a reload or
    /// restore), so it must be quick and must not commit: wake a thread,
    /// queue an event.
    public func onCommit(_ observer: @escaping @Sendable (StoreCommit) -> Void) {
        observers.withLock { $0.append(observer) }
    }

    /// Swaps `next` in and tells the observers; the old snapshot is then
    /// freed outside the lock and off the readers' threads
    /// (SnapshotRetirement). Called by one thread at a time: the syncer,
    /// or an exclusive operation.
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
}

extension SecretStore.LogState {
    /// Whether the log has grown enough, against the snapshot, that a
    /// compaction is worth its write: past 1 MiB and past the size of
    /// store.json. A compaction writes the whole store, so its cost per
    /// commit is the snapshot's size over the log's: at a quarter of the
    /// snapshot, compactions took a quarter of cofferd's CPU under steady
    /// puts (docs/performance.md); at the snapshot's size, a load reads at
    /// most twice the snapshot.
    var isWorthCompacting: Bool {
        file.entryBytes > max(1 << 20, snapshotBytes)
    }
}
